"""Deleting a form (builder): only a form that takes no applications and holds none; what goes
with it (versions, residents' unfinished drafts, their attachment rows and sealed files, codes,
counters, views) goes in one step with a ``form_deleted`` audit row; a refusal deletes nothing
and says why; another department's form is a 404; CSRF is required."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from forms_builder_support import DEPT, BuilderHub, builder_hub, form_id_of
from sqlalchemy import func, insert, select

from hub.forms import resident_store
from hub.forms.attachments import Attachment
from hub.forms.tables import TABLES, form_submissions, forms


async def _new(hub: BuilderHub) -> str:
    got = await hub.post("/admin/forms/new?lang=ja", {"department": DEPT, "title_ja": "試験用",
                                                      "title_en": "Test"})
    assert got.status == 303, await got.text()
    return form_id_of(got.headers["Location"])


async def _rows_of(hub: BuilderHub, fid: str) -> dict[str, int]:
    """Rows that name the form, per table (forms_forms by id, the others by form_id)."""
    out: dict[str, int] = {}
    async with hub.ctx.store.read() as tx:
        for table in TABLES:
            col = table.c.id if table is forms else table.c.get("form_id")
            if col is None:
                continue
            n = (await tx.conn.execute(select(func.count()).select_from(table).where(
                col == fid))).scalar_one()
            if n:
                out[table.name] = int(n)
    return out


async def _published_with_a_draft(hub: BuilderHub) -> tuple[str, Path]:
    """A published form with one resident's unfinished draft holding a sealed attachment."""
    fid = await _new(hub)
    assert (await hub.post(f"/admin/forms/{fid}/publish?lang=ja")).status == 303
    ctx = hub.ctx
    draft_id, _token = await resident_store.start_draft(ctx, fid, 1, {"method": "anonymous"})
    data = b"%PDF-1.4 test"
    await ctx.intake.store.put("attach-0001", data)
    draft = await resident_store.load_draft(ctx, fid, _token)
    assert draft is not None
    assert draft.id == draft_id
    await resident_store.add_file(ctx, draft, "doc", Attachment(
        "attach-0001", hashlib.sha256(data).hexdigest(), len(data), "application/pdf", "x.pdf"))
    blobs = [p for p in ctx.settings.files_dir.rglob("*") if p.is_file()]
    assert len(blobs) == 1
    return fid, blobs[0]


async def test_a_draft_form_is_deleted_after_the_confirm_page(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid = await _new(hub)
        page = await (await hub.get(f"/admin/forms/{fid}?lang=ja")).text()
        assert 'id="delete-link"' in page
        got = await hub.get(f"/admin/forms/{fid}/delete?lang=ja")
        html = await got.text()
        assert got.status == 200
        assert 'id="delete-confirm"' in html
        assert "元に戻せません" in html
        assert await _rows_of(hub, fid) != {}
        got = await hub.post(f"/admin/forms/{fid}/delete?lang=ja")
        assert got.status == 303
        assert got.headers["Location"].startswith("/admin/forms?")
        assert "done=deleted" in got.headers["Location"]
        assert await _rows_of(hub, fid) == {}
        (row,) = await hub.audits("form_deleted")
        assert row.target == fid
        listing = await (await hub.get(got.headers["Location"])).text()
        assert "フォームを削除しました" in listing
        assert (await hub.get(f"/admin/forms/{fid}?lang=ja")).status == 404


async def test_a_published_form_must_be_closed_first(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid, blob = await _published_with_a_draft(hub)
        page = await (await hub.get(f"/admin/forms/{fid}?lang=en")).text()
        assert 'id="delete-link"' not in page
        html = await (await hub.get(f"/admin/forms/{fid}/delete?lang=en")).text()
        assert 'id="delete-blocked"' in html
        assert 'id="delete-confirm"' not in html
        before = await _rows_of(hub, fid)
        got = await hub.post(f"/admin/forms/{fid}/delete?lang=en")
        assert got.status == 409
        assert 'data-code="close_first"' in await got.text()
        assert await _rows_of(hub, fid) == before
        assert blob.exists()
        assert await hub.audits("form_deleted") == []

        # closed: the form goes with the resident's draft, its file row and its sealed file
        assert (await hub.post(f"/admin/forms/{fid}/close?lang=en")).status == 303
        html = await (await hub.get(f"/admin/forms/{fid}/delete?lang=en")).text()
        assert 'id="delete-confirm"' in html
        assert before.get("forms_drafts") == 1
        assert before.get("forms_files") == 1
        got = await hub.post(f"/admin/forms/{fid}/delete?lang=en")
        assert got.status == 303
        assert await _rows_of(hub, fid) == {}
        assert not blob.exists()
        (row,) = await hub.audits("form_deleted")
        assert "x.pdf" not in str(row.detail)


async def test_a_form_with_applications_is_kept(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid = await _new(hub)
        assert (await hub.post(f"/admin/forms/{fid}/publish?lang=ja")).status == 303
        assert (await hub.post(f"/admin/forms/{fid}/close?lang=ja")).status == 303
        now = hub.ctx.clock()
        async with hub.ctx.store.begin() as tx:
            await tx.conn.execute(insert(form_submissions).values(
                id="s1", form_id=fid, version=1, reference="F-1", status="awaiting_payment",
                channel="web", answers="x", contact="x", email_hmac="", identity_key="",
                lang="ja", payment="pending", created_at=now, updated_at=now,
                submitted_at=now, purge_after=now + timedelta(days=365)))
        html = await (await hub.get(f"/admin/forms/{fid}/delete?lang=ja")).text()
        assert "保存期間中の申請が残っている" in html
        before = await _rows_of(hub, fid)
        got = await hub.post(f"/admin/forms/{fid}/delete?lang=ja")
        assert got.status == 409
        assert 'data-code="has_submissions"' in await got.text()
        assert await _rows_of(hub, fid) == before


async def test_other_departments_and_forged_posts_delete_nothing(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid = await _new(hub)
        before = await _rows_of(hub, fid)
        other: dict[str, Any] = await hub.cookie("shimin")
        got = await hub.client.post(f"/admin/forms/{fid}/delete?lang=ja",
                                    data={"csrf": hub.csrf}, cookies=other,
                                    allow_redirects=False)
        assert got.status in (403, 404)
        got = await hub.client.post(f"/admin/forms/{fid}/delete?lang=ja", data={},
                                    cookies=hub.cookies, allow_redirects=False)
        assert got.status == 403
        assert await _rows_of(hub, fid) == before
        assert await hub.audits("form_deleted") == []
