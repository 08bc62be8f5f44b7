"""axe-core on the pages of saved details in Chromium at phone size (390×844), ja and en: the
question after signing in, the review with the box and the delete button, the confirmation of
the deletion — no serious or critical violations; all by plain form posts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from clamd_support import Clamd, start_clamd  # noqa: E402
from forms_support import add_form, resident_app  # noqa: E402
from playwright.async_api import Browser, Page  # noqa: E402
from test_forms_profiles import ADDRESS, form_b  # noqa: E402

from hub.forms import profiles  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "forms"
SAVED = {"name": {"family": "山田", "given": "花子", "family_kana": "ヤマダ",
                  "given_kana": "ハナコ"},
         "address": {"postal": "1768501", "prefecture": "東京都", "city": "練馬区豊玉北",
                     "street": "6-12-1"}, "phone": "0312345678"}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


async def _check(page: Page, name: str, lang: str, source: str, failures: list[str]) -> None:
    assert await page.get_attribute("html", "lang") == lang
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"profile-{name}-{lang}.png"), full_page=True)
    found = blocking(await run_axe(page, source))
    if found:
        failures.append(f"{name} ({lang}):\n{describe(found)}")


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_saved_details_pages_pass_axe_at_phone_size(tmp_path: Path, clamd: Clamd,
                                                          browser: Browser, lang: str) -> None:
    source = axe_source()
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, form_b())
        assert await profiles.save(r.ctx, {"method": "email_code", "email": ADDRESS}, SAVED,
                                   "earlier")
        base = str(r.client.make_url("/")).rstrip("/")
        ctx = await browser.new_context(viewport={"width": 390, "height": 844},
                                        bypass_csp=True,
                                        locale="ja-JP" if lang == "ja" else "en-US")
        failures: list[str] = []
        try:
            page = await ctx.new_page()
            await page.goto(f"{base}/f/{form_id}?lang={lang}")
            await page.fill("#email", ADDRESS)
            await page.click("#send-code")
            await page.fill("#code", r.last_code())
            await page.click("#verify")
            assert await page.locator("#profile-use").count() == 1
            await _check(page, "question", lang, source, failures)
            await page.click("#profile-use")
            assert await page.input_value("[id='applicant.family']") == "山田"
            await page.click("#next")
            assert await page.input_value("#phone") == "0312345678"
            await page.check("#ok")
            await page.click("#next")
            assert await page.locator("#profile-delete").count() == 1
            await _check(page, "review", lang, source, failures)
            await page.click("#profile-delete")
            assert await page.get_attribute("#profile-title", "data-mode") == "deleted"
            await _check(page, "deleted", lang, source, failures)
            await page.click("#back")
            assert await page.locator("#submit").count() == 1
            assert await page.locator("#profile-delete").count() == 0
        finally:
            await ctx.close()
    assert not failures, "\n".join(failures)
