"""The notice staff pages over HTTP (hub app, its access guard and CSRF): create a notice by
the form, refuse a bad form (400, each message at its field, nothing saved), department scope
(list and 404), a cp932 list with a bad line (listed, nothing imported), the PDF match report,
the live stream (SSE) after a change made directly in the database, the CSV export (BOM and
cp932, formula cells escaped, audited), and Chromium screenshots at 1366×768 with the table
updating live."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from notices_pdf_support import csv_bytes, make_notice_pdf, make_recipients_csv
from notices_portal_support import add_notice, add_recipient
from notices_staff_support import StaffHub, csrf_of, staff_hub
from sqlalchemy import update

from hub.auth.guard import COOKIE
from hub.notices.tables import notice_recipients, notices

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "notices"
FORM = {"department": "zeimu", "title": "住民税の決定通知", "description": "令和8年度の決定です。",
        "message_ja": "詳しくは[区のページ](https://www.city.example.jp/zei)をご覧ください。",
        "message_en": "See the ward's page.", "auth": "code", "remind_after_days": "7",
        "remind_max": "2", "retention_days": "365", "test_addresses": "staff@city.example.jp"}


@pytest.fixture
async def hub(tmp_path: Path) -> Any:
    async with staff_hub(tmp_path) as h:
        yield h


async def _get(hub: StaffHub, cookie: dict[str, str], path: str) -> tuple[int, str]:
    async with hub.client.get(path, cookies=cookie, allow_redirects=False) as r:
        return r.status, await r.text()


async def _create(hub: StaffHub, cookie: dict[str, str], **over: str) -> str:
    status, html = await _get(hub, cookie, "/admin/notices/new")
    assert status == 200, html
    async with hub.client.post("/admin/notices/new?lang=ja", cookies=cookie, allow_redirects=False,
                               data={**FORM, **over, "csrf": csrf_of(html)}) as r:
        assert r.status == 303, await r.text()
        match = re.match(r"^/admin/notices/([A-Za-z0-9_-]+)\?", r.headers["Location"])
    assert match is not None
    return match.group(1)


async def _upload(hub: StaffHub, cookie: dict[str, str], nid: str, what: str, data: bytes,
                  name: str, **fields: str) -> tuple[int, str, str]:
    _, page = await _get(hub, cookie, f"/admin/notices/{nid}")
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name)
    for k, v in fields.items():
        form.add_field(k, v)
    async with hub.client.post(f"/admin/notices/{nid}/{what}?csrf={csrf_of(page)}&lang=ja",
                               data=form, cookies=cookie, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


async def test_create_list_and_department_scope(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    nid = await _create(hub, zeimu)
    status, html = await _get(hub, zeimu, f"/admin/notices/{nid}?done=created")
    assert status == 200
    assert "住民税の決定通知" in html
    assert "通知を作成しました" in html
    assert "下書き" in html
    status, html = await _get(hub, zeimu, "/admin/notices")
    assert status == 200
    assert f'data-notice="{nid}"' in html
    assert "新しい通知を作成" in html
    other = await hub.cookie("kokuho")
    status, html = await _get(hub, other, "/admin/notices")
    assert status == 200
    assert nid not in html
    assert "住民税の決定通知" not in html
    for path in ("", "/settings", "/export.csv", "/live"):
        status, html = await _get(hub, other, f"/admin/notices/{nid}{path}")
        assert status == 404, path
        assert "通知が見つかりません" in html
        assert "Traceback" not in html
    admin_like = await hub.cookie("*")  # notice staff of every department
    assert (await _get(hub, admin_like, f"/admin/notices/{nid}"))[0] == 200
    # a settings change by the form, and the English page
    _, page = await _get(hub, zeimu, f"/admin/notices/{nid}/settings?lang=en")
    assert "Notice settings" in page
    assert 'value="住民税の決定通知"' in page
    async with hub.client.post(f"/admin/notices/{nid}/settings?lang=ja", cookies=zeimu,
                               allow_redirects=False, data={**FORM, "title": "変更後の件名",
                                                            "csrf": csrf_of(page)}) as r:
        assert r.status == 303
    assert "変更後の件名" in (await _get(hub, zeimu, f"/admin/notices/{nid}"))[1]


async def test_bad_form_shows_every_message_and_saves_nothing(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    _, page = await _get(hub, zeimu, "/admin/notices/new?lang=en")
    bad = {**FORM, "title": "", "retention_days": "abc", "test_addresses": "not-an-address",
           "message_ja": "", "csrf": csrf_of(page)}
    async with hub.client.post("/admin/notices/new?lang=en", cookies=zeimu, data=bad) as r:
        assert r.status == 400
        html = await r.text()
    for name in ("title", "retention_days", "test_addresses", "message_ja"):
        assert f'data-field="{name}"' in html, name
        assert f'id="f-{name}-error"' in html, name
    assert "Enter a title of up to 120 characters" in html
    assert await hub.count(notices) == 0
    # a department the staff member does not work for
    async with hub.client.post("/admin/notices/new?lang=ja", cookies=zeimu,
                               data={**FORM, "department": "kokuho", "csrf": csrf_of(page)}) as r:
        assert r.status == 400
        assert "担当の所属課だけを選べます" in await r.text()
    assert await hub.count(notices) == 0


async def test_cp932_list_with_a_bad_line_imports_nothing(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    nid = await _create(hub, zeimu)
    rows = [["通知番号", "氏名", "メールアドレス"], ["A0001", "練馬 太郎", "taro@example.jp"],
            ["A0002", "練馬 花子", "これはメールではない"],
            ["A0003", "石神井 次郎", "jiro@example.jp"]]
    status, html, _ = await _upload(hub, zeimu, nid, "recipients", csv_bytes(rows, "cp932"),
                                    "list.csv")
    assert status == 400, html
    assert "送付先リストに誤りがあります" in html
    assert re.search(r'<li data-line="3"[^>]*>3行目', html), html
    assert await hub.count(notice_recipients, notice_id=nid) == 0
    # the right list: imported, shown with masked addresses; the view is audited
    status, _, location = await _upload(hub, zeimu, nid, "recipients",
                                        make_recipients_csv(4, "cp932"), "list.csv")
    assert status == 303
    assert "done=imported" in location
    assert "n=4" in location
    views_before = len(await hub.audits("notice_viewed"))
    status, html = await _get(hub, zeimu, location)
    assert "送付先リストを取り込みました（4件）" in html
    assert "練馬 太郎1" in html
    assert "r***@example.jp" in html
    assert "resident1@example.jp" not in html
    assert len(await hub.audits("notice_viewed")) == views_before + 1
    # the PDF split by key: one part without a recipient, one recipient without a part
    pdf = make_notice_pdf(["A0001", "A0002", "A0003", "Z9999"], pages_each=2)
    status, _, location = await _upload(hub, zeimu, nid, "pdf", pdf, "batch.pdf", mode="key",
                                        pattern="", pages="")
    assert status == 303, location
    _, html = await _get(hub, zeimu, location)
    assert "送付先 4件のうち 3件にPDFを突合しました" in html
    parts = html.split('data-testid="unmatched-parts"')[1].split("</table>")[0]
    assert "Z9999" in parts
    assert ">7<" in parts
    lines = html.split('data-testid="unmatched-recipients"')[1].split("</table>")[0]
    assert "A0004" in lines
    assert ">5<" in lines
    # not ready: the refusal is shown on the page, not a 500
    async with hub.client.post(f"/admin/notices/{nid}/ready?lang=en", cookies=zeimu,
                               data={"csrf": csrf_of(html)}) as r:
        assert r.status == 400
        assert "Sign every PDF first" in await r.text()


async def _sent_notice(hub: StaffHub) -> tuple[str, list[str]]:
    nid = await add_notice(hub.ctx, title="固定資産税の減額決定通知")
    async with hub.ctx.store.begin() as tx:
        await tx.conn.execute(update(notices).where(notices.c.id == nid).values(
            department="zeimu"))
    ids = []
    for i, (name, mail) in enumerate((("練馬 太郎", "taro@example.jp"),
                                      ("=HYPERLINK(\"x\")", "hana@example.jp"),
                                      ("髙橋 一郎", "ichiro@example.jp")), start=2):
        rid, _ = await add_recipient(hub.ctx, nid, name=name, email=mail, line=i)
        ids.append(rid)
    return nid, ids


async def _open(hub: StaffHub, rid: str, nid: str) -> None:
    now = datetime.now(UTC)
    async with hub.ctx.store.begin() as tx:
        await tx.conn.execute(update(notice_recipients).where(
            notice_recipients.c.id == rid).values(opened_at=now, downloads=1, updated_at=now))
        await tx.conn.execute(update(notices).where(notices.c.id == nid).values(updated_at=now))


async def _event(stream: aiohttp.StreamReader, timeout: float) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        name = ""
        while True:
            line = (await stream.readline()).decode()
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: ") and name == "status":
                return dict(json.loads(line[6:]))
    return await asyncio.wait_for(read(), timeout)


async def test_live_stream_follows_a_change_in_the_database(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    nid, ids = await _sent_notice(hub)
    async with hub.client.get(f"/admin/notices/{nid}/live", cookies=zeimu) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        first = await _event(r.content, 5)
        assert first["status"] == "sent"
        assert first["figures"]["opened"] == 0
        assert {row["id"] for row in first["rows"]} == set(ids)
        assert all(row["opened_at"] == "" for row in first["rows"])
        await _open(hub, ids[0], nid)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        second = await _event(r.content, 2)
        assert loop.time() - t0 < 2
        row = next(x for x in second["rows"] if x["id"] == ids[0])
        assert row["opened_at"]
        assert row["downloads"] == 1
        assert second["figures"]["opened"] == 1
        assert second["figures"]["unopened"] == 2
        text = json.dumps([first, second], ensure_ascii=False)
        assert "taro@" not in text
        assert "練馬" not in text


async def test_export_csv_bom_and_cp932_audited(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    nid, _ids = await _sent_notice(hub)
    async with hub.client.get(f"/admin/notices/{nid}/export.csv?encoding=utf-8-sig",
                              cookies=zeimu) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/csv")
        body = await r.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["行", "氏名", "メールアドレス", "通知番号", "状態", "SMTPコード", "送信日時",
                       "開封日時", "連絡回数", "ダウンロード回数"]
    assert rows[1][:5] == ["2", "練馬 太郎", "taro@example.jp", "K0002", "送信済み"]
    assert rows[2][1] == "'=HYPERLINK(\"x\")"  # a formula is not run by the spreadsheet
    async with hub.client.get(f"/admin/notices/{nid}/export.csv?encoding=cp932&lang=en",
                              cookies=zeimu) as r:
        body = await r.read()
    assert not body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("cp932"))))
    assert rows[0][0] == "Line"
    assert rows[3][1] == "髙橋 一郎"
    assert rows[3][4] == "Sent"
    audits = await hub.audits("notice_exported")
    assert len(audits) == 2
    assert all(a.target == nid for a in audits)


async def test_screenshots_and_live_update_in_chromium(hub: StaffHub, chromium_path: Path,
                                                       tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    zeimu = await hub.cookie("zeimu")
    draft = await _create(hub, zeimu)
    await _upload(hub, zeimu, draft, "recipients", make_recipients_csv(4, "cp932"), "l.csv")
    await _upload(hub, zeimu, draft, "pdf", make_notice_pdf(["A0001", "A0002", "A0003", "Z9"]),
                  "b.pdf", mode="key", pattern="", pages="")
    nid, ids = await _sent_notice(hub)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        try:
            for lang in ("ja", "en"):
                ctx = await browser.new_context(viewport={"width": 1366, "height": 768},
                                                locale="ja-JP" if lang == "ja" else "en-US")
                await ctx.add_cookies([{"name": COOKIE, "value": zeimu[COOKIE],
                                        "url": hub.url}])
                page = await ctx.new_page()
                errors: list[str] = []

                def console(m: Any, errors: list[str] = errors) -> None:
                    if m.type == "error":
                        errors.append(m.text)
                page.on("console", console)
                await page.goto(f"{hub.url}/admin/notices?lang={lang}")
                await page.screenshot(path=str(SHOTS / f"list-{lang}.png"))
                await page.goto(f"{hub.url}/admin/notices/{draft}?lang={lang}")
                await page.screenshot(path=str(SHOTS / f"draft-{lang}.png"), full_page=True)
                await page.goto(f"{hub.url}/admin/notices/{nid}?lang={lang}")
                await page.wait_for_timeout(700)  # the stream's first event
                await page.screenshot(path=str(SHOTS / f"sent-{lang}.png"), full_page=True)
                await page.goto(f"{hub.url}/admin/notices/new?lang={lang}")
                await page.screenshot(path=str(SHOTS / f"new-{lang}.png"), full_page=True)
                assert not errors, errors
                await ctx.close()
            ctx = await browser.new_context(viewport={"width": 1366, "height": 768})
            await ctx.add_cookies([{"name": COOKIE, "value": zeimu[COOKIE], "url": hub.url}])
            page = await ctx.new_page()
            await page.goto(f"{hub.url}/admin/notices/{nid}?lang=ja")
            cell = page.locator(f'tr[data-id="{ids[1]}"] [data-cell="opened_at"]')
            assert (await cell.inner_text()).strip() == "未開封"
            await page.wait_for_timeout(800)  # connected
            await _open(hub, ids[1], nid)
            await page.wait_for_function(
                "id => /\\d{4}-\\d\\d-\\d\\d/.test(document.querySelector("
                "`tr[data-id=\"${id}\"] [data-cell=opened_at]`).textContent)", arg=ids[1],
                timeout=2000)
            assert await page.locator('[data-figure="opened"]').inner_text() == "1"
            await page.screenshot(path=str(SHOTS / "sent-live-ja.png"))
            await ctx.close()
        finally:
            await browser.close()


async def _post(hub: StaffHub, cookie: dict[str, str], nid: str, what: str,
                **data: str) -> tuple[int, str, str]:
    _, page = await _get(hub, cookie, f"/admin/notices/{nid}")
    async with hub.client.post(f"/admin/notices/{nid}/{what}?lang=ja", cookies=cookie,
                               allow_redirects=False,
                               data={**data, "csrf": csrf_of(page)}) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


async def test_ready_send_recontact_and_close_without_pdf(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    nid = await _create(hub, zeimu)
    await _upload(hub, zeimu, nid, "recipients", make_recipients_csv(3, "utf-8-sig"), "l.csv")
    assert (await _post(hub, zeimu, nid, "ready"))[0] == 303
    status, html, _ = await _post(hub, zeimu, nid, "send")  # no confirmation ticked
    assert status == 400
    assert "確認欄にチェック" in html
    status, _, location = await _post(hub, zeimu, nid, "send", confirm="1")
    assert status == 303
    assert "done=send_started" in location
    for _ in range(50):
        _, html = await _get(hub, zeimu, f"/admin/notices/{nid}")
        if 'data-testid="notice-status">送信済み' in html:
            break
        await asyncio.sleep(0.1)
    assert 'data-testid="notice-status">送信済み' in html
    assert len(hub.box) == 3
    status, _, location = await _post(hub, zeimu, nid, "recontact", all="1")
    assert status == 303
    assert "n=3" in location
    assert len(hub.box) == 6
    status, html, _ = await _post(hub, zeimu, nid, "recontact")  # none chosen
    assert status == 400
    assert "再連絡する送付先を選んでください" in html
    assert (await _post(hub, zeimu, nid, "close"))[0] == 303
    status, html, _ = await _post(hub, zeimu, nid, "send", confirm="1")
    assert status == 409
    assert "Traceback" not in html


async def test_sign_without_a_key_shows_the_reason_on_the_page(hub: StaffHub) -> None:
    zeimu = await hub.cookie("zeimu")
    nid = await _create(hub, zeimu)
    await _upload(hub, zeimu, nid, "recipients", make_recipients_csv(2, "cp932"), "l.csv")
    status, _, _ = await _upload(hub, zeimu, nid, "pdf", make_notice_pdf(["A0001"], 1), "a.pdf",
                                 mode="single", pattern="", pages="")
    assert status == 303
    status, _, location = await _post(hub, zeimu, nid, "sign")
    assert status == 303
    for _ in range(50):
        _, html = await _get(hub, zeimu, location)
        if "署名用の鍵が設定されていません" in html:
            break
        await asyncio.sleep(0.1)
    assert "署名用の鍵が設定されていません" in html
    assert 'http-equiv="refresh"' not in html  # the job ended: no more reloading


async def test_live_stream_heartbeat_and_only_changed_rows(
        hub: StaffHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.notices import staff_views

    monkeypatch.setattr(staff_views, "HEARTBEAT_S", 0.3)
    zeimu = await hub.cookie("zeimu")
    nid, ids = await _sent_notice(hub)
    async with hub.client.get(f"/admin/notices/{nid}/live", cookies=zeimu) as r:
        assert len((await _event(r.content, 5))["rows"]) == 3

        async def heartbeat() -> None:
            while (await r.content.readline()) != b": hb\n":
                pass
        await asyncio.wait_for(heartbeat(), 3)
        await _open(hub, ids[2], nid)
        changed = await _event(r.content, 2)
        assert [row["id"] for row in changed["rows"]] == [ids[2]]
