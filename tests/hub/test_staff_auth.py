"""Staff sign-in over real HTTP: passwords (argon2id), TOTP enrolment and recovery codes,
lockouts per account and per address, idle and absolute timeouts, CSRF, cookie flags, allowed
address ranges, 50 sign-ins at once, re-hashing at a new argon2 cost, and nothing secret at rest
(SQLite, pg_dump) or in logs."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from staff_support import PASSWORD, totp_secret

from hub.app import Hub, start_hub
from hub.auth import mfa, service
from hub.auth.access import LEVELS, ROLES, allows
from hub.auth.guard import COOKIE
from hub.auth.tables import staff_sessions
from hub.settings import HubSettings
from hub.store.store import now_utc, use_clock

KEY = bytes(range(32))


def settings(**kw: Any) -> HubSettings:
    base: dict[str, Any] = {"keys": {"t1": KEY}, "key_id": "t1", "login_max_failures": 3,
                            "address_max_failures": 8, "lockout_s": 600,
                            "login_message": "許可された職員のみ / authorised staff only"}
    return HubSettings(**{**base, **kw})


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=settings())
    yield h
    await h.stop()


class Browser:
    """A cookie-keeping HTTP client that fills the forms as a browser would."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def page(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, headers={"Accept": "text/html"},
                                 allow_redirects=False) as r:
            return r.status, await r.text()

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        async with self.http.post(self.base + path, data=data, allow_redirects=False,
                                  headers={"Accept": "text/html"}) as r:
            return r.status, r.headers.get("Location", ""), await r.text()

    async def login(self, login: str, password: str = PASSWORD) -> tuple[int, str, str]:
        _, html = await self.page("/auth/login")
        return await self.post("/auth/login", {"login": login, "password": password,
                                               "csrf": csrf_of(html), "next": "/auth/home"})

    async def csrf(self, path: str = "/auth/home") -> str:
        return csrf_of((await self.page(path))[1])


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
async def browser(hub: Hub) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browser(hub.url, http)


async def enrol(b: Browser) -> tuple[str, list[str]]:
    """Finish a pending enrolment: read the QR's otpauth URI, answer with its code."""
    status, html = await b.page("/auth/enrol")
    assert status == 200, html
    uri = re.search(r'data-otpauth="([^"]+)"', html)
    assert uri
    secret = totp_secret(uri.group(1).replace("&amp;", "&"))
    status, _, page = await b.post("/auth/enrol", {"csrf": csrf_of(html),
                                                  "code": pyotp.TOTP(secret).now()})
    assert status == 200, page
    codes = re.findall(r"<li>([0-9a-f]{10})</li>", page)
    assert len(codes) == mfa.RECOVERY_CODES
    return secret, codes


async def test_admin_must_enrol_then_signs_in_with_totp_or_a_recovery_code_once(
        hub: Hub, browser: Browser) -> None:
    await service.create_staff(hub.store, "boss", PASSWORD, grants=[("*", "admin")])
    status, location, _ = await browser.login("boss")
    assert (status, location.split("?")[0]) == (303, "/auth/enrol")
    assert (await browser.page("/admin/staff"))[0] == 303  # not yet: enrolment owed
    secret, codes = await enrol(browser)
    status, html = await browser.page("/admin/staff")
    assert status == 200
    assert "boss" in html
    await browser.post("/auth/logout", {"csrf": await browser.csrf()})
    assert (await browser.page("/admin/staff"))[0] == 303  # signed out
    status, location, _ = await browser.login("boss")
    assert location.split("?")[0] == "/auth/mfa"
    _, html = await browser.page("/auth/mfa")
    status, _, _ = await browser.post("/auth/mfa", {"csrf": csrf_of(html), "code": "000000"
                                                    if pyotp.TOTP(secret).now() != "000000"
                                                    else "111111"})
    assert status == 401
    status, location, _ = await browser.post("/auth/mfa", {"csrf": csrf_of(html),
                                                           "code": codes[0]})
    assert status == 303
    assert (await browser.page("/admin/staff"))[0] == 200
    await browser.post("/auth/logout", {"csrf": await browser.csrf()})
    await browser.login("boss")
    _, html = await browser.page("/auth/mfa")
    status, _, _ = await browser.post("/auth/mfa", {"csrf": csrf_of(html), "code": codes[0]})
    assert status == 401  # a recovery code works once
    status, _, _ = await browser.post("/auth/mfa", {"csrf": csrf_of(html),
                                                    "code": pyotp.TOTP(secret).now()})
    assert status == 303


