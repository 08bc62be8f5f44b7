"""A form's fee as a resident meets it, in headless Chromium at phone size (390×844), ja and en,
with the hub's CSP on: the start page and the review show the fee (with a thousands separator),
"send" leads to the hub's pay page (the amount and a link: a POST may not end at another
site under the CSP's form-action), whose link goes to the fake provider's checkout (a separate
server that says plainly it is a test); "pay" comes back to the reference number; coming back
before the provider's callback shows "checking", which its script turns into the reference
page once the callback has come (no timed refresh); "cancel" shows "not complete" and "pay
again" works.
Every page is screenshotted into ``test-artifacts/forms/pay-{step}-{lang}.png`` (to be looked
at), axe-core finds no serious or critical violation on any of them, and no page logs a
console error or throws.

The browser and the test share one event loop: the fake provider's callback to the hub is
awaited inside its "pay" handler, so the browser's return to the hub comes after it."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from forms_support import Resident, rows  # noqa: E402
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Response  # noqa: E402
from playwright.async_api import Error as PlaywrightError  # noqa: E402
from test_forms_payments import MAIL, NAME, fee_form, paying  # noqa: E402

from hub.forms import pay_store  # noqa: E402
from hub.forms.tables import form_payments, form_submissions  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "forms"
FEE = 1200  # four digits: the pages must show "1,200"
WAIT_MS = 10_000  # a navigation that has not happened by then will not
CHECKOUT = re.compile(r"^http://127\.0\.0\.1:\d+/checkout/fp_[0-9a-f]+$")


@dataclass
class Watched:
    """One browser page and what went wrong on it: console errors, uncaught exceptions and
    axe's serious or critical violations (collected so that every step is still shot)."""

    page: Page
    lang: str
    source: str
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    trouble: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self._problem(f"pageerror: {e}"))
        self.page.on("response", self._response)

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        self.trouble.set()

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self._problem(f"console at {self.page.url}: {msg.text}")

    def _response(self, resp: Response) -> None:
        """Names the address a console "Failed to load resource" leaves out (a favicon's
        request is the browser's own and has no response event: only the console tells)."""
        if resp.status >= 400:
            self._problem(f"{resp.status} for {resp.url} (on {self.page.url})")

    async def arrive(self, url: re.Pattern[str] | Callable[[str], bool], where: str) -> None:
        """Wait until the page has loaded ``url``; fail at once if the page reports an error
        first: a navigation the browser blocked (e.g. by CSP) never comes, and waiting out
        the timeout would only hide why."""
        self.trouble.clear()
        loaded = asyncio.ensure_future(self.page.wait_for_url(url, timeout=WAIT_MS))
        broken = asyncio.ensure_future(self.trouble.wait())
        await asyncio.wait({loaded, broken}, return_when=asyncio.FIRST_COMPLETED)
        broken.cancel()
        if loaded.done() and loaded.exception() is None:
            return
        loaded.cancel()
        with contextlib.suppress(asyncio.CancelledError, PlaywrightError):
            await loaded
        raise AssertionError(f"never got to {where}: the page is at {self.page.url} and "
                             f"said: {self.problems}")

    async def look(self, step: str) -> None:
        """Shoot the whole page and run axe on it. The checking page may reload (its script,
        once the payment's state changed): then axe runs again on the new copy, once."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                await self.page.screenshot(path=str(SHOTS / f"pay-{step}-{self.lang}.png"),
                                           full_page=True)
                # evaluated, not a <script> tag: the hub's CSP allows no inline script
                await self.page.evaluate(self.source)
                found = blocking(await run_axe(self.page, self.source))
                break
            except PlaywrightError as exc:
                if attempt == 2 or "context was destroyed" not in str(exc):
                    raise
                await self.page.wait_for_load_state()
        if found:
            self.failures.append(f"{step} ({self.lang}):\n{describe(found)}")

    async def hub_page(self, step: str, selector: str) -> None:
        """A hub page in the resident's language, with ``selector`` on it, looked at."""
        await self.page.wait_for_selector(selector)
        assert await self.page.get_attribute("html", "lang") == self.lang, step
        await self.look(step)

    def verdict(self) -> None:
        assert not self.problems, "\n".join(self.problems)
        assert not self.failures, "\n".join(self.failures)


async def answer_and_review(w: Watched, r: Resident, form_id: str, base: str) -> None:
    """Start page (fee shown) → the questions → the review (fee card shown)."""
    page, yen = w.page, "1,200円" if w.lang == "ja" else "1,200 yen"
    await page.goto(f"{base}/f/{form_id}?lang={w.lang}")
    assert yen in await page.inner_text("#fee")
    await w.hub_page("start", "#fee")
    await page.click("#start")
    for key, value in NAME.items():
        await page.fill(f"[id='{key}']", value)
    await page.fill("#mail", MAIL)
    await page.check("#has_dog-2")  # no dog: the dog page is skipped
    await page.click("#next")
    await page.check("#ok")
    await page.click("#next")
    fee = page.locator("#fee")
    await fee.wait_for()
    assert yen in await fee.inner_text()
    assert await page.locator("#fee ~ #submit").count() == 1, "the fee comes before 'send'"
    await w.look("review")


