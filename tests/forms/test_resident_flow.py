"""A resident answers a form from start to done: the start page, pages with the error summary,
a page shown only for one answer, attachments (a real clamd: EICAR refused and never stored, a
PDF sealed), the review and the submission in one transaction with its receipt."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from clamd_support import Clamd, eicar, pdf, start_clamd
from forms_support import Resident, add_form, audits, blobs, count, resident_app, rows

from hub.forms.records import open_field, open_json
from hub.forms.tables import (
    form_deliveries,
    form_drafts,
    form_files,
    form_history,
    form_submissions,
    form_views,
)

NAME = {"nm.family": "山田", "nm.given": "花子", "nm.family_kana": "やまだ",
        "nm.given_kana": "ハナコ"}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


def summary_of(html: str) -> str:
    start = html.index('class="error-summary"')
    return html[start:html.index("</ul>", start)]


async def _start(r: Resident, form_id: str) -> None:
    status, html, _ = await r.get(f"/f/{form_id}")
    assert status == 200
    assert 'id="start"' in html
    status, _, headers = await r.post(f"/f/{form_id}/start")
    assert status == 303
    assert headers["Location"].startswith(f"/f/{form_id}/page/1")


async def test_anonymous_resident_applies_and_gets_a_reference(tmp_path: Path, clamd: Clamd,
                                                               caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    caplog.set_level(logging.DEBUG)
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, webhook_url="https://erp.example/hook",
                                 notify=["staff@city.example"])
        status, html, _ = await r.get(f"/f/{form_id}?lang=en")
        assert status == 200
        assert "Dog registration" in html
        assert "Register your dog." in html
        await _start(r, form_id)
        status, html, _ = await r.get(f"/f/{form_id}/page/1")
        assert status == 200
        assert 'autocomplete="family-name"' in html
        assert "必須" in html
        status, _, headers = await r.post(f"/f/{form_id}/page/1", {
            **NAME, "mail": "Hanako@Example.JP", "has_dog": "yes"})
        assert status == 303
        assert headers["Location"].startswith(f"/f/{form_id}/page/2")
        status, _, headers = await r.post(f"/f/{form_id}/page/2", {"dog": "ポチ"})
        assert headers["Location"].startswith(f"/f/{form_id}/page/3")
        status, _, headers = await r.post(f"/f/{form_id}/page/3", {"ok": "true"},
                                          files=[])
        assert status == 303
        assert headers["Location"].startswith(f"/f/{form_id}/review")
        status, html, _ = await r.get(f"/f/{form_id}/review")
        assert status == 200
        assert "ポチ" in html
        assert "ヤマダ ハナコ" in html
        assert f'href="/f/{form_id}/page/2?lang=ja#dog"' in html
        status, html, headers = await r.follow(f"/f/{form_id}/submit")
        assert status == 200
        ref = re.search(r'id="reference">(F-2026-\d{6})<', html)
        assert ref is not None
        assert ref.group(1) == "F-2026-000001"

        sub = (await rows(r.ctx.store, form_submissions, form_id=form_id))[0]
        assert (sub.reference, sub.status, sub.channel, sub.version) == (
            "F-2026-000001", "received", "web", 1)
        answers = open_json(r.ctx, sub.id, "answers", sub.answers)
        assert answers["dog"] == "ポチ"
        assert answers["nm"]["family_kana"] == "ヤマダ"
        assert answers["mail"] == "Hanako@example.jp"
        assert "山田" not in sub.answers  # sealed
        assert open_field(r.ctx, sub.id, "contact", sub.contact) == "Hanako@example.jp"
        assert (sub.purge_after - sub.created_at).days == 365
        history = await rows(r.ctx.store, form_history, submission_id=sub.id)
        assert [(h.actor, h.status) for h in history] == [("resident", "received")]
        delivery = (await rows(r.ctx.store, form_deliveries, submission_id=sub.id))[0]
        assert delivery.event_type == "submission.received"
        assert "ポチ" not in delivery.body
        assert await count(r.ctx.store, form_drafts, form_id=form_id) == 0
        assert len(await audits(r.ctx.store, "form_submitted")) == 1
        view = (await rows(r.ctx.store, form_views, form_id=form_id))[0]
        assert (view.views, view.starts, view.submissions) == (2, 1, 1)

        receipt = r.mails("Hanako@example.jp")
        assert len(receipt) == 1
        assert "F-2026-000001" in receipt[0].body
        assert "ポチ" not in receipt[0].body
        assert "山田" not in receipt[0].body
        staff = r.mails("staff@city.example")
        assert len(staff) == 1
        assert f"/admin/forms/{form_id}/submissions/{sub.id}" in staff[0].body
        # the draft is gone: the review cannot be opened again
        status, _, _ = await r.get(f"/f/{form_id}/review")
        assert status == 404
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    for secret in ("山田", "ポチ", "Hanako", "example.jp"):
        assert secret not in logged


async def test_errors_are_summarised_and_linked_then_fixed(tmp_path: Path,
                                                           clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        await _start(r, form_id)
        status, html, _ = await r.post(f"/f/{form_id}/page/1", {
            "nm.family": "", "mail": "not-an-address", "has_dog": "no"})
        assert status == 400
        summary = summary_of(html)
        assert 'href="#nm.family"' in summary
        assert 'href="#mail"' in summary
        assert "メールアドレスは name@example.jp" in summary
        assert 'id="mail" name="mail" value="not-an-address"' in html  # kept as typed
        assert 'aria-invalid="true"' in html
        assert "エラー:" in html
        assert html.count('class="error-message"') == 2
        status, _, headers = await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "no"})
        assert status == 303
        # "no": the dog page is skipped, straight to page 2 of 2 (documents)
        status, html, _ = await r.get(headers["Location"])
        assert "書類と同意" in html
        assert "ステップ 2 / 2" in html


async def test_a_hidden_page_s_answers_are_never_submitted(tmp_path: Path,
                                                           clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        await _start(r, form_id)
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "yes"})
        await r.post(f"/f/{form_id}/page/2", {"dog": "ポチ"})
        # back to page 1: no dog after all
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "no"})
        draft = (await rows(r.ctx.store, form_drafts, form_id=form_id))[0]
        assert "dog" not in open_json(r.ctx, draft.id, "answers", draft.answers)
        await r.post(f"/f/{form_id}/page/2", {"ok": "true"}, files=[])
        _status, html, _ = await r.get(f"/f/{form_id}/review")
        assert "ポチ" not in html
        assert "犬について" not in html
        await r.post(f"/f/{form_id}/submit")
        sub = (await rows(r.ctx.store, form_submissions, form_id=form_id))[0]
        answers = open_json(r.ctx, sub.id, "answers", sub.answers)
        assert "dog" not in answers
        assert answers["has_dog"] == "no"


async def test_eicar_is_refused_and_nothing_is_stored_a_pdf_is_sealed(tmp_path: Path,
                                                                      clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        await _start(r, form_id)
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "no"})
        status, html, _ = await r.post(f"/f/{form_id}/page/2", {"ok": "true"},
                                       files=[("doc", "virus.pdf", pdf(text=eicar()),
                                                       "application/pdf")])
        assert status == 400
        summary = summary_of(html)
        assert "ウイルスが検出された" in summary
        assert 'href="#doc"' in summary
        assert await count(r.ctx.store, form_files) == 0
        assert blobs(tmp_path) == []

        document = pdf(4096)
        status, html, _headers = await r.post(
            f"/f/{form_id}/page/2?lang=en", {"ok": "true"},
            files=[("doc", "証明書.pdf", document, "application/pdf")])
        assert status == 303
        stored = (await rows(r.ctx.store, form_files, form_id=form_id))[0]
        assert stored.content_type == "application/pdf"
        assert stored.size == len(document)
        assert "証明書" not in stored.filename  # sealed
        assert open_field(r.ctx, stored.id, "filename", stored.filename) == "証明書.pdf"
        [blob] = blobs(tmp_path)
        assert b"madoguchi" not in blob.read_bytes()  # sealed on disk
        assert await r.ctx.intake.read(stored.id) == document
        status, html, _ = await r.get(f"/f/{form_id}/page/2")
        assert "証明書.pdf" in html
        assert f'name="remove_file" value="{stored.id}"' in html
        await r.post(f"/f/{form_id}/submit")
        sub = (await rows(r.ctx.store, form_submissions, form_id=form_id))[0]
        moved = (await rows(r.ctx.store, form_files, id=stored.id))[0]
        assert (moved.submission_id, moved.draft_id) == (sub.id, None)


async def test_an_attached_file_can_be_removed(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        await _start(r, form_id)
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "no"})
        await r.post(f"/f/{form_id}/page/2", {}, files=[("doc", "a.pdf", pdf(), "application/pdf")])
        [stored] = await rows(r.ctx.store, form_files, form_id=form_id)
        status, _, _ = await r.post(f"/f/{form_id}/page/2", {"remove_file": stored.id},
                                    files=[])
        assert status == 303
        assert await count(r.ctx.store, form_files) == 0
        assert blobs(tmp_path) == []


async def test_old_browsers_and_bad_posts(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        r.user_agent = "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko"
        status, html, _ = await r.get(f"/f/{form_id}")
        assert status == 200
        assert 'id="old-browser"' in html
        assert 'id="start"' not in html
        r.user_agent = "Mozilla/5.0"
        await r.get(f"/f/{form_id}")
        status, _, _ = await r.post(f"/f/{form_id}/start", csrf=False)
        assert status == 403
        assert await count(r.ctx.store, form_drafts) == 0
        status, _, _ = await r.get("/f/fnothere")
        assert status == 404
