"""axe-core on every screen in Japanese, English, Chinese and Korean: no serious or critical
violations.

The site is given a lived-in state first (numbers waiting, called, absent, held, transferred to
the second stage) so that every list and badge is on the page when axe looks. Every page is
saved as ``test-artifacts/screens/<page>-<lang>.png``; every violation (any impact) is printed.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from browser.support import Screen, Screens, login  # noqa: E402
from playwright.async_api import Browser  # noqa: E402

pytest_plugins = ["browser.support"]

LANGS = ("ja", "en", "zh", "ko")
# name -> (path, query, a data-testid that shows the page has rendered its live state)
PAGES: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "kiosk": ("kiosk.html", {"kiosk": "k1"}, ("service-A",)),
    "operator": ("operator.html", {"counter": "1"}, ("pin",)),
    "monitor": ("monitor.html", {}, ("waiting-A",)),
    "monitor-portrait": ("monitor.html", {"layout": "portrait"}, ("waiting-A",)),
    "counter": ("counter.html", {"counter": "1"}, ("current-number",)),
    "backyard": ("backyard.html", {}, ("wait-A",)),
    "discover": ("discover.html", {}, ("edge", "no-edges")),
    "index": ("index.html", {}, ()),
}

SCROLLING = {"index", "discover"}  # documents, shot whole; the others are fixed screens


async def lived_in(screens: Screens) -> None:
    """Waiting, called, absent, held and second-stage numbers, a closed counter (2)."""
    for service in ("A", "A", "A", "A", "B", "B", "B"):
        await screens.post("/api/tickets", {"service": service, "lang": "ja"}, 201)
    token = await screens.session("1")
    one = "/api/counters/1"
    await screens.post(f"{one}/open", token=token)
    for then in ("absent", "hold", None):
        await screens.post(f"{one}/call-next", token=token)
        if then:
            await screens.post(f"{one}/{then}", token=token)
    await screens.post("/api/counters/3/open")
    await screens.post("/api/counters/3/call-next")
    await screens.post("/api/counters/3/transfer", {"service": "T"})
    await screens.post("/api/counters/3/call-next")


async def open_page(screens: Screens, name: str, lang: str) -> Screen:
    path, query, ready = PAGES[name]
    screen = await screens.open(path, lang=lang, viewport=name,
                                wait_for=ready[0] if ready else None, alternatives=ready[1:],
                                **query)
    if name == "operator":
        await login(screen)
    page = screen.page
    await page.wait_for_load_state("networkidle")
    await page.evaluate("() => document.fonts.ready.then(() => true)")
    assert await page.get_attribute("html", "lang") == lang, f"{name} not in {lang}"
    return screen


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", list(PAGES))
async def test_page_has_no_serious_axe_violations(screens_discovery: Screens, name: str,
                                                  lang: str) -> None:
    screens = screens_discovery  # the discovery page lists this edge when mDNS works here
    source = axe_source()
    await lived_in(screens)
    screen = await open_page(screens, name, lang)
    await screen.page.wait_for_timeout(300)  # let entry transitions settle for the screenshot
    await screen.shoot(f"{name}-{lang}", full_page=name in SCROLLING)
    violations = await run_axe(screen.page, source)
    if violations:
        print(f"--- axe on {name} ({lang}):\n{describe(violations)}")
    bad = blocking(violations)
    assert not bad, f"axe on {name} ({lang}): serious/critical violations\n{describe(bad)}"


async def test_axe_reports_what_it_must(browser: Browser) -> None:
    """The harness can fail: a nameless button and an image without alt text are critical."""
    page = await browser.new_page()
    await page.set_content('<html lang="en"><title>t</title><main><button></button>'
                           '<img src="data:,"></main></html>')
    found = {v["id"]: v["impact"] for v in await run_axe(page, axe_source())}
    assert found.get("button-name") == "critical"
    assert found.get("image-alt") == "critical"
    assert {v["id"] for v in blocking(await run_axe(page, axe_source()))} >= {"button-name",
                                                                             "image-alt"}
