"""The admin audit viewer over real HTTP: ``/admin/audit`` (page), ``/admin/audit.csv``
(export) and ``/admin/audit/verify`` (walk the chain now).

Administrators see rows newest first, in Japan time, filtered by date range, staff member,
action and target text, one keyset page at a time; every page shown is itself recorded as
``personal_data_viewed`` and every export as ``export``. Ward and counter staff get 403,
anonymous browsers are sent to sign-in. A row edited in SQL turns the banner red at the next
verification, naming that row; editing the verification's own row is caught without one.
Chromium renders the page at 1366×768 (ja and en) without clipped cells or a sideways scroll.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from playwright.async_api import async_playwright
from sqlalchemy import select, text
from staff_support import staff_cookie

from hub.app import Hub, start_hub
from hub.audit.search import BOM, COLUMNS
from hub.audit.service import append, audit_key, audit_keys, verify
from hub.audit.tables import audit_log
from hub.auth import service
from hub.auth.guard import COOKIE
from hub.settings import HubSettings

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
KEY, KID = audit_key(SETTINGS)
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "audit"
T0 = datetime(2026, 4, 1, 0, 30, tzinfo=UTC)  # 2026-04-01 09:30 JST


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    yield h
    await h.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hub]:
    """The hub on SQLite and on the real PostgreSQL (substring search, keyset pages and the
    verification's snapshot differ by backend)."""
    if request.param == "sqlite":
        h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
        yield h
        await h.stop()
        return
    schema = f"auditview_{uuid.uuid4().hex[:12]}"
    h = await start_hub(request.getfixturevalue("postgres_url"), None, port=0,
                        schema=schema, settings=SETTINGS)
    try:
        yield h
    finally:
        async with h.store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await h.stop()


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]
    raw: bytes = b""


async def call(hub: Hub, method: str, path: str, sid: str | None = None,
               accept: str = "text/html", data: dict[str, str] | None = None) -> Answer:
    headers = {"Accept": accept}
    if sid is not None:
        headers["Cookie"] = f"{COOKIE}={sid}"
    async with aiohttp.ClientSession() as http, http.request(
            method, hub.url + path, headers=headers, data=data, allow_redirects=False) as r:
        raw = await r.read()
        return Answer(r.status, raw.decode("utf-8", "replace"), dict(r.headers), raw)


async def admin(hub: Hub, login: str = "boss") -> tuple[str, str]:
    """(session id, staff id) of a signed-in administrator (TOTP enrolled on the way)."""
    sid = (await staff_cookie(hub.store, SETTINGS, "admin", "*", login=login))[COOKIE]
    current = await service.session(hub.store, SETTINGS, sid)
    assert current is not None
    return sid, current.staff_id


def ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="row-(\d+)"', page)]


def actions(page: str) -> list[str]:
    return re.findall(r'<tr id="row-\d+" data-action="([a-z_]+)"', page)


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return html.unescape(found.group(1)) if found else None


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)


async def seed(hub: Hub, rows: list[dict[str, Any]]) -> None:
    async with hub.store.begin() as tx:
        for row in rows:
            await append(tx, key=KEY, key_id=KID, **row)


async def trail(hub: Hub, action: str) -> list[Any]:
    async with hub.store.read() as tx:
        return list((await tx.conn.execute(select(audit_log).where(
            audit_log.c.action == action).order_by(audit_log.c.id))).all())


