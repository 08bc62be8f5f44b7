"""The form builder over HTTP (F1, F6): a three-page form with a conditional page, an address
with postal code and a file field; refusals with the error summary and nothing saved; publish,
edit, publish again with v1 unchanged; copy; export/import; department scope; every change
audited."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from aiohttp import FormData
from forms_builder_support import DEPT, BuilderHub, builder_hub, form_id_of
from sqlalchemy import insert

from hub.forms.model import AddressField, ChoiceField, FileField, Rule
from hub.forms.tables import form_submissions, form_views


def _upload(body: bytes) -> FormData:
    data = FormData()
    data.add_field("department", DEPT)
    data.add_field("file", body, filename="form.json", content_type="application/json")
    return data


async def _new(hub: BuilderHub, title: str = "保育園入園申込") -> str:
    got = await hub.post("/admin/forms/new?lang=ja", {"department": DEPT, "title_ja": title,
                                                      "title_en": "Nursery"})
    assert got.status == 303, await got.text()
    return form_id_of(got.headers["Location"])


async def _add(hub: BuilderHub, fid: str, page: str, kind: str) -> str:
    got = await hub.post(f"/admin/forms/{fid}/pages/{page}/fields?lang=ja", {"type": kind})
    assert got.status == 303, await got.text()
    return got.headers["Location"].rsplit("#field-", 1)[1]


async def _three_pages(hub: BuilderHub) -> tuple[str, dict[str, str]]:
    fid = await _new(hub)
    ids: dict[str, str] = {}
    ids["kind"] = await _add(hub, fid, "p1", "choice")
    got = await hub.post(f"/admin/forms/{fid}/fields/{ids['kind']}?lang=ja", {
        "label_ja": "申込の種類", "label_en": "Kind", "required": "1",
        "options": "new|新規|New\nmove|転園|Move"})
    assert got.status == 303, await got.text()
    for _ in range(2):
        assert (await hub.post(f"/admin/forms/{fid}/pages?lang=ja", {})).status == 303
    ids["addr"] = await _add(hub, fid, "p2", "address")
    ids["doc"] = await _add(hub, fid, "p3", "file")
    got = await hub.post(f"/admin/forms/{fid}/fields/{ids['doc']}?lang=ja", [
        ("label_ja", "在園証明書"), ("required", "1"), ("max_mb", "5"), ("max_files", "2"),
        ("allowed", "pdf"), ("allowed", "png")])
    assert got.status == 303, await got.text()
    got = await hub.post(f"/admin/forms/{fid}/pages/p3?lang=ja", {
        "title_ja": "転園の書類", "title_en": "Papers", "cond_field": ids["kind"],
        "cond_op": "equals", "cond_value": "move"})
    assert got.status == 303, await got.text()
    return fid, ids


async def test_build_publish_edit_copy_export_import(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid, ids = await _three_pages(hub)
        draft = await hub.draft(fid)
        assert [p.id for p in draft.pages] == ["p1", "p2", "p3"]
        kind = draft.pages[0].fields[0]
        assert isinstance(kind, ChoiceField)
        assert [o.value for o in kind.options] == ["new", "move"]
        assert isinstance(draft.pages[1].fields[0], AddressField)
        doc = draft.pages[2].fields[0]
        assert isinstance(doc, FileField)
        assert doc.max_bytes == 5_000_000
        assert doc.max_files == 2
        assert doc.allowed_types == ("application/pdf", "image/png")
        assert draft.pages[2].condition == Rule(field=ids["kind"], op="equals", value="move")

        page = await hub.get(f"/admin/forms/{fid}?lang=ja")
        html = await page.text()
        assert page.status == 200
        assert "転園の書類" in html
        assert 'data-type="address"' in html
        preview = await hub.get(f"/admin/forms/{fid}/preview?page=2&lang=ja")
        assert preview.status == 200
        assert 'data-testid="phone"' in await preview.text()
        assert (await hub.get("/admin/forms/schema.json")).status == 200

        # refused: a condition on a later field; a choice without options — nothing saved
        before = (await hub.row(fid)).draft
        got = await hub.post(f"/admin/forms/{fid}/fields/{ids['kind']}?lang=ja", {
            "label_ja": "申込の種類", "options": "new|新規|New\nmove|転園|Move",
            "cond_field": ids["addr"], "cond_op": "not_empty"})
        text = await got.text()
        assert got.status == 400
        assert 'data-testid="errors"' in text
        assert 'data-code="forward_reference"' in text
        assert 'href="#f-cond_field"' in text
        got = await hub.post(f"/admin/forms/{fid}/fields/{ids['kind']}?lang=ja", {
            "label_ja": "申込の種類", "options": ""})
        text = await got.text()
        assert got.status == 400
        assert 'data-code="no_options"' in text
        assert 'href="#f-options"' in text
        got = await hub.post(f"/admin/forms/{fid}/fields/{ids['kind']}/delete?lang=ja")
        assert got.status == 400
        assert 'data-code="referenced"' in await got.text()
        assert (await hub.row(fid)).draft == before

        # publish v1, edit, v1 unchanged, publish v2
        assert (await hub.post(f"/admin/forms/{fid}/publish?lang=ja")).status == 303
        row = await hub.row(fid)
        assert row.status == "published"
        assert row.published_version == 1
        v1 = (await hub.versions(fid))[1]
        await _add(hub, fid, "p1", "email")
        assert (await hub.versions(fid)) == {1: v1}
        assert (await hub.post(f"/admin/forms/{fid}/publish?lang=ja")).status == 303
        got_versions = await hub.versions(fid)
        assert got_versions[1] == v1
        assert len(json.loads(got_versions[2])["pages"][0]["fields"]) == 2
        assert (await hub.row(fid)).published_version == 2
        old = await hub.get(f"/admin/forms/{fid}/export.json?version=1")
        assert json.loads(await old.read())["form"]["version"] == 1
        missing = await hub.get(f"/admin/forms/{fid}/export.json?version=9")
        assert missing.status == 404
        assert (await missing.json())["error"]["code"] == "not_found"
        assert (await hub.post(f"/admin/forms/{fid}/close?lang=ja")).status == 303
        assert (await hub.row(fid)).status == "closed"
        assert (await hub.post(f"/admin/forms/{fid}/reopen?lang=ja")).status == 303

        # copy
        got = await hub.post(f"/admin/forms/{fid}/copy?lang=ja")
        copy_id = form_id_of(got.headers["Location"])
        copied = await hub.row(copy_id)
        assert copy_id != fid
        assert copied.status == "draft"
        assert copied.title.endswith("（コピー）")

        # export → import round trip
        exported = await hub.get(f"/admin/forms/{fid}/export.json?lang=ja")
        assert exported.status == 200
        body = await exported.read()
        got = await hub.client.post(
            f"/admin/forms/import?lang=ja&csrf={hub.csrf}", cookies=hub.cookies,
            data=_upload(body), allow_redirects=False)
        assert got.status == 303, await got.text()
        new_id = form_id_of(got.headers["Location"])
        mine, theirs = await hub.draft(fid), await hub.draft(new_id)
        assert theirs.version == 1  # a new form here: its versions start again
        assert theirs.model_dump(exclude={"id", "version"}) == mine.model_dump(
            exclude={"id", "version"})
        bad = await hub.client.post(
            f"/admin/forms/import?lang=ja&csrf={hub.csrf}", cookies=hub.cookies,
            data=_upload(b'{"format": "other"}'), allow_redirects=False)
        assert bad.status == 400
        assert 'data-code="not_export"' in await bad.text()

        # every change audited, without content
        changed = await hub.audits("form_changed")
        kinds = [json.loads(a.detail)["kind"] if isinstance(a.detail, str) else a.detail["kind"]
                 for a in changed]
        assert kinds == ["add_field", "field", "add_page", "add_page", "add_field", "add_field",
                         "field", "page", "add_field", "status"]  # refusals saved nothing
        assert all("転園" not in str(a.detail) for a in changed)
        for action, n in (("form_created", 1), ("form_published", 2), ("form_copied", 1),
                          ("form_exported", 2), ("form_imported", 1), ("form_closed", 1)):
            assert len(await hub.audits(action)) == n, action


async def _activity(hub: BuilderHub, fid: str) -> None:
    """Views (today, 10 and 40 days ago) and submissions, as the resident pages record them."""
    now = hub.ctx.clock()
    async with hub.ctx.store.begin() as tx:
        for days, views, starts in ((0, 7, 3), (10, 5, 2), (40, 100, 50)):
            await tx.conn.execute(insert(form_views).values(
                form_id=fid, day=(now - timedelta(days=days)).date().isoformat(),
                views=views, starts=starts, submissions=1))
        for n, status in enumerate(("received", "received", "completed")):
            await tx.conn.execute(insert(form_submissions).values(
                id=f"s{n}", form_id=fid, version=1, reference=f"F-{n}", status=status,
                channel="web", answers="x", contact="x", email_hmac="", identity_key="",
                lang="ja", payment="none", created_at=now, updated_at=now, submitted_at=now,
                purge_after=now + timedelta(days=365)))


async def test_scope_and_roles(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid = await _new(hub)
        await _activity(hub, fid)
        listing = await (await hub.get("/admin/forms?lang=en")).text()
        assert f'data-form="{fid}"' in listing
        row = listing.split(f'data-form="{fid}"', 1)[1].split("</tr>", 1)[0]
        assert re.search(r'data-status="received">Received <strong>2</strong>', row)
        assert re.search(r'data-status="completed">Completed <strong>1</strong>', row)
        assert "views <strong>12</strong>" in row  # 40 days ago not counted
        assert "starts <strong>5</strong>" in row
        await hub.sign_in("shimin")
        assert (await hub.get(f"/admin/forms/{fid}?lang=ja")).status == 404
        assert (await hub.post(f"/admin/forms/{fid}/publish?lang=ja")).status == 404
        assert f'data-form="{fid}"' not in await (await hub.get("/admin/forms")).text()
        hub.cookies = await hub.cookie(DEPT, "counter_staff")
        assert (await hub.get("/admin/forms")).status == 403


async def test_settings_and_secret(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid = await _new(hub)
        base = {"title_ja": "新しい題", "identity": "email_code", "retention_days": "1827",
                "webhook_url": "http://169.254.169.254/x", "notify": "staff@ward.example"}
        got = await hub.post(f"/admin/forms/{fid}/settings?lang=ja", base)
        text = await got.text()
        assert got.status == 400
        assert 'data-code="bad_retention"' in text
        assert 'data-code="bad_webhook"' in text
        assert "最長5年" in text
        assert (await hub.draft(fid)).title.ja == "保育園入園申込"
        got = await hub.post(f"/admin/forms/{fid}/settings?lang=ja", {
            **base, "retention_days": "1826", "webhook_url": "https://biz.example/hook"})
        assert got.status == 303, await got.text()
        draft = await hub.draft(fid)
        assert (draft.title.ja, draft.identity, draft.retention_days) == (
            "新しい題", "email_code", 1826)
        row = await hub.row(fid)
        assert row.webhook_url == "https://biz.example/hook"
        assert "staff@ward.example" not in row.notify_staff  # sealed
        got = await hub.post(f"/admin/forms/{fid}/secret?lang=ja")
        text = await got.text()
        assert got.status == 200
        assert "whsec_" in text
        assert "whsec_" not in (await hub.row(fid)).webhook_secrets
        assert len(await hub.audits("form_secret_created")) == 1


async def test_move_and_delete(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid = await _new(hub)
        first, second = await _add(hub, fid, "p1", "text"), await _add(hub, fid, "p1", "name")
        got = await hub.post(f"/admin/forms/{fid}/fields/{second}/move?lang=ja", {"dir": "up"})
        assert got.status == 303
        assert [f.id for f in (await hub.draft(fid)).pages[0].fields] == [second, first]
        got = await hub.post(f"/admin/forms/{fid}/fields/{second}/move?lang=ja", {"dir": "up"})
        assert got.status == 400
        assert 'data-code="cannot_move"' in await got.text()
        assert (await hub.post(f"/admin/forms/{fid}/fields/{first}/delete?lang=ja")).status == 303
        assert [f.id for f in (await hub.draft(fid)).pages[0].fields] == [second]
        got = await hub.post(f"/admin/forms/{fid}/pages/p1/delete?lang=ja")
        assert got.status == 400
        assert 'data-code="last_page"' in await got.text()
        assert (await hub.get(f"/admin/forms/{fid}/fields/nope?lang=ja")).status == 404
