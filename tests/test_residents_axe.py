"""axe-core on the resident status page, ticket pages and the web-ticket page, in ja, en, zh
and ko, on a phone sized window: no serious or critical violations. The ward is lived in first
(a crowded main office so the W2 hint shows, second wait, a called ticket, a waiting one with a
notice message, and web tickets in every check-in phase with their QR: before the check-in,
deferred, after the grace, checked in), so every element is on the page when axe looks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("browser")

import residents_support  # noqa: E402
from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from playwright.async_api import Browser  # noqa: E402
from residents_support import Ward, ward  # noqa: E402

from edge.domain import commands as c  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "residents"
OPEN = {"nerima-main": ("1", "2", "4"), "hikarigaoka": ("1", "4"), "oizumi": ("1",)}
SITE_TEXT = residents_support.site_text


def all_day_web(site: str) -> str:
    """Web tickets all day (the test must not depend on the hour); Oizumi keeps a deferred web
    ticket's turn for 0 minutes, so "after the grace" can be seen without waiting."""
    text = re.sub(r'web = \{ from = "[0-9:]+", to = "[0-9:]+"', 'web = { from = "00:00", '
                  'to = "24:00"', SITE_TEXT(site))
    if site == "oizumi":
        text = text.replace("notify_ahead = 3 }", "notify_ahead = 3, checkin_grace_min = 0 }")
    return text


async def web(w: Ward, site: str) -> str:
    """A web ticket of B at ``site``; its token."""
    out = await w.writers[site].execute(c.Issue("B", channel="web"))
    assert out.refused is None, out.refused
    assert out.ticket is not None
    tid = out.ticket["id"]
    return str(w.writers[site].read(lambda s: s.tickets[tid].token))


@pytest.fixture
async def w(mqtt_broker_url: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Ward, dict[str, str]]]:
    monkeypatch.setattr(residents_support, "site_text", all_day_web)
    async with ward(mqtt_broker_url, tmp_path, open_counters=OPEN) as live:
        pages: dict[str, str] = {}
        await live.issue("nerima-main", "B", 25)
        await live.issue("nerima-main", "A", 2)
        await live.run("nerima-main", c.CallNext("2"))
        await live.run("nerima-main", c.Transfer("2", "T"))
        await live.issue("hikarigaoka", "B", 3)
        await live.run("hikarigaoka", c.CallNext("4"))  # 1001 called at counter 4
        pages["ticket-called"] = f"/t/{live.token('hikarigaoka', 1001)}"
        deferred = await web(live, "hikarigaoka")
        await live.issue("hikarigaoka", "B")
        for _ in range(3):  # 1002, 1003, then the web ticket's turn: deferred, 1005 called
            await live.run("hikarigaoka", c.CallNext("1"))
        pages["web-deferred"] = f"/t/{deferred}"
        pages["web-before"] = f"/t/{await web(live, 'hikarigaoka')}?notice=invalid_contact"
        (k,) = await live.issue("hikarigaoka", "B")
        pages["ticket-waiting"] = f"/t/{live.token('hikarigaoka', k['number'])}"
        over = await web(live, "oizumi")
        await live.issue("oizumi", "B")
        await live.run("oizumi", c.CallNext("1"))  # deferred, with no grace
        await live.run("oizumi", c.CallNext("1"))  # absent: not checked in
        pages["web-over"] = f"/t/{over}"
        checked = await web(live, "oizumi")
        await live.run("oizumi", c.CheckIn(checked))
        pages["web-checked-in"] = f"/t/{checked}"
        await live.synced()
        await live.settled()
        yield live, pages


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ja", "en", "zh", "ko"])
async def test_resident_pages_have_no_serious_axe_violations(
        w: tuple[Ward, dict[str, str]], browser: Browser, lang: str) -> None:
    ward_, tickets = w
    source = axe_source()
    pages: dict[str, Any] = {"status": "/", **tickets, "error": "/t/not-a-ticket",
                             "webticket": "/w/hikarigaoka/B"}  # where a web ticket is taken
    phases = {"web-deferred": "deferred", "web-before": "checkin_before",
              "web-over": "checkin_over", "web-checked-in": "next",
              "ticket-called": "called", "ticket-waiting": "waiting"}
    ctx = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True,
                                    locale={"ja": "ja-JP", "en": "en-US", "zh": "zh-CN",
                                            "ko": "ko-KR"}[lang])
    failures = []
    try:
        for name, path in pages.items():
            page = await ctx.new_page()
            sep = "&" if "?" in path else "?"
            await page.goto(f"{ward_.url}{path}{sep}lang={lang}")
            if name == "webticket":
                await page.get_by_role("button").first.wait_for()
            elif name != "error":
                await page.locator("[data-testid=connection][data-state=live]").wait_for()
            if name != "error":
                assert await page.get_attribute("html", "lang") == lang
            if name in phases:
                got = await page.get_attribute("[data-testid=ticket]", "data-phase")
                assert got == phases[name], (name, got)
            if name.startswith("web-") and name != "web-checked-in":
                assert await page.get_by_test_id("checkin-qr").is_visible(), name
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / f"axe-{name}-{lang}.png"), full_page=True)
            violations = await run_axe(page, source)
            if violations:
                print(f"--- axe on {name} ({lang}):\n{describe(violations)}")
            if blocking(violations):
                failures.append(f"{name}:\n{describe(blocking(violations))}")
            await page.close()
        failures += await status_cards_fit(ctx, f"{ward_.url}/?lang={lang}", lang)
    finally:
        await ctx.close()
    assert not failures, "\n".join(failures)


# a label is on one line and nothing is clipped (no "待ち人 / 数", no "Open counte…")
FIT = """() => [...document.querySelectorAll('.svc dt, .svc dd')].filter(el => {
  const lh = parseFloat(getComputedStyle(el).lineHeight);
  const oneLine = el.tagName !== 'DT' || el.getBoundingClientRect().height <= lh * 1.5;
  return !oneLine || el.scrollWidth > el.clientWidth + 1;
}).map(el => el.textContent.trim())"""


async def status_cards_fit(ctx: Any, url: str, lang: str) -> list[str]:
    """The status cards at the staff laptop and monitor sizes: labels fit, screenshots taken."""
    failures = []
    for width, height in ((1366, 768), (1920, 1080), (390, 844)):
        page = await ctx.new_page()
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto(url)
        await page.locator("[data-testid=connection][data-state=live]").wait_for()
        await page.screenshot(path=str(SHOTS / f"status-{width}-{lang}.png"))
        bad = await page.evaluate(FIT)
        if bad:
            failures.append(f"status at {width}px: broken or clipped: {sorted(set(bad))}")
        await page.close()
    return failures