async def test_admin_sees_rows_newest_first_in_japan_time_and_filters_work(any_hub: Hub) -> None:
    hub = any_hub
    sid, boss = await admin(hub)
    clerk = await service.create_staff(hub.store, "Tanaka", "a long password!",
                                       grants=[("oizumi", "ward_staff")])
    await seed(hub, [
        # 2026-04-01 09:30 JST
        {"actor": boss, "action": "role_changed", "target": clerk, "ip": "10.1.2.3",
         "detail": {"roles": ["ward_staff"], "site": "oizumi"}, "at": T0},
        # 2026-04-02 00:00 JST exactly: the first instant of the 2nd
        {"actor": boss, "action": "setting_changed", "target": "audit.retention_days",
         "detail": {"setting": "audit.retention_days", "old": 1096, "new": 2000},
         "ip": "10.1.2.3", "at": datetime(2026, 4, 1, 15, 0, tzinfo=UTC)},
        # 2026-04-02 23:59:59 JST: the last second of the 2nd
        {"actor": None, "action": "login_failed", "target": clerk, "ip": "192.0.2.7",
         "at": datetime(2026, 4, 2, 14, 59, 59, tzinfo=UTC)},
        # 2026-04-03 00:00 JST: the 3rd
        {"actor": clerk, "action": "login", "target": None, "ip": "192.0.2.8",
         "at": datetime(2026, 4, 2, 15, 0, tzinfo=UTC)},
    ])
    page = await call(hub, "GET", "/admin/audit", sid)
    assert page.status == 200, page.body
    shown = ids(page.body)
    assert shown == sorted(shown, reverse=True)
    assert len(shown) >= 6
    assert "2026-04-01 09:30:00" in page.body  # Asia/Tokyo, not UTC
    assert "10.1.2.3" in page.body
    assert "192.0.2.7" in page.body
    assert ">Tanaka<" in page.body  # the target account by login, not its id
    assert "監査ログ" in page.body
    assert "権限の変更" in page.body
    assert 'href="/admin/audit?lang=ja"' in page.body  # the admin navigation links here

    async def only(query: str) -> list[str]:
        answer = await call(hub, "GET", f"/admin/audit?{query}", sid)
        assert answer.status == 200, answer.body
        return actions(answer.body)

    assert await only("action=role_changed") == ["role_changed"]
    assert await only("from=2026-04-02&to=2026-04-02") == ["login_failed", "setting_changed"]
    assert await only("from=2026-04-03&to=2026-04-03") == ["login"]
    assert await only("to=2026-04-01") == ["role_changed"]
    assert set(await only("actor=tanaka")) == {"login"}  # a login, case-insensitively
    assert await only(f"actor={clerk}") == ["login"]  # or the id the row holds
    assert await only("target=RETENTION") == ["setting_changed"]  # text in the target
    assert await only("target=anak&from=2026-04-01&to=2026-04-02") == [
        "login_failed", "role_changed"]  # rows naming the account whose login has it
    assert await only("actor=boss&action=login_failed") == []

    english = await call(hub, "GET", "/admin/audit?lang=en&action=setting_changed", sid)
    assert "Audit trail" in english.body
    assert "Setting changed" in english.body
    assert "Time (JST)" in english.body

    views = len(await trail(hub, "personal_data_viewed"))
    bad = await call(hub, "GET", "/admin/audit?from=2026-13-01", sid)
    assert bad.status == 400
    assert len(await trail(hub, "personal_data_viewed")) == views  # no rows shown: no view
    assert "日付は 2026-04-01 の形式で入力してください" in bad.body
    assert ids(bad.body) == []
    backwards = await call(hub, "GET", "/admin/audit?lang=en&from=2026-04-03&to=2026-04-01",
                           sid)
    assert backwards.status == 400
    assert "on or after the start date" in backwards.body


async def test_pages_of_fifty_and_every_view_is_recorded(any_hub: Hub) -> None:
    hub = any_hub
    sid, boss = await admin(hub)
    await seed(hub, [{"actor": boss, "action": "setting_changed", "target": f"s{i}",
                      "at": T0 + timedelta(minutes=i)} for i in range(120)])
    first = await call(hub, "GET", "/admin/audit?action=setting_changed", sid)
    page1 = ids(first.body)
    assert len(page1) == 50
    assert link(first.body, "prev") is None
    older = link(first.body, "next")
    assert older is not None
    assert parse_qs(urlparse(older).query)["action"] == ["setting_changed"]
    second = await call(hub, "GET", older, sid)
    page2 = ids(second.body)
    assert len(page2) == 50
    assert max(page2) < min(page1)
    third = await call(hub, "GET", link(second.body, "next") or "", sid)
    page3 = ids(third.body)
    assert len(page3) == 20
    assert link(third.body, "next") is None
    back = await call(hub, "GET", link(third.body, "prev") or "", sid)
    assert ids(back.body) == page2
    top = await call(hub, "GET", link(second.body, "prev") or "", sid)
    assert ids(top.body) == page1

    views = await trail(hub, "personal_data_viewed")
    assert len(views) == 5  # each page shown, with who, what was filtered and which rows
    assert {v.actor for v in views} == {boss}
    assert {v.target for v in views} == {"audit_log"}
    detail = json.loads(views[1].detail)
    assert detail["filters"]["action"] == "setting_changed"
    assert detail["filters"]["before"] == min(page1)
    assert detail["rows"] == 50
    assert detail["ids"] == f"{min(page2)}-{max(page2)}"
    assert views[0].ip == "127.0.0.1"