async def test_home_shows_previous_login_logout_and_failures(hub: Hub,
                                                             browser: Browser) -> None:
    await service.create_staff(hub.store, "aoki", PASSWORD, grants=[("oizumi", "ward_staff")])
    assert (await browser.login("aoki"))[0] == 303
    _, html = await browser.page("/auth/home")
    assert html.count("—") >= 2  # first login: nothing before
    assert "<td>0</td>" in html
    await browser.post("/auth/logout", {"csrf": await browser.csrf()})
    assert (await browser.login("aoki", "wrong password!"))[0] == 401
    assert (await browser.login("aoki"))[0] == 303
    _, html = await browser.page("/auth/home")
    assert "<td>1</td>" in html  # one failed attempt since the previous sign-in
    assert html.count(str(datetime.now().astimezone().year)) >= 2  # previous in and out


async def test_lockout_per_account_and_per_address(tmp_path: Path) -> None:
    h = await start_hub(f"sqlite:///{tmp_path}/l.db", None, port=0,
                        settings=settings(login_max_failures=3, address_max_failures=5))
    try:
        for name in ("kato", "sato"):
            await service.create_staff(h.store, name, PASSWORD, grants=[("*", "stats_viewer")])
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            b = Browser(h.url, http)
            for _ in range(3):
                assert (await b.login("kato", "not the password"))[0] in (401, 429)
            status, _, html = await b.login("kato")  # right password, account locked
            assert status == 429
            assert "しばらくログインできません" in html
            assert (await b.login("sato"))[0] == 303  # another account: fine
            await b.login("nobody", "x" * 12)  # the address's 4th and 5th failures
            await b.login("nobody", "x" * 12)  # -> the address is locked
            assert (await b.login("sato"))[0] == 429  # now the address is locked too
    finally:
        await h.stop()


async def test_idle_and_absolute_timeouts_with_an_injected_clock(hub: Hub,
                                                                  browser: Browser) -> None:
    await service.create_staff(hub.store, "ito", PASSWORD, grants=[("*", "stats_viewer")])
    t0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    clock = [t0]
    use_clock(lambda: clock[0])
    try:
        assert (await browser.login("ito"))[0] == 303
        for minutes in (20, 40, 60):  # active every 20 min (idle limit 30 min): still in
            clock[0] = t0 + timedelta(minutes=minutes)
            assert (await browser.page("/auth/home"))[0] == 200
        clock[0] += timedelta(minutes=31)
        assert (await browser.page("/auth/home"))[0] == 303  # idle: back to sign-in
        assert (await browser.login("ito"))[0] == 303
        start = clock[0]
        for minutes in range(25, 12 * 60, 25):
            clock[0] = start + timedelta(minutes=minutes)
            assert (await browser.page("/auth/home"))[0] == 200
        clock[0] = start + timedelta(hours=12, minutes=1)
        assert (await browser.page("/auth/home"))[0] == 303  # absolute limit
    finally:
        use_clock(None)


async def test_csrf_cookie_flags_and_hashed_session_ids(hub: Hub, browser: Browser) -> None:
    await service.create_staff(hub.store, "ueda", PASSWORD, grants=[("*", "ward_staff")])
    _, html = await browser.page("/auth/login")
    status, _, _ = await browser.post("/auth/login", {"login": "ueda", "password": PASSWORD,
                                                      "csrf": "forged"})
    assert status == 403  # sign-in form without its token
    async with browser.http.get(browser.base + "/auth/login") as r:
        html = await r.text()
    async with browser.http.post(browser.base + "/auth/login", allow_redirects=False, data={
            "login": "ueda", "password": PASSWORD, "csrf": csrf_of(html)}) as r:
        cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    sid = cookie.split(";")[0].split("=", 1)[1]
    async with hub.store.read() as tx:
        stored = [r[0] for r in (await tx.conn.execute(select(staff_sessions.c.id_hash)))]
    assert stored == [service.hash_sid(sid)]
    async with browser.http.post(browser.base + "/auth/logout", allow_redirects=False,
                                 headers={"Accept": "application/json"}) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "csrf"
    status, _, _ = await browser.post("/auth/logout", {"csrf": csrf_of(html)})
    assert status == 403  # the sign-in form's token is not the session's
    assert (await browser.post("/auth/logout", {"csrf": await browser.csrf()}))[0] == 303
    assert HubSettings(public_url="https://q.example.jp").secure_cookies
    assert not HubSettings(public_url="https://q.example.jp", cookie_secure=False) \
        .secure_cookies


