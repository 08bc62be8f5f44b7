"""The README's "Try it" as a newcomer does it: start ``madoguchi demo --at 10:30``, read the URLs
it prints, open the screens, sign in to the hub's staff pages with the demo account the banner
prints, take a web ticket at the hub, register a notice, check the ticket in at the kiosk, find
the notice in the demo's mail sink, apply with the form that has a fee and pay it at the
demo's test payment provider, stop with Ctrl-C (the summary lines showed the hub's sites,
read with the demo's staff session).

Runs the real CLI in a subprocess (its own ports, a temp folder); the proof of work is made
cheap through the environment as in the web-ticket tests.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from playwright.async_api import async_playwright
from pyzbar import pyzbar
from webticket_support import FAST_ENV

from hub.webticket.pow import solve

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "demo"
CONTACT = "try-it@example.jp"
START_S = 60.0


class Demo:
    """The running demo process and the URLs read from its banner."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []

    def read_banner(self) -> dict[str, str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith("broker mqtt://"):
                return self.urls()
        raise AssertionError("the demo printed no banner:\n" + "\n".join(self.lines))

    def urls(self) -> dict[str, str]:
        text = "\n".join(self.lines)

        def find(pattern: str) -> str:
            m = re.search(pattern, text)
            assert m, f"{pattern!r} not in the banner:\n{text}"
            return m.group(1)

        return {
            "hub": find(r"ハブ hub (http://127\.0\.0\.1:\d+)/"),
            "screens": find(r"画面一覧 screens\s+(http://127\.0\.0\.1:\d+)/ui/"),
            "mail": find(r"mail sink\s+(http://\S+/demo/mail)"),
            "webticket": find(r"web ticket\s+(http://\S+/w/\S+)"),
            "operator": find(r"(http://\S+/ui/operator\.html\?counter=1)"),
            "login": find(r"staff sign-in\s+(http://\S+/auth/login)"),
            "staff": find(r"staff overview\s+(http://\S+/staff/sites)"),
        }

    def staff_account(self) -> tuple[str, str]:
        """(login, password) of the demo's staff account, as the banner prints them."""
        m = re.search(r"demo staff\s+ID (\S+)\s+パスワード password (\S+)", "\n".join(self.lines))
        assert m, "no demo staff account in the banner:\n" + "\n".join(self.lines)
        return m.group(1), m.group(2)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    env = {**os.environ, **FAST_ENV, "PYTHONUNBUFFERED": "1"}
    env.pop("MADOGUCHI_SMTP_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "demo", "--at", "10:30", "--port", "0",
         "--hub-port", "0", "--no-screen", "--speed", "20",
         "--tickets", str(tmp_path / "tickets")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    d = Demo(proc)
    try:
        yield d
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def _json(http: aiohttp.ClientSession, method: str, url: str,
                **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as r:
        return r.status, await r.json(content_type=None)


async def _web_ticket(http: aiohttp.ClientSession, hub: str) -> dict[str, Any]:
    """Take a web ticket for nerima-main B, retrying while the site is still connecting."""
    deadline = time.monotonic() + 30
    while True:
        _, ch = await _json(http, "GET", f"{hub}/api/web-tickets/challenge")
        body = {"site": "nerima-main", "service": "B", "lang": "ja",
                "challenge": ch["challenge"], "nonce": solve(ch["challenge"], ch["difficulty"])}
        status, answer = await _json(http, "POST", f"{hub}/api/web-tickets", json=body)
        if status == 201:
            return dict(answer)
        if time.monotonic() > deadline:
            raise AssertionError(f"no web ticket: {status} {answer}")
        await asyncio.sleep(0.5)


async def _staff_sign_in(urls: dict[str, str], login: str, password: str) -> None:
    """Sign in at the printed URL as a browser does (the form's CSRF cookie), then open the
    staff overview and the staff API, which refuse anyone without a session."""
    async with aiohttp.ClientSession() as anonymous, \
            anonymous.get(f"{urls['hub']}/api/sites") as r:
        assert r.status == 401  # deny by default: the demo's account is what opens it
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(urls["login"]) as r:
            assert r.status == 200
        token = next(c.value for c in http.cookie_jar if c.key == "madoguchi_login")
        async with http.post(urls["login"], allow_redirects=False, data={
                "login": login, "password": password, "csrf": token,
                "next": "/staff/sites"}) as r:
            assert r.status == 303, await r.text()
            assert r.headers["Location"].startswith("/staff/sites")
        async with http.get(urls["staff"], headers={"Accept": "text/html"}) as r:
            assert r.status == 200
            assert "nerima-main" in await r.text()
        async with http.get(f"{urls['hub']}/api/sites") as r:
            assert r.status == 200


async def _until_mail(http: aiohttp.ClientSession, mail: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, box = await _json(http, "GET", f"{mail}.json")
        mine = [m for m in box["messages"] if m["to"] == CONTACT]
        if mine:
            return mine
        await asyncio.sleep(0.5)
    raise AssertionError("no notice reached the demo's mail sink within 60 s")


async def _pay_a_fee(banner: str, mail: str) -> None:
    """The banner's form with a fee, as a resident's browser does it: answer, send, pay at the
    demo's test payment provider, come back to the reference number; the receipt arrives."""
    m = re.search(r"手数料あり with a fee\s+(http://\S+)/f/(f[0-9a-f]+)", banner)
    assert m, "no form with a fee in the banner:\n" + banner
    hub, form_id = m.group(1), m.group(2)
    mail_to = "fee-payer@example.jp"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{hub}/f/{form_id}?lang=ja") as r:
            assert r.status == 200
            assert "300円" in await r.text()

        def csrf() -> str:
            return next(c.value for c in http.cookie_jar if c.key == "madoguchi_forms_csrf")

        async def post(path: str, data: dict[str, str]) -> str:
            async with http.post(f"{hub}{path}", data={"csrf": csrf(), **data},
                                 allow_redirects=False) as r:
                assert r.status == 303, (path, r.status, await r.text())
                return r.headers["Location"]

        await post(f"/f/{form_id}/start", {})
        await post(f"/f/{form_id}/page/1", {
            "name.family": "山田", "name.given": "花子", "name.family_kana": "ヤマダ",
            "name.given_kana": "ハナコ", "mail": mail_to, "card": "A-123"})
        pay = await post(f"/f/{form_id}/submit", {})
        assert "/pay/" in pay
        async with http.get(f"{hub}{pay}") as r:  # the amount and the link on
            page = await r.text()
            assert "300円" in page
        go = re.search(r'href="([^"]+)"[^>]*id="pay-go"', page)
        assert go, page
        async with http.get(f"{hub}{html.unescape(go.group(1))}", allow_redirects=False) as r:
            assert r.status == 303
            checkout = r.headers["Location"]
        assert not checkout.startswith(hub)  # the provider is a site of its own
        async with http.get(checkout) as r:
            assert "テスト用" in await r.text()
        async with http.post(f"{checkout}/pay") as r:  # back through the hub's return page
            page = await r.text()
            assert r.status == 200, page
        ref = re.search(r"F-\d{4}-\d{6}", page)
        assert ref, page
        assert 'id="paid"' in page
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, box = await _json(http, "GET", f"{mail}.json")
            if any(m["to"] == mail_to and ref.group(0) in m["subject"]
                   for m in box["messages"]):
                return
            await asyncio.sleep(0.5)
        raise AssertionError("no receipt for the paid application in the demo's mail sink")


async def _shots(chromium: Path, urls: dict[str, str]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium))
        try:
            for name, url, size in (
                    ("ui-index-1366x768", f"{urls['screens']}/ui/", (1366, 768)),
                    ("mail-sink-1366x768", urls["mail"], (1366, 768)),
                    ("mail-sink-390x844", urls["mail"], (390, 844)),
                    ("hub-status-390x844", f"{urls['hub']}/", (390, 844))):
                page = await browser.new_page(viewport={"width": size[0], "height": size[1]},
                                              locale="ja-JP")
                await page.goto(url)
                await page.wait_for_load_state("networkidle")
                await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
                await page.close()
        finally:
            await browser.close()


@pytest.mark.slow
async def test_try_it(demo: Demo, tmp_path: Path, chromium_path: Path) -> None:
    urls = demo.read_banner()
    banner = "\n".join(demo.lines)
    assert "PIN 1234" in banner
    assert "模擬時刻" in banner
    assert "10:30" in banner
    assert "/auth/login" in urls["login"]
    assert "demo only" in banner  # the account is said to be a demo account
    await _staff_sign_in(urls, *demo.staff_account())
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{urls['screens']}/ui/") as r:
            assert r.status == 200
            assert "画面の一覧" in await r.text()
        async with http.get(urls["webticket"]) as r:
            assert r.status == 200
        # the banner's reservation ID books on the hub's pages (slots seeded by the demo)
        assert "DEMO0001" in banner
        async with http.post(f"{urls['hub']}/r?lang=ja", data={"rid": "DEMO0001"},
                             allow_redirects=False) as r:
            assert r.status == 303
            slots_url = urls["hub"] + r.headers["Location"]
        async with http.get(slots_url) as r:
            assert 'name="slot"' in await r.text()
        ticket = await _web_ticket(http, urls["hub"])
        # the hub runs on the demo's clock too: open at 10:30 whatever the real time is
        _, status = await _json(http, "GET", f"{urls['hub']}/api/status")
        assert "T10:3" in status["at"], status["at"]
        assert [s["open_now"] for s in status["sites"]] == [True, True, True]
        token = ticket["token"]
        async with http.get(f"{urls['hub']}/t/{token}") as r:
            assert r.status == 200
        status, answer = await _json(http, "POST", f"{urls['hub']}/t/{token}/notice",
                                     json={"channel": "email", "contact": CONTACT, "lang": "ja"})
        assert status == 201, answer
        status, answer = await _json(http, "POST", f"{urls['screens']}/api/tickets/check-in",
                                     json={"token": token, "kiosk": "k1"})
        assert status in (200, 201), answer
        mine = await _until_mail(http, urls["mail"])
        assert str(ticket["number"]) in mine[0]["body"] + mine[0]["subject"]
        assert f"{urls['hub']}/t/{token}" in mine[0]["body"]
        async with http.get(urls["mail"]) as r:
            assert r.status == 200
            page = await r.text()
            assert CONTACT in page
            assert "デモ専用" in page
    await _pay_a_fee(banner, urls["mail"])
    await _shots(chromium_path, urls)
    # printed tickets carry the demo's own hub in their QR, not queue.example.jp
    pngs = sorted((tmp_path / "tickets" / "nerima-main").rglob("*.png"))
    assert pngs, "no ticket was printed"
    codes = [s.data.decode() for s in pyzbar.decode(Image.open(pngs[0]).convert("L"))]
    assert codes, "the printed ticket has no readable QR"
    assert codes[0].startswith(f"{urls['hub']}/t/"), codes
    demo.proc.send_signal(signal.SIGINT)
    out, _ = demo.proc.communicate(timeout=30)
    assert demo.proc.returncode == 0, out
    assert "demo stopped" in out
    # the summary's hub part, read with the demo's staff session (not "ハブ hub: —")
    assert re.search(r"ハブ hub: .*nerima-main online", out), out[-2000:]
