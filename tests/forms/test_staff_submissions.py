"""The staff's submission pages over the hub's real app (access guard, CSRF, templates): the list
shows no answers and finds by status, reference and answer text; the detail page labels answers
with the submission's version (和暦 as the field says) and is audited; attachments come back as
the exact bytes with safe headers; actions follow the rule, refuse clearly in ja/en, mail the
resident, write the audit row (no comment) and the webhook outbox row; another department's
staff get a 404."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from clamd_support import eicar, pdf, start_clamd
from forms_staff_support import (
    PDF,
    add_form,
    add_submission,
    audits,
    count,
    csrf_of,
    staff_hub,
)

from hub.forms.tables import form_deliveries


async def test_list_search_and_scope(tmp_path: Path) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        sid1, ref1 = await add_submission(hub.ctx, form_id)
        hub.clock.move(hours=1)
        other = {"name": {"family": "佐藤", "given": "一郎", "family_kana": "サトウ",
                          "given_kana": "イチロウ"}, "birth": "1990-01-02", "kind": "move"}
        sid2, ref2 = await add_submission(hub.ctx, form_id, answers=other,
                                          status="completed")
        cookie = await hub.cookie()
        base = f"/admin/forms/{form_id}/submissions"
        resp = await hub.client.get(f"{base}?lang=ja", cookies=cookie)
        html = await resp.text()
        assert resp.status == 200
        assert ref1 in html
        assert ref2 in html
        assert "山田" not in html  # no answers in the list
        assert "佐藤" not in html
        assert await audits(hub.ctx.store, "form_submission_viewed") == []
        html = await (await hub.client.get(f"{base}?status=completed", cookies=cookie)).text()
        assert ref2 in html
        assert ref1 not in html
        html = await (await hub.client.get(f"{base}?q=サトウ", cookies=cookie)).text()
        assert ref2 in html
        assert ref1 not in html
        html = await (await hub.client.get(f"{base}?q={ref1}", cookies=cookie)).text()
        assert ref1 in html
        assert ref2 not in html
        outsider = await hub.cookie(department="kankyo")
        resp = await hub.client.get(base, cookies=outsider)
        assert resp.status == 404
        resp = await hub.client.get(f"{base}/{sid1}", cookies=outsider)
        assert resp.status == 404
        assert sid2


async def test_detail_download_and_actions(tmp_path: Path) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx, webhook_url="https://hooks.example/f",
                                 secrets_=["whsec_AAAA"])
        sid, ref = await add_submission(hub.ctx, form_id, files={"就労証明.pdf": PDF})
        cookie = await hub.cookie()
        here = f"/admin/forms/{form_id}/submissions/{sid}"
        resp = await hub.client.get(f"{here}?lang=ja", cookies=cookie)
        html = await resp.text()
        assert resp.status == 200
        assert "生年月日" in html
        assert "令和2年4月1日" in html
        assert "山田 花子（ヤマダ ハナコ）" in html
        assert "新規" in html  # the option's label, not its value
        assert len(await audits(hub.ctx.store, "form_submission_viewed")) == 1
        csrf = csrf_of(html)
        # the attachment: exact bytes, never inline
        link = html.split(f'{here}/files/')[1].split('"')[0]
        got = await hub.client.get(f"{here}/files/{link}", cookies=cookie)
        assert got.status == 200
        assert await got.read() == PDF
        assert got.headers["Content-Type"] == "application/pdf"
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Disposition"].startswith("attachment;")
        assert "%E5%B0%B1" in got.headers["Content-Disposition"]  # 就, RFC 5987
        assert len(await audits(hub.ctx.store, "form_file_downloaded")) == 1
        # a return needs a comment: said in the staff's language
        resp = await hub.client.post(f"{here}/return?lang=en", cookies=cookie,
                                     data={"csrf": csrf, "comment": " "})
        assert resp.status == 400
        assert "Say in the comment what the resident must correct" in await resp.text()
        resp = await hub.client.post(f"{here}/start", cookies=cookie, data={"csrf": csrf},
                                     allow_redirects=False)
        assert resp.status == 303
        resp = await hub.client.post(f"{here}/return", cookies=cookie, allow_redirects=False,
                                     data={"csrf": csrf, "comment": "印鑑が押されていません"})
        assert resp.status == 303
        (mail,) = list(hub.box)
        assert mail.to == "hanako@example.jp"
        assert "印鑑が押されていません" in mail.body
        assert f"https://ward.example/f/{form_id}/s/{ref}" in mail.body
        assert "山田" not in mail.body  # no answers in mails
        # completing a returned one is refused: only the resident moves it on
        resp = await hub.client.post(f"{here}/complete?lang=ja", cookies=cookie,
                                     data={"csrf": csrf, "comment": ""})
        assert resp.status == 409
        assert "「差し戻し」の申請は「完了にする」ことができません" in await resp.text()
        resp = await hub.client.post(f"{here}/comment", cookies=cookie, allow_redirects=False,
                                     data={"csrf": csrf, "comment": "電話で説明済み"})
        assert resp.status == 303
        html = await (await hub.client.get(f"{here}?lang=ja", cookies=cookie)).text()
        assert 'data-status="returned"' in html
        assert "電話で説明済み" in html
        assert "内部メモ" in html
        changes = [json.loads(a.detail) for a in await audits(hub.ctx.store,
                                                               "form_status_changed")]
        assert [(c["from"], c["to"]) for c in changes] == [("received", "in_review"),
                                                          ("in_review", "returned")]
        assert all("印鑑" not in json.dumps(c, ensure_ascii=False) for c in changes)
        assert await count(hub.ctx.store, form_deliveries,
                           event_type="submission.status_changed") == 2
        # without the CSRF token nothing happens
        resp = await hub.client.post(f"{here}/comment", cookies=cookie,
                                     data={"comment": "x"})
        assert resp.status == 403


async def test_staff_entered_submission(tmp_path: Path) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        cookie = await hub.cookie()
        base = f"/admin/forms/{form_id}/submissions"
        resp = await hub.client.get(f"{base}/new?lang=ja", cookies=cookie)
        html = await resp.text()
        assert resp.status == 200
        assert 'name="name.family"' in html
        csrf = csrf_of(html)
        resp = await hub.client.post(f"{base}/new?lang=ja", cookies=cookie, data={
            "csrf": csrf, "name.family": "山田", "contact": "not-an-address"})
        assert resp.status == 400
        text = await resp.text()
        assert "メールアドレスの形式" in text
        assert 'href="#contact"' in text
        resp = await hub.client.post(f"{base}/new?lang=ja", cookies=cookie, allow_redirects=False,
                                     data={"csrf": csrf, "name.family": "山田",
                                           "name.given": "太郎", "name.family_kana": "やまだ",
                                           "name.given_kana": "タロウ", "birth": "令和2年4月1日",
                                           "kind": "new", "contact": ""})
        assert resp.status == 303, await resp.text()
        detail = resp.headers["Location"]
        html = await (await hub.client.get(detail, cookies=cookie)).text()
        assert "ヤマダ タロウ" in html  # normalised by the same rules as the resident pages
        assert "職員入力" in html
        assert len(await audits(hub.ctx.store, "form_staff_entered")) == 1


async def test_api_key_is_shown_once(tmp_path: Path) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        cookie = await hub.cookie()
        base = f"/admin/forms/{form_id}/submissions"
        csrf = csrf_of(await (await hub.client.get(base, cookies=cookie)).text())
        resp = await hub.client.post(f"{base}/api-key", cookies=cookie, data={"csrf": csrf})
        html = await resp.text()
        key = html.split('<code class="secret">')[1].split("<")[0]
        assert key.startswith("mfk_")
        again = await (await hub.client.get(base, cookies=cookie)).text()
        assert key not in again
        assert len(await audits(hub.ctx.store, "form_secret_created")) == 1


async def test_staff_entry_with_scanned_attachments(tmp_path: Path) -> None:
    """A paper application's scan goes through the real clamd: a clean PDF is stored with the
    submission (exact bytes back), EICAR is refused in words and nothing of it is kept."""
    daemon = start_clamd()
    try:
        async with staff_hub(tmp_path, daemon.client()) as hub:
            form_id = await add_form(hub.ctx)
            cookie = await hub.cookie()
            base = f"/admin/forms/{form_id}/submissions"
            html = await (await hub.client.get(f"{base}/new", cookies=cookie)).text()
            csrf = csrf_of(html)
            assert f"csrf={csrf}" in html  # streamed: the token is in the action URL

            def body(data: bytes, name: str) -> aiohttp.FormData:
                fd = aiohttp.FormData()
                for k, v in (("name.family", "山田"), ("name.given", "太郎"),
                             ("name.family_kana", "ヤマダ"), ("name.given_kana", "タロウ"),
                             ("birth", "2020-04-01"), ("kind", "new")):
                    fd.add_field(k, v)
                fd.add_field("doc", data, filename=name, content_type="application/pdf")
                return fd

            resp = await hub.client.post(f"{base}/new?lang=en&csrf={csrf}", cookies=cookie,
                                         data=body(pdf(text=eicar()), "scan.pdf"))
            assert resp.status == 400
            assert "virus" in (await resp.text()).lower()
            assert not list((tmp_path / "form-files").rglob("*.bin"))
            scan = pdf(4096)
            resp = await hub.client.post(f"{base}/new?csrf={csrf}", cookies=cookie,
                                         data=body(scan, "moushikomi.pdf"), allow_redirects=False)
            assert resp.status == 303, await resp.text()
            html = await (await hub.client.get(resp.headers["Location"], cookies=cookie)).text()
            assert "moushikomi.pdf" in html  # aiohttp's client %-encodes other names
            link = html.split("/files/")[1].split('"')[0]
            got = await hub.client.get(f"{resp.headers['Location'].split('?')[0]}/files/{link}",
                                       cookies=cookie)
            assert await got.read() == scan
    finally:
        daemon.stop()


async def test_list_dates_and_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.forms import staff_query

    monkeypatch.setattr(staff_query, "PER_PAGE", 2)
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        refs = []
        for _ in range(3):
            refs.append((await add_submission(hub.ctx, form_id))[1])
            hub.clock.move(days=2)  # 12-01, 12-03, 12-05 (JST evening)
        cookie = await hub.cookie()
        base = f"/admin/forms/{form_id}/submissions"

        async def shown(query: str) -> list[str]:
            html = await (await hub.client.get(f"{base}?{query}", cookies=cookie)).text()
            return [r for r in refs if r in html]

        assert await shown("since=2026-12-02&until=2026-12-04") == [refs[1]]
        assert await shown("until=2026-12-01") == [refs[0]]
        assert await shown("page=1") == [refs[1], refs[2]]  # newest first, two a page
        assert await shown("page=2") == [refs[0]]
        assert await shown("q=花子&page=2") == [refs[0]]  # text search pages too
        assert await shown(f"q={refs[2][-6:]}") == [refs[2]]  # digits: in references too
