"""Staff sign-in in headless Chromium at 1366×768: the first administrator enrols TOTP from the
QR's otpauth URI, counter staff get a 403 page (not a stack trace) on an admin page, lockout after
the configured failures, idle timeout, a POST without its CSRF token refused. Screenshots of the
sign-in, enrolment, account list and 403 pages in ja and en go to test-artifacts/auth/."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import Error as PlaywrightError
from staff_support import PASSWORD, totp_secret

from hub.app import Hub, start_hub
from hub.auth import mfa, service
from hub.settings import HubSettings

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "auth"
VIEW = {"width": 1366, "height": 768}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = HubSettings(keys={"t": bytes(32)}, key_id="t", login_max_failures=3,
                           session_idle_s=2, lockout_s=600,
                           login_message="許可された職員のみ利用できます。"
                                         "Authorised staff only.")
    h = await start_hub(f"sqlite:///{tmp_path}/b.db", None, port=0, settings=settings)
    yield h
    await h.stop()


@pytest.fixture
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        yield browser
        await browser.close()


async def shot(page: Page, name: str) -> None:
    """A screenshot for people to look at (not an assertion); Chromium on a loaded CI machine
    once failed one capture ("Unable to capture screenshot"), so it is tried again once."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        await page.screenshot(path=str(SHOTS / f"{name}.png"))
    except PlaywrightError:
        await page.wait_for_timeout(500)
        await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def sign_in(page: Page, base: str, login: str, password: str = PASSWORD,
                  lang: str = "ja") -> None:
    await page.goto(f"{base}/auth/login?lang={lang}")
    await page.fill("#login", login)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


async def test_first_administrator_enrols_totp_and_manages_accounts(
        hub: Hub, chromium: Browser) -> None:
    for lang in ("ja", "en"):
        await service.create_staff(hub.store, f"admin-{lang}", PASSWORD, "区 太郎",
                                   grants=[("*", "admin")])
        context = await chromium.new_context(viewport=VIEW)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(f"{hub.url}/auth/login?lang={lang}")
        await shot(page, f"login-{lang}")
        await sign_in(page, hub.url, f"admin-{lang}", lang=lang)
        assert "/auth/enrol" in page.url  # an administrator must enrol first
        await shot(page, f"enrol-{lang}")
        uri = html.unescape(await page.get_attribute(".qr", "data-otpauth") or "")
        assert uri.startswith("otpauth://totp/")
        await page.fill("#code", pyotp.TOTP(totp_secret(uri)).now())
        await page.click("button[type=submit]")
        codes = await page.locator(".codes li").all_inner_texts()
        assert len(codes) == mfa.RECOVERY_CODES
        await page.goto(f"{hub.url}/auth/enrol?lang={lang}")  # enrolled: no silent re-enrol
        assert "/auth/home" in page.url
        await page.goto(f"{hub.url}/admin/staff?lang={lang}")
        await page.fill("#login", f"counter-{lang}")
        await page.fill("#name", "窓口 花子")
        await page.fill("#password", PASSWORD)
        await page.fill("#grants", "oizumi:counter_staff")
        await page.click("form[action^='/admin/staff'] button[type=submit]")
        assert f"counter-{lang}" in await page.content()
        await shot(page, f"accounts-{lang}")
        await context.close()


async def test_counter_staff_get_a_403_page_on_admin_pages(hub: Hub, chromium: Browser) -> None:
    await service.create_staff(hub.store, "counter2", PASSWORD,
                               grants=[("oizumi", "counter_staff")])
    context = await chromium.new_context(viewport=VIEW, locale="ja-JP")  # type: ignore[arg-type]
    page = await context.new_page()
    await sign_in(page, hub.url, "counter2")
    assert "/auth/home" in page.url
    for lang in ("ja", "en"):
        response = await page.goto(f"{hub.url}/admin/staff?lang={lang}")
        assert response is not None
        assert response.status == 403
        body = await page.inner_text("body")
        assert ("権限がありません" if lang == "ja" else "do not have permission") in body
        assert "Traceback" not in body
        await shot(page, f"forbidden-{lang}")
    response = await page.goto(f"{hub.url}/api/sites/oizumi/events")
    assert response is not None
    assert response.status == 403
    await context.close()


async def test_lockout_idle_timeout_and_csrf(hub: Hub, chromium: Browser) -> None:
    await service.create_staff(hub.store, "ward1", PASSWORD, grants=[("*", "ward_staff")])
    context = await chromium.new_context(viewport=VIEW, locale="ja-JP")  # type: ignore[arg-type]
    page = await context.new_page()
    for _ in range(3):
        await sign_in(page, hub.url, "ward1", "wrong password")
    await sign_in(page, hub.url, "ward1")  # the right password, but locked now
    assert "しばらくログインできません" in await page.inner_text(".error")
    await service.create_staff(hub.store, "ward2", PASSWORD, grants=[("*", "ward_staff")])
    await sign_in(page, hub.url, "ward2")
    assert "/auth/home" in page.url
    # a POST without the CSRF token: the sign-out form with its token removed
    await page.evaluate("document.querySelector('form[action^=\"/auth/logout\"] "
                        "input[name=csrf]').remove()")
    async with page.expect_navigation():
        await page.click("form[action^='/auth/logout'] button")
    assert "期限が切れました" in await page.inner_text("body")
    await page.goto(f"{hub.url}/auth/home")
    assert "/auth/home" in page.url  # still signed in: the forged sign-out did nothing
    await asyncio.sleep(2.5)  # idle limit 2 s in this hub's settings
    await page.goto(f"{hub.url}/staff/sites")
    assert "/auth/login" in page.url
    assert re.search(r"next=(%2F|/)staff(%2F|/)sites", page.url)
    await context.close()
