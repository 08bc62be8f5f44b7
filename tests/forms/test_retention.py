"""Retention on the real PostgreSQL: 30 days before the end staff are warned once; after the
period the submission is gone completely — a real ``pg_dump`` of the schema holds neither its id
nor its reference, the file store holds no blob — and the audit trail has ``form_purged`` with
a count only. Expired residents' drafts and their files go too; younger data stays."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from datetime import timedelta
from pathlib import Path

from forms_staff_support import (
    PDF,
    Clock,
    add_form,
    add_submission,
    audits,
    count,
    make_ctx,
)
from sqlalchemy import insert
from store_support import hub_store

from hub.forms import retention, review, service
from hub.forms.records import new_id, seal_field, seal_json, token_hash
from hub.forms.tables import form_drafts, form_files, form_submissions
from hub.notify.senders import SinkMessage


def _blobs(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*.bin")} if root.exists() else set()


async def _pg_dump(url: str, schema: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "pg_dump", f"--dbname={url}", f"--schema={schema}", "--data-only",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_purge_leaves_nothing_in_a_real_dump(tmp_path: Path, postgres_url: str) -> None:
    async with hub_store("postgresql", tmp_path, postgres_url, tag="fret") as db:
        assert db.schema is not None
        box: deque[SinkMessage] = deque()
        clock = Clock()
        ctx = make_ctx(db.store, tmp_path, box, clock)
        form_id = await add_form(ctx, notify=["kakari@ward.example"], retention_days=90,
                                 webhook_url="http://127.0.0.1:9/hook",
                                 secrets_=["whsec_AAAA"])
        old_id, old_ref = await add_submission(ctx, form_id, files={"shomei.pdf": PDF},
                                               retention_days=90)
        row = await service.get(ctx, form_id)
        await review.change(ctx, row, old_id, "return", "印鑑を押してください", "staff-1", None)
        clock.move(days=20)
        young_id, young_ref = await add_submission(ctx, form_id, retention_days=90)
        # a resident's draft with a file, expiring in 30 days
        draft_id, blob = new_id(), secrets.token_urlsafe(18)
        now = clock()
        await ctx.intake.store.put(blob, PDF)
        async with db.store.begin() as tx:
            await tx.conn.execute(insert(form_drafts).values(
                id=draft_id, form_id=form_id, version=1, token_hash=token_hash("t"),
                identity=seal_json(ctx, draft_id, "identity", {}),
                answers=seal_json(ctx, draft_id, "answers", {"note": "下書き"}), page=0,
                submission_id=None, created_at=now, updated_at=now,
                expires_at=now + timedelta(days=30)))
            await tx.conn.execute(insert(form_files).values(
                id=blob, form_id=form_id, draft_id=draft_id, submission_id=None, field="doc",
                filename=seal_field(ctx, blob, "filename", "a.pdf"),
                content_type="application/pdf", size=len(PDF), sha256="0" * 64,
                created_at=now))
        files_root = ctx.settings.files_dir
        assert len(_blobs(files_root)) == 2

        clock.move(days=45)  # day 65: the old one ends on day 90
        assert await retention.warn(ctx) == {form_id: 1}
        assert await retention.warn(ctx) == {}  # once
        (mail,) = list(box)
        assert mail.to == "kakari@ward.example"
        assert "1" in mail.subject
        assert old_ref not in mail.body
        assert "山田" not in mail.body
        assert [json.loads(a.detail) for a in await audits(db.store, "form_retention_warned")] == [
            {"submissions": 1}]
        early = await retention.purge(ctx)  # the draft expired on day 50, the rest stays
        assert (early.submissions, early.drafts, early.blobs) == ({}, 1, 1)

        clock.move(days=26)  # day 91
        purged = await retention.purge(ctx)
        assert purged.submissions == {form_id: 1}
        assert purged.drafts == 0
        assert purged.blobs == 1
        dump = await _pg_dump(postgres_url, db.schema)
        assert old_id not in dump
        assert old_ref not in dump
        assert draft_id not in dump
        assert young_id in dump
        assert young_ref in dump
        assert _blobs(files_root) == set()
        assert await count(db.store, form_submissions) == 1
        got = await audits(db.store, "form_purged")
        assert [(a.target, json.loads(a.detail)) for a in got] == [
            (None, {"drafts": 1}), (form_id, {"submissions": 1})]
        assert (await retention.purge(ctx)).submissions == {}