async def test_allowed_address_ranges(hub: Hub, browser: Browser) -> None:
    await service.create_staff(hub.store, "far", PASSWORD, grants=[("*", "ward_staff")],
                               networks="10.0.0.0/8")
    await service.create_staff(hub.store, "near", PASSWORD, grants=[("*", "ward_staff")],
                               networks="10.0.0.0/8, 127.0.0.0/8")
    assert (await browser.login("far"))[0] == 401
    assert (await browser.login("near"))[0] == 303
    with pytest.raises(service.AccountError):
        await service.create_staff(hub.store, "bad", PASSWORD, networks="10.0.0.300/8")


@given(st.sampled_from(LEVELS), st.lists(st.tuples(st.sampled_from(["*", "a", "b"]),
                                                   st.sampled_from(ROLES)), max_size=4),
       st.sampled_from([None, "a", "b"]))
def test_access_rule(level: Any, grants: list[tuple[str, str]], site: str | None) -> None:
    ok = allows(level, grants, site)
    if level in ("public", "ticket_token"):
        assert ok
    elif not grants:
        assert not ok
    if ("*", "admin") in grants:
        assert ok
    if ok and level == "admin":
        assert any(r == "admin" for _s, r in grants)
    if ok and level not in ("public", "ticket_token") and site is not None:
        assert any(s in ("*", site) or r == "admin" for s, r in grants)
    if all(r == "counter_staff" for _s, r in grants) and level in ("stats", "ward_staff",
                                                                   "admin"):
        assert not ok  # contracted counter staff: no settings, no statistics