async def test_only_administrators_get_in(hub: Hub) -> None:
    ward = (await staff_cookie(hub.store, SETTINGS, "ward_staff", "*"))[COOKIE]
    counter = (await staff_cookie(hub.store, SETTINGS, "counter_staff", "oizumi"))[COOKIE]
    stats = (await staff_cookie(hub.store, SETTINGS, "stats_viewer", "*"))[COOKIE]
    for sid in (ward, counter, stats):
        for path in ("/admin/audit", "/admin/audit.csv"):
            answer = await call(hub, "GET", path, sid)
            assert answer.status == 403, (path, answer.status)
            assert "権限がありません" in answer.body
            assert "Traceback" not in answer.body
        csrf = service.csrf_token(sid)
        assert (await call(hub, "POST", "/admin/audit/verify", sid,
                           data={"csrf": csrf})).status == 403
    for path in ("/admin/audit", "/admin/audit.csv?action=login"):
        answer = await call(hub, "GET", path)
        assert answer.status == 303
        to = urlparse(answer.headers["Location"])
        assert to.path == "/auth/login"
        assert parse_qs(to.query)["next"] == [path]  # back here after signing in
        assert (await call(hub, "GET", path, accept="application/json")).status == 401
    assert (await call(hub, "POST", "/admin/audit/verify", data={})).status in (303, 401)
    assert await trail(hub, "personal_data_viewed") == []  # nobody saw a row
    assert await trail(hub, "export") == []


async def test_csv_has_a_bom_the_header_and_the_filtered_rows_and_is_audited(hub: Hub) -> None:
    sid, boss = await admin(hub)
    await seed(hub, [
        {"actor": boss, "action": "role_changed", "target": "acct-1", "ip": "10.0.0.1",
         "detail": {"roles": ["ward_staff"]}, "at": T0},
        {"actor": boss, "action": "role_changed", "target": "=HYPERLINK(\"x\")",
         "at": T0 + timedelta(days=1)},
        {"actor": boss, "action": "setting_changed", "target": "acct-1",
         "at": T0 + timedelta(days=2)},
        {"actor": boss, "action": "role_changed", "target": "acct-2",
         "at": T0 + timedelta(days=40)},
    ])
    answer = await call(hub, "GET", "/admin/audit.csv?action=role_changed&from=2026-04-01"
                        "&to=2026-04-30", sid)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    assert answer.headers.get("Transfer-Encoding") == "chunked"  # streamed, not buffered
    assert answer.raw.startswith(BOM.encode("utf-8"))
    lines = answer.raw.decode("utf-8-sig").split("\r\n")
    assert lines[0] == ",".join(COLUMNS)
    body = [line for line in lines[1:] if line]
    assert len(body) == 2  # two role changes in April; not the setting, not May's
    assert body[0].split(",")[3:5] == ["role_changed", "acct-1"]
    assert "2026-04-01T00:30:00.000000Z" in body[0]
    assert "'=HYPERLINK" in body[1]  # a formula is defused for Excel

    bad = await call(hub, "GET", "/admin/audit.csv?from=yesterday", sid)
    assert bad.status == 400
    assert json.loads(bad.body)["error"]["code"] == "bad_filter"
    exports = await trail(hub, "export")
    assert len(exports) == 1  # the refused one is not an export
    assert exports[0].actor == boss
    assert exports[0].target == "audit_log"
    filters = json.loads(exports[0].detail)["filters"]
    assert filters["action"] == "role_changed"
    assert filters["since"].startswith("2026-03-31T15:00:00")  # 2026-04-01 00:00 JST
    assert filters["until"].startswith("2026-04-30T15:00:00")  # the end of the 30th, JST
    page = await call(hub, "GET", "/admin/audit?action=export", sid)
    assert actions(page.body) == ["export"]  # the export is in the trail the page shows


