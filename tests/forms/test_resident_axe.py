"""axe-core on the residents' form pages in Chromium at phone size (390×844), ja and en, (the pages
carry no script of their own; axe itself needs JavaScript on): the start page, a page with the error
summary, the attachments page, the review and the done page — no serious or critical
violations; the resident gets from start to done by plain form posts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from clamd_support import Clamd, start_clamd  # noqa: E402
from forms_support import add_form, resident_app  # noqa: E402
from playwright.async_api import Browser, Page  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "forms"


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


async def _check(page: Page, name: str, lang: str, source: str, failures: list[str]) -> None:
    assert await page.get_attribute("html", "lang") == lang
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"resident-{name}-{lang}.png"), full_page=True)
    found = blocking(await run_axe(page, source))
    if found:
        failures.append(f"{name} ({lang}):\n{describe(found)}")


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_resident_pages_pass_axe_at_phone_size(tmp_path: Path, clamd: Clamd,
                                                     browser: Browser, lang: str) -> None:
    source = axe_source()
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        base = str(r.client.make_url("/")).rstrip("/")
        ctx = await browser.new_context(viewport={"width": 390, "height": 844},
                                        bypass_csp=True,
                                        locale="ja-JP" if lang == "ja" else "en-US")
        failures: list[str] = []
        try:
            page = await ctx.new_page()
            await page.goto(f"{base}/f/{form_id}?lang={lang}")
            await _check(page, "start", lang, source, failures)
            await page.click("#start")
            await page.click("#next")  # nothing filled in: the error summary
            assert await page.locator("#error-summary").count() == 1
            await _check(page, "errors", lang, source, failures)
            await page.fill("[id='nm.family']", "山田")
            await page.fill("[id='nm.given']", "花子")
            await page.fill("[id='nm.family_kana']", "ヤマダ")
            await page.fill("[id='nm.given_kana']", "ハナコ")
            await page.check("#has_dog-2")  # no dog: the dog page is skipped
            await page.click("#next")
            await _check(page, "documents", lang, source, failures)
            await page.check("#ok")
            await page.click("#next")
            await _check(page, "review", lang, source, failures)
            await page.click("#submit")
            assert await page.locator("#reference").inner_text() == "F-2026-000001"
            await _check(page, "done", lang, source, failures)
        finally:
            await ctx.close()
    assert not failures, "\n".join(failures)