async def test_fifty_concurrent_logins_all_succeed_and_audit_in_one_chain(hub: Hub) -> None:
    """Fifty different staff sign in at the same moment over HTTP: each gets its own working
    session, and the audit trail holds fifty sign-ins in an intact chain (each sign-in appends
    its row in the same transaction as its session). How fast is ``bench hub``'s
    ``login_p99_ms``, not a test's business."""
    from hub.audit.service import audit_keys, verify

    names = [f"s{i:02d}" for i in range(50)]
    await asyncio.gather(*(service.create_staff(hub.store, n, PASSWORD,
                                                grants=[("*", "stats_viewer")]) for n in names))

    async def one(name: str) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.post(hub.url + "/auth/login", allow_redirects=False,
                                 cookies={"madoguchi_login": "t"},
                                 data={"login": name, "password": PASSWORD, "csrf": "t"}) as r:
                assert r.status == 303, await r.text()
                sid = r.cookies[COOKIE].value
            async with http.get(hub.url + "/api/sites", cookies={COOKIE: sid}) as r:
                assert r.status == 200
            return sid

    sids = await asyncio.gather(*(one(n) for n in names))
    assert len(set(sids)) == 50
    async with hub.store.read() as tx:
        logins = (await tx.conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE action = 'login'"))).scalar()
    assert logins == 50
    assert (await verify(hub.store, audit_keys(settings()))).ok


async def test_an_older_cost_still_verifies_and_is_rehashed_at_sign_in(hub: Hub) -> None:
    """Hashes made at the previous cost (8 MiB, 1 pass) keep working; the first sign-in after
    the change stores the password at the current cost, and it still verifies."""
    from argon2 import PasswordHasher, Type

    from hub.auth import passwords
    from hub.auth.tables import staff

    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    staff_id = await service.create_staff(hub.store, "veteran", PASSWORD,
                                          grants=[("*", "ward_staff")])
    async with hub.store.begin() as tx:
        await tx.conn.execute(staff.update().where(staff.c.id == staff_id).values(
            password_hash=old.hash(PASSWORD)))
    assert (await service.login(hub.store, settings(), "veteran", "wrong password!",
                                "127.0.0.1")).outcome == "bad"

    async def stored() -> str:
        async with hub.store.read() as tx:
            return str((await tx.conn.execute(select(staff.c.password_hash).where(
                staff.c.id == staff_id))).scalar())

    assert "m=8192,t=1" in await stored()  # a failed attempt rehashes nothing
    assert (await service.login(hub.store, settings(), "veteran", PASSWORD,
                                "127.0.0.1")).outcome == "ok"
    now = await stored()
    assert f"m={passwords.MEMORY_KIB},t={passwords.TIME_COST}" in now
    assert not passwords.needs_rehash(now)
    assert (await service.login(hub.store, settings(), "veteran", PASSWORD,
                                "127.0.0.1")).outcome == "ok"


async def test_wrong_passwords_posted_in_parallel_still_lock_the_account(hub: Hub) -> None:
    """Failures are counted in the database, so guesses sent all at once cannot overwrite each
    other's count and stay under the limit (3 here)."""
    await service.create_staff(hub.store, "target", PASSWORD, grants=[("*", "ward_staff")])
    results = await asyncio.gather(*(service.login(hub.store, settings(), "target",
                                                   f"guess number {i}", f"10.0.0.{i}")
                                     for i in range(6)))
    assert {r.outcome for r in results} <= {"bad", "locked"}
    assert any(r.outcome == "locked" for r in results)
    assert (await service.login(hub.store, settings(), "target", PASSWORD,
                                "10.0.1.1")).outcome == "locked"


async def _secrets_of_a_session(hub: Hub, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.set_level(logging.DEBUG)
    await service.create_staff(hub.store, "secretive", PASSWORD, grants=[("*", "admin")])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        b = Browser(hub.url, http)
        await b.login("secretive")
        secret, codes = await enrol(b)
        sid = next(c.value for c in http.cookie_jar if c.key == COOKIE)
        assert (await b.page("/admin/staff"))[0] == 200
    return [PASSWORD, secret, sid, codes[0], service.csrf_token(sid)]


def _absent(secrets_: list[str], blob: bytes, where: str) -> None:
    for s in secrets_:
        assert s.encode() not in blob, f"a secret ({len(s)} chars) in {where}"


async def test_nothing_secret_in_sqlite_or_logs(hub: Hub, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    found = await _secrets_of_a_session(hub, caplog)
    await hub.store.close()
    blob = await asyncio.to_thread(
        lambda: b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*")))
    assert b"secretive" in blob  # the search does look at the right file
    _absent(found, blob, "the SQLite file")
    logs = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records).encode()
    _absent(found, logs, "the DEBUG logs")


async def test_nothing_secret_in_a_postgresql_dump(postgres_url: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    schema = f"authtest_{uuid.uuid4().hex[:10]}"
    h = await start_hub(postgres_url, None, port=0, schema=schema, settings=settings())
    try:
        found = await _secrets_of_a_session(h, caplog)
        url = make_url(postgres_url)
        if shutil.which("pg_dump"):
            dump = (await asyncio.to_thread(
                subprocess.run,
                ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                 "-U", url.username or "postgres", "-n", schema, url.database or "test"],
                capture_output=True, check=True, timeout=60)).stdout
        else:  # every text column of the schema
            async with h.store.read() as tx:
                rows = (await tx.conn.execute(text(
                    f'SELECT * FROM "{schema}".staff'))).all()
            dump = repr(rows).encode()
        assert b"secretive" in dump
        _absent(found, dump, "the PostgreSQL dump")
        async with h.store.begin() as tx:
            await tx.conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await h.stop()


def test_now_follows_the_injected_clock() -> None:
    fixed = datetime(2030, 1, 1, tzinfo=UTC)
    use_clock(lambda: fixed)
    try:
        assert now_utc() == fixed
    finally:
        use_clock(None)


def test_cli_creates_the_first_administrator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from edge.cli import main

    db = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["hub", "admin", "create", "--db", db, "--login", "chief",
                 "--password-stdin"]) == 0
    out = capsys.readouterr()
    assert "QR" in out.out
    assert PASSWORD not in out.out + out.err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["hub", "admin", "create", "--db", db, "--login", "other",
                 "--password-stdin"]) == 1  # too short: refused, nothing created

    async def check() -> tuple[str, tuple[tuple[str, str], ...]]:
        from hub.store import HubStore

        store = await HubStore.open(db)
        try:
            result = await service.login(store, settings(), "chief", PASSWORD, "127.0.0.1")
            assert result.staff_id is not None
            return result.outcome, await service.grants_of(store, result.staff_id)
        finally:
            await store.close()

    assert asyncio.run(check()) == ("enrol", (("*", "admin"),))