async def test_a_tampered_row_turns_the_banner_red_and_names_it(any_hub: Hub) -> None:
    hub = any_hub
    sid, boss = await admin(hub)
    await seed(hub, [{"actor": boss, "action": "setting_changed", "target": f"s{i}",
                      "at": T0 + timedelta(minutes=i)} for i in range(8)])
    page = await call(hub, "GET", "/admin/audit", sid)
    assert 'class="banner none"' in page.body  # never verified yet: says so
    verified = await call(hub, "POST", "/admin/audit/verify?action=setting_changed", sid,
                          data={"csrf": csrf_of(page.body)})
    assert verified.status == 303
    assert verified.headers["Location"].startswith("/admin/audit?action=setting_changed")
    page = await call(hub, "GET", "/admin/audit", sid)
    assert 'class="banner ok"' in page.body
    assert "すべて正常" in page.body
    runs = await trail(hub, "audit_verified")
    assert len(runs) == 1
    assert runs[0].actor == boss
    assert json.loads(runs[0].detail)["ok"]

    victim = min(ids(page.body)) + 3
    async with hub.store.begin() as tx:
        await tx.conn.execute(text("UPDATE audit_log SET target = 'forged' WHERE id = :id"),
                              {"id": victim})
    again = await call(hub, "POST", "/admin/audit/verify", sid,
                       data={"csrf": csrf_of(page.body)})
    assert again.status == 303
    page = await call(hub, "GET", "/admin/audit?lang=en", sid)
    assert 'class="banner broken" role="alert"' in page.body
    assert f"The first row at fault is ID {victim}." in page.body
    assert f"Row {victim} was altered (its MAC does not match)." in page.body
    assert f'<tr id="row-{victim}" data-action="setting_changed" class="bad">' in page.body \
        or f"Show row ID {victim}" in page.body
    shown = await call(hub, "GET", f"/admin/audit?before={victim + 1}", sid)
    assert ids(shown.body)[0] == victim
    assert f'<tr id="row-{victim}" data-action="setting_changed" class="bad">' in shown.body


async def test_editing_the_last_result_is_caught_without_a_new_run(hub: Hub) -> None:
    sid, _ = await admin(hub)
    page = await call(hub, "GET", "/admin/audit", sid)
    assert (await call(hub, "POST", "/admin/audit/verify", sid,
                       data={"csrf": csrf_of(page.body)})).status == 303
    run = (await trail(hub, "audit_verified"))[-1]
    head = json.loads(run.detail)["head_id"]
    async with hub.store.begin() as tx:  # someone edits a row the run covered
        await tx.conn.execute(text("UPDATE audit_log SET ip = '203.0.113.9' WHERE id = :id"),
                              {"id": head})
    page = await call(hub, "GET", "/admin/audit", sid)
    assert 'class="banner forged"' in page.body
    assert f"ID {head} の行を確認" in page.body
    async with hub.store.begin() as tx:  # ... or turns a failed result into a pass
        await tx.conn.execute(text("UPDATE audit_log SET detail = :d WHERE id = :id"),
                              {"d": run.detail.replace('"ok":true', '"ok":true '),
                               "id": run.id})
    page = await call(hub, "GET", "/admin/audit", sid)
    assert 'class="banner forged"' in page.body
    assert f"ID {run.id} の行を確認" in page.body


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_the_page_fits_1366_by_768_in_chromium(hub: Hub, chromium_path: Path,
                                                     lang: str) -> None:
    sid, boss = await admin(hub, f"boss-{lang}")
    clerk = await service.create_staff(hub.store, "suzuki.hanako", "a long password!",
                                       grants=[("oizumi", "ward_staff")])
    await seed(hub, [
        {"actor": boss, "action": "role_changed", "target": clerk, "ip": "192.168.100.200",
         "detail": {"roles": ["ward_staff", "stats_viewer"], "sites": ["oizumi", "nerima"]},
         "at": T0},
        {"actor": boss, "action": "setting_changed", "target": "audit.retention_days",
         "detail": {"setting": "audit.retention_days", "old": 1096, "new": 1827},
         "ip": "2001:db8:1234:5678:9abc:def0:1234:5678", "at": T0 + timedelta(hours=1)},
        {"actor": None, "action": "login_failed", "target": None, "ip": "10.0.0.15",
         "detail": {"known": False}, "at": T0 + timedelta(hours=2)},
    ])
    page = await call(hub, "GET", "/admin/audit", sid)
    await call(hub, "POST", "/admin/audit/verify", sid, data={"csrf": csrf_of(page.body)})
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        try:
            context = await browser.new_context(
                viewport={"width": 1366, "height": 768},
                locale="ja-JP" if lang == "ja" else "en-US")
            await context.add_cookies([{"name": COOKIE, "value": sid, "url": hub.url}])
            tab = await context.new_page()
            SHOTS.mkdir(parents=True, exist_ok=True)

            async def fits(name: str) -> None:
                await tab.screenshot(path=str(SHOTS / f"{name}.png"))
                await tab.screenshot(path=str(SHOTS / f"{name}-full.png"), full_page=True)
                sideways = await tab.evaluate(
                    "document.documentElement.scrollWidth - "
                    "document.documentElement.clientWidth")
                clipped = await tab.evaluate("""[...document.querySelectorAll(
                    'td, th, label, button, .banner p, legend, nav a, .hint')]
                    .filter(e => e.scrollWidth > e.clientWidth + 1 ||
                                 e.scrollHeight > e.clientHeight + 1)
                    .map(e => e.tagName + ':' + e.textContent.trim().slice(0, 40))""")
                assert sideways == 0, name
                assert clipped == [], name

            await tab.goto(f"{hub.url}/admin/audit?lang={lang}")
            await fits(f"audit-{lang}")
            assert await tab.locator("table.rows tbody tr").count() >= 5
            assert await tab.locator(".banner.ok").count() == 1
            async with hub.store.begin() as tx:
                await tx.conn.execute(text("UPDATE audit_log SET ip = '10.9.9.9' WHERE id = 3"))
            await tab.click(".banner button[type=submit]")  # verify now: back to the page
            await tab.wait_for_selector(".banner.broken")
            await tab.click(".banner a[href*='before=4']")  # the named row, highlighted
            assert await tab.locator("tr.bad#row-3").count() == 1
            await fits(f"audit-{lang}-broken")
        finally:
            await browser.close()


