"""The "usually quiet" section in headless Chromium, with eight weeks of history at two offices:
axe-core finds no serious or critical violation in ja and en (the per-hour table open), the
Japanese breaks only between phrases, nothing in the section is clipped (screen-reader-only
captions aside), at a phone (390×844) and a laptop (1366×768); the weekday links work without
JavaScript. Screenshots go to
test-artifacts/residents/quiet-*.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

import residents_support  # noqa: E402
from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from playwright.async_api import Browser  # noqa: E402
from residents_support import Ward, ward  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from test_quiet_page import HOURS, history  # noqa: E402
from typography.test_line_breaks import BREAKS_JS, no_auto_phrase, offences  # noqa: E402

from hub.stats.tables import stats_rollup  # noqa: E402
from hub.store.store import now_utc  # noqa: E402
from hub.web.residents import QUIET  # noqa: E402
from hub.web.residents.access import TZ  # noqa: E402
from hub.web.residents.snapshot import DAY_KEYS  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "residents"
SITES = ("nerima-main", "oizumi", "hikarigaoka")
CLIPPED = """() => [...document.querySelectorAll('.quiet, .quiet *')].filter(el =>
  !el.closest('.sr-only') && (el.scrollWidth > el.clientWidth + 1
                              && getComputedStyle(el).overflowX !== 'visible'
  || el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
).map(el => el.tagName + ': ' + el.textContent.trim().slice(0, 40))"""


@pytest.fixture
async def w(mqtt_broker_url: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Ward]:
    monkeypatch.setattr(residents_support, "ALL_WEEK", HOURS)
    async with ward(mqtt_broker_url, tmp_path, sites=SITES,
                    open_counters={s: ("1",) for s in SITES}) as live:
        today = now_utc().astimezone(TZ).date()
        rows = history(today, (today.weekday() + 2) % 7)
        async with live.hub.store.begin() as tx:
            for site in ("nerima-main", "oizumi"):
                await tx.conn.execute(insert(stats_rollup), [
                    {**r, "site": site, "n": r["n"] * (3 if site == "nerima-main" else 1)}
                    for r in rows])
        await live.hub.runner.app[QUIET].refresh()
        yield live


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_quiet_hours_read_well_and_pass_axe(w: Ward, browser: Browser, lang: str) -> None:
    source = axe_source()
    failures: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((390, 844), (1366, 768)):
        ctx = await browser.new_context(viewport={"width": width, "height": height},
                                        bypass_csp=True, locale=f"{lang}-JP")
        page = await ctx.new_page()
        await page.goto(f"{w.url}/?lang={lang}")
        await page.locator("[data-testid=connection][data-state=live]").wait_for()
        section = page.get_by_test_id("quiet-oizumi")
        await section.get_by_test_id("quiet-hours-oizumi").locator("summary").click()
        await section.scroll_into_view_if_needed()
        await page.wait_for_timeout(300)  # fonts settle
        await section.screenshot(path=str(SHOTS / f"quiet-{width}-{lang}.png"))
        await page.screenshot(path=str(SHOTS / f"quiet-page-{width}-{lang}.png"))
        violations = await run_axe(page, source)
        if blocking(violations):
            failures.append(f"axe at {width}:\n{describe(blocking(violations))}")
        clipped = await page.evaluate(CLIPPED)
        if clipped:
            failures.append(f"clipped at {width}: {clipped}")
        if lang == "ja":
            nodes = await page.evaluate(BREAKS_JS)
            quiet = [n for n in nodes if "quiet" in n["where"]]
            assert quiet, "no Japanese text found in the section"
            failures += offences(f"quiet-{width}", quiet)
            failures += no_auto_phrase(f"quiet-{width}", quiet)
        # another weekday, by link (no script needed)
        other = (now_utc().astimezone(TZ).weekday() + 1) % 7
        link = section.locator(f'a[href*="weekday={DAY_KEYS[other]}"]')
        await link.click()
        await page.wait_for_url(f"**weekday={DAY_KEYS[other]}*")
        assert await page.get_by_test_id("quiet-oizumi").get_attribute(
            "data-weekday") == DAY_KEYS[other]
        await ctx.close()
    assert not failures, "\n".join(failures)