async def ready(w: Watched, step: str | None) -> None:
    """The hub's pay page after "send" (or "pay again"): the amount, then the link on."""
    await w.page.wait_for_selector("#pay-title[data-state=ready]")
    assert "1,200" in await w.page.inner_text("#amount")
    if step is not None:
        await w.hub_page(step, "#pay-go")
    await w.page.click("#pay-go")


async def at_provider(w: Watched, step: str | None) -> None:
    """The fake provider's checkout: a test, the amount, the two buttons."""
    page = w.page
    await w.arrive(CHECKOUT, "the provider's checkout")
    banner = await page.inner_text(".test")
    assert "テスト用" in banner
    assert "For testing only" in banner
    assert "1,200" in await page.inner_text("strong")
    if step is not None:
        await w.look(step)


async def press(w: Watched, button: str) -> None:
    """支払う / Pay or キャンセル / Cancel at the provider: back on the hub afterwards."""
    await w.page.get_by_role("button", name=re.compile(button)).click()
    await w.arrive(lambda u: CHECKOUT.match(u) is None and "/pay/" in u, "the hub's pay page")


async def paid(w: Watched, r: Resident, step: str | None) -> None:
    """The done page with the reference number and the line that says it is paid."""
    await w.page.wait_for_selector("#paid")
    (sub,) = await rows(r.ctx.store, form_submissions)
    assert (sub.status, sub.payment) == ("received", "confirmed")
    assert (await w.page.inner_text("#reference")).strip() == sub.reference
    if step is not None:
        await w.hub_page(step, "#paid")


async def phone(browser: Browser, lang: str) -> BrowserContext:
    """A phone-sized context in the resident's locale (the hub's CSP stays on)."""
    return await browser.new_context(viewport={"width": 390, "height": 844},
                                     locale="ja-JP" if lang == "ja" else "en-US")


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_pay_a_fee_at_phone_size(tmp_path: Path, browser: Browser, lang: str) -> None:
    source = axe_source()
    async with paying(tmp_path) as r:
        form_id = await fee_form(r, FEE)
        base = str(r.client.make_url("/")).rstrip("/")
        ctx = await phone(browser, lang)
        try:
            w = Watched(await ctx.new_page(), lang, source)
            await answer_and_review(w, r, form_id, base)
            await w.page.click("#submit")
            await ready(w, "ready")
            await at_provider(w, "provider")
            checkout = w.page.url
            (sub,) = await rows(r.ctx.store, form_submissions)
            assert sub.status == pay_store.AWAITING
            here = f"{base}/f/{form_id}/pay/{pay_store.pay_token(r.ctx, str(sub.id))}"

            # back on the hub before the provider's callback: "checking", no timed refresh
            await w.page.goto(f"{here}/return?lang={lang}")
            await w.page.wait_for_selector("#pay-title[data-state=checking]")
            assert "1,200" in await w.page.inner_text("#amount")
            assert await w.page.locator("meta[http-equiv=refresh]").count() == 0
            await w.hub_page("checking", "#pay-refresh")

            # paid in another tab: the checking page's script shows the reference by itself
            other = await ctx.new_page()
            await other.goto(checkout)
            await other.get_by_role("button", name=re.compile("Pay")).click()
            await other.wait_for_url(lambda u: CHECKOUT.match(u) is None)
            await other.close()
            await paid(w, r, "paid")
            assert len(r.mails(MAIL)) == 1
            # the "checking" page's address and the pay page's now show the reference too
            for again in (f"{here}/return", here):
                await w.page.goto(f"{again}?lang={lang}")
                await paid(w, r, None)
            w.verdict()
        finally:
            await ctx.close()


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_cancel_then_pay_again_at_phone_size(tmp_path: Path, browser: Browser,
                                                   lang: str) -> None:
    source = axe_source()
    async with paying(tmp_path) as r:
        form_id = await fee_form(r, FEE)
        base = str(r.client.make_url("/")).rstrip("/")
        ctx = await phone(browser, lang)
        try:
            w = Watched(await ctx.new_page(), lang, source)
            await answer_and_review(w, r, form_id, base)
            await w.page.click("#submit")
            await ready(w, None)
            await at_provider(w, None)
            await press(w, "Cancel")
            await w.page.wait_for_selector("#pay-title[data-state=failed]")
            assert "1,200" in await w.page.inner_text("#amount")
            (sub,) = await rows(r.ctx.store, form_submissions)
            assert sub.status == pay_store.AWAITING
            assert (await w.page.inner_text("#reference")).strip() == sub.reference
            assert r.mails() == []
            await w.hub_page("failed", "#pay-retry")

            await w.page.click("#pay-retry")
            await ready(w, None)
            await at_provider(w, "provider-again")
            await press(w, "Pay")
            await paid(w, r, "paid-again")
            assert sorted(p.status for p in await rows(r.ctx.store, form_payments)) == [
                "cancelled", "confirmed"]
            w.verdict()
        finally:
            await ctx.close()