async def test_staff_set_the_retention_and_the_nightly_job_prunes_past_it(hub: Hub) -> None:
    """A3: the deletion period is set on the page (3-10 years, refused outside with the range
    shown, nothing changed), the change is audited with old and new values; the nightly job
    deletes rows past the period and chains a checkpoint, so the rest still verifies."""
    sid, boss = await admin(hub)
    page = await call(hub, "GET", "/admin/audit?lang=ja", sid)
    assert 'id="retention-days"' in page.body
    assert 'value="1096"' in page.body
    token = csrf_of(page.body)
    for bad in ("abc", "100", "99999"):
        r = await call(hub, "POST", "/admin/audit/retention?lang=ja", sid,
                       data={"csrf": token, "days": bad})
        assert r.status == 303
        assert "retention=out_of_range" in r.headers["Location"]
    shown = await call(hub, "GET", "/admin/audit?lang=ja&retention=out_of_range", sid)
    assert 'data-testid="retention-error"' in shown.body
    assert "1096" in shown.body
    assert await trail(hub, "setting_changed") == []
    r = await call(hub, "POST", "/admin/audit/retention?lang=ja", sid,
                   data={"csrf": token, "days": "1200"})
    assert (r.status, "retention=saved" in r.headers["Location"]) == (303, True)
    changed = await trail(hub, "setting_changed")
    assert [(c.actor, json.loads(c.detail)["old"], json.loads(c.detail)["new"])
            for c in changed] == [(boss, 1096, 1200)]
    r = await call(hub, "POST", "/admin/audit/retention", sid, data={"days": "1500"})
    assert r.status == 403  # no CSRF token: refused by the guard

    from hub.audit.job import run_once
    from hub.kit.runtime import RUNTIME

    rt = hub.runner.app[RUNTIME]
    now = datetime.now(UTC)
    assert await run_once(rt, now=now) == 0  # nothing is 1200 days old yet
    later = now + timedelta(days=1300)  # every row is past the period then
    deleted = await run_once(rt, now=later)
    assert deleted > 0
    checkpoints = await trail(hub, "checkpoint")
    assert [json.loads(c.detail)["rows"] for c in checkpoints] == [deleted]
    assert (await verify(hub.store, audit_keys(SETTINGS))).ok  # the rest still verifies


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31),
                    timezones=st.just(UTC)))
def test_the_nightly_job_runs_at_three_in_the_morning_japan_time(now: datetime) -> None:
    from hub.audit.job import JST, next_run

    at = next_run(now)
    assert now < at <= now + timedelta(days=1)
    assert (at.astimezone(JST).hour, at.astimezone(JST).minute) == (3, 0)
