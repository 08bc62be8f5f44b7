"""``submit.create_submission`` on PostgreSQL: reference numbers under concurrency (one UPSERT
per number, never two alike), a staff-entered submission with an attachment, and the
resident's whole path on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clamd_support import Clamd, pdf, start_clamd
from forms_support import add_form, audits, count, resident_app, rows
from sqlalchemy import text

from hub.forms import service
from hub.forms.attachments import Attachment, FieldRules
from hub.forms.records import open_field
from hub.forms.submit import FileRef, create_submission
from hub.forms.tables import form_counters, form_files, form_history, form_submissions
from hub.store import HubStore

NAME = {"family": "山田", "given": "花子", "family_kana": "ヤマダ", "given_kana": "ハナコ"}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


async def test_references_are_unique_under_concurrency_on_postgresql(
        tmp_path: Path, clamd: Clamd, postgres_url: str) -> None:
    schema = f"fr_{uuid.uuid4().hex[:12]}"
    try:
        async with resident_app(tmp_path, clamd.client(), postgres_url, schema) as r:
            first = await add_form(r.ctx)
            second = await add_form(r.ctx)
            got = await service.published(r.ctx, first)
            other = await service.published(r.ctx, second)
            assert got is not None
            assert other is not None
            answers = {"nm": NAME, "has_dog": "no", "ok": True}
            made = await asyncio.gather(*(
                create_submission(r.ctx, *(got if i % 2 else other), answers, [], "", "ja",
                                  "web", "", "resident") for i in range(12)),
                return_exceptions=True)
            assert [m for m in made if isinstance(m, BaseException)] == []
            refs = [m[1] for m in made if not isinstance(m, BaseException)]
            assert len(set(refs)) == 12
            assert all(ref.startswith("F-2026-") for ref in refs)
            assert await count(r.ctx.store, form_submissions) == 12
            counters = await rows(r.ctx.store, form_counters)
            assert sum(c.last for c in counters) >= 12
            # the whole resident path works on PostgreSQL too
            await r.get(f"/f/{first}")
            status, _, _ = await r.post(f"/f/{first}/start")
            assert status == 303
            flat = {f"nm.{k}": v for k, v in NAME.items()}
            await r.post(f"/f/{first}/page/1", {**flat, "has_dog": "no"})
            await r.post(f"/f/{first}/page/2", {"ok": "true"},
                         files=[("doc", "a.pdf", pdf(), "application/pdf")])
            status, _, headers = await r.post(f"/f/{first}/submit")
            assert status == 303
            assert "ref=F-2026-" in headers["Location"]
            assert await count(r.ctx.store, form_submissions) == 13
    finally:  # after the app and its pool are closed (no lock left to wait for)
        store = await HubStore.open(postgres_url, schema=schema)
        async with store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await store.close()


async def test_staff_enter_a_submission_with_a_file(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, notify=["staff@city.example"])
        got = await service.published(r.ctx, form_id)
        assert got is not None
        row, form = got
        accepted = await r.ctx.intake.accept_bytes(FieldRules(), pdf(), filename="紙.pdf")
        assert isinstance(accepted, Attachment)
        ref_file = FileRef.of("doc", accepted)
        sid, ref = await create_submission(
            r.ctx, row, form, {"nm": NAME, "has_dog": "no", "ok": True,
                               "doc": [ref_file.answer()], "dog": "hidden: not submitted"},
            [ref_file], "hanako@example.jp", "en", "staff", "", "staff1")
        [sub] = await rows(r.ctx.store, form_submissions, id=sid)
        assert sub.channel == "staff"
        assert sub.reference == ref
        [h] = await rows(r.ctx.store, form_history, submission_id=sid)
        assert h.actor == "staff1"
        [f] = await rows(r.ctx.store, form_files, submission_id=sid)
        assert open_field(r.ctx, f.id, "filename", f.filename) == "紙.pdf"
        assert len(await audits(r.ctx.store, "form_staff_entered")) == 1
        [receipt] = r.mails("hanako@example.jp")
        assert receipt.lang == "en"
        assert ref in receipt.subject
