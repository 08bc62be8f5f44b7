"""The residents' notice portal in Chromium on a phone (390×844), in ja/en/zh/ko: the link's
page, asking for a code, the code page, the notice with its download; axe-core finds no serious
violation on any of them, nothing runs off the screen sideways, and screenshots go to
``test-artifacts/notices/portal-*.png`` to be looked at."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from notices_portal_support import (  # noqa: E402
    Portal,
    add_file,
    add_notice,
    add_recipient,
    pdf,
    portal_app,
)
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "notices"
LOCALES = {"ja": "ja-JP", "en": "en-US", "zh": "zh-CN", "ko": "ko-KR"}


@pytest.fixture
async def p(tmp_path: Path) -> AsyncIterator[Portal]:
    async with portal_app(tmp_path) as made:
        yield made


@pytest.fixture
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        yield browser
        await browser.close()


async def _check(page: Page, source: str, name: str, failures: list[str]) -> None:
    """Screenshot, then axe and the page's width: a phone must never scroll sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"portal-{name}.png"), full_page=True)
    violations = blocking(await run_axe(page, source))
    if violations:
        failures.append(f"{name}:\n{describe(violations)}")
    wide = await page.evaluate("document.documentElement.scrollWidth")
    if wide > 390:
        failures.append(f"{name}: the page is {wide} px wide on a 390 px phone")


@pytest.mark.parametrize("lang", list(LOCALES))
async def test_the_portal_on_a_phone(p: Portal, chromium: Browser, lang: str) -> None:
    nid = await add_notice(p.ctx, auth="code")
    fid = await add_file(p.ctx, nid, pdf("hanako"), pages=2)
    _rid, token = await add_recipient(p.ctx, nid, name="練馬 花子", email="hanako@example.jp",
                                      lang=lang, file_id=fid)
    base = str(p.client.make_url("")).rstrip("/")
    ctx = await chromium.new_context(viewport={"width": 390, "height": 844}, locale=LOCALES[lang],
                                     accept_downloads=True, bypass_csp=True)  # axe is a script
    source, failures = axe_source(), list[str]()
    try:
        page = await ctx.new_page()
        await page.goto(f"{base}/n/{token}?lang={lang}")
        assert await page.get_attribute("html", "lang") == lang
        await _check(page, source, f"{lang}-1-link", failures)
        await page.click("#send-code")
        await page.wait_for_selector("#code")
        await _check(page, source, f"{lang}-2-code", failures)
        await page.fill("#code", "000000" if p.last_code() != "000000" else "111111")
        await page.click("#verify")
        await page.wait_for_selector("#code-error")  # a wrong code is said at the field
        await _check(page, source, f"{lang}-3-wrong-code", failures)
        await page.fill("#code", p.last_code())
        await page.click("#verify")
        await page.wait_for_selector("#files")
        await _check(page, source, f"{lang}-4-notice", failures)
        async with page.expect_download() as got:
            await page.click(".portal-file a")
        download = await got.value
        saved = await download.path()
        assert saved is not None
        assert await asyncio.to_thread(Path(saved).read_bytes) == pdf("hanako")
        assert download.suggested_filename.endswith(".pdf")
    finally:
        await ctx.close()
    assert not failures, "\n".join(failures)
