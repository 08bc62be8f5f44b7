"""Inline validation on the residents' pages (issue 17): ``POST /f/{form}/check/{n}`` answers
exactly the errors "next" would (one copy of the rules), saves nothing and is guarded like the
page (draft cookie, CSRF); in Chromium at 390×844, with the hub's CSP on, ``forms-check.js``
shows a bad postal code's message in the field when it is left and removes it once fixed,
announces it politely without moving the focus, never sends a file, and axe finds no serious
or critical violation with the message shown."""

from __future__ import annotations

import html as htmlmod
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from clamd_support import Clamd, pdf, start_clamd  # noqa: E402
from forms_support import Resident, add_form, resident_app, rows  # noqa: E402
from playwright.async_api import Browser, Dialog, Request  # noqa: E402

from hub.forms.resident_http import DRAFT_COOKIE  # noqa: E402
from hub.forms.tables import form_drafts  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "forms"
GOOD = {"addr.postal": "176-8501", "addr.prefecture": "東京都", "addr.city": "練馬区",
        "addr.street": "豊玉北6-12-1"}


def definition() -> dict[str, Any]:
    """Page 1: an address, a split date, a phone and an optional photo; page 2: a note and a
    required document (files already attached count)."""
    return {
        "title": {"ja": "住所の届出", "en": "Address notice"},
        "description": {"ja": "住所を届け出ます。", "en": "Tell us your address."},
        "retention_days": 365, "identity": "anonymous",
        "pages": [
            {"id": "p1", "title": {"ja": "住所", "en": "Address"}, "fields": [
                {"type": "address", "id": "addr", "label": {"ja": "住所", "en": "Address"},
                 "help": {"ja": "郵便番号から入力してください",
                          "en": "Start with the postal code"}},
                {"type": "date", "id": "born", "required": False,
                 "label": {"ja": "生年月日", "en": "Date of birth"}},
                {"type": "phone", "id": "tel", "required": False,
                 "label": {"ja": "電話番号", "en": "Phone number"}},
                {"type": "file", "id": "photo", "required": False,
                 "label": {"ja": "写真", "en": "Photo"}}]},
            {"id": "p2", "title": {"ja": "書類", "en": "Documents"}, "fields": [
                {"type": "text", "id": "note", "label": {"ja": "備考", "en": "Note"}},
                {"type": "file", "id": "doc", "label": {"ja": "証明書", "en": "Certificate"}}]},
        ]}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


async def check(r: Resident, form_id: str, n: int, data: dict[str, str], *,
                csrf: str | None = "body", lang: str = "ja",
                **headers: str) -> tuple[int, dict[str, Any]]:
    """The page's script's request: the fields urlencoded, the token in the body, a header or
    nowhere."""
    items = list(data.items())
    if csrf == "body":
        items.insert(0, ("csrf", r.csrf()))
    elif csrf == "header":
        headers["X-CSRF-Token"] = r.csrf()
    async with r.client.post(f"/f/{form_id}/check/{n}?lang={lang}", data=items,
                             headers={"User-Agent": r.user_agent, **headers},
                             allow_redirects=False) as got:
        assert got.content_type == "application/json"
        assert got.headers["Cache-Control"] == "no-store"
        return got.status, await got.json()


def summary_pairs(page: str) -> list[tuple[str, str]]:
    """(link target, text) of the server's error summary."""
    start = page.index('id="error-summary"')
    block = page[start:page.index("</ul>", start)]
    return [(htmlmod.unescape(a), htmlmod.unescape(b))
            for a, b in re.findall(r'<a href="#([^"]+)">([^<]+)</a>', block)]


async def started(r: Resident) -> str:
    form_id = await add_form(r.ctx, definition())
    assert (await r.get(f"/f/{form_id}"))[0] == 200
    status, _, headers = await r.post(f"/f/{form_id}/start")
    assert status == 303, headers
    return form_id


async def draft_row(r: Resident, form_id: str) -> tuple[Any, ...]:
    (row,) = await rows(r.ctx.store, form_drafts, form_id=form_id)
    return tuple(row)


CASES = [
    {**GOOD, "addr.postal": "12345"},
    {**GOOD, "addr.postal": "１７６８５０１", "addr.prefecture": "", "tel": "12"},
    {**GOOD, "addr.city": "", "born.year": "2026", "born.month": "2", "born.day": "30"},
    {"tel": "03-1234-5678"},
    {**GOOD, "addr.street": "x" * 201},
]


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_check_answers_what_next_would_and_saves_nothing(tmp_path: Path, clamd: Clamd,
                                                              lang: str) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await started(r)
        before = await draft_row(r, form_id)
        status, got = await check(r, form_id, 1, {**GOOD, "addr.postal": "12345"}, lang=lang)
        assert status == 200
        assert got["errors"] == [{
            "field": "addr", "input": "addr.postal", "code": "bad_postal",
            "message": "郵便番号は7桁の数字で入力してください" if lang == "ja"
            else "Enter the postal code as 7 digits"}]
        status, got = await check(r, form_id, 1, GOOD, csrf="header", lang=lang)
        assert (status, got) == (200, {"errors": []})
        for case in CASES:  # the same errors, in the same order and words, as "next" gives
            status, got = await check(r, form_id, 1, case, lang=lang)
            assert status == 200
            code, page, _ = await r.post(f"/f/{form_id}/page/1?lang={lang}", case)
            assert code == 400, case
            expected = summary_pairs(page)
            inputs = [e["input"] + (".year" if e["input"] == "born" else "")
                      for e in got["errors"]]
            assert list(zip(inputs, [e["message"] for e in got["errors"]], strict=True)) \
                == expected, case
            assert all(e["field"] == e["input"].split(".")[0] for e in got["errors"])
        assert await draft_row(r, form_id) == before  # nothing the checks saw was saved
        status, got = await check(r, form_id, 3, GOOD)
        assert (status, got["error"]["code"]) == (404, "no_draft")


async def test_check_is_guarded_like_the_page(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await started(r)
        status, got = await check(r, form_id, 1, GOOD, csrf=None)
        assert (status, got["error"]["code"]) == (403, "form_expired")
        status, got = await check(r, form_id, 1, {**GOOD, "csrf": "x" * 32}, csrf=None)
        assert status == 403
        status, got = await check(r, form_id, 1, GOOD, **{"Sec-Fetch-Site": "cross-site"})
        assert status == 403
        body = aiohttp.FormData({"csrf": r.csrf(), **GOOD})  # multipart, with a file: refused
        body.add_field("photo", pdf(), filename="a.pdf", content_type="application/pdf")
        async with r.client.post(f"/f/{form_id}/check/1", data=body,
                                 headers={"X-CSRF-Token": r.csrf()}) as got:
            assert got.status == 415
            assert (await got.json())["error"]["code"] == "form_only"
        status, _ = await check(r, "nope", 1, GOOD)
        assert status == 404
        r.client.session.cookie_jar.clear(lambda c: c.key == DRAFT_COOKIE)
        assert (await r.get(f"/f/{form_id}/page/1"))[0] == 404
        status, got = await check(r, form_id, 1, GOOD)
        assert (status, got["error"]["code"]) == (404, "no_draft")


async def test_files_already_attached_count(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await started(r)
        assert (await r.post(f"/f/{form_id}/page/1", GOOD))[0] == 303
        status, got = await check(r, form_id, 2, {"note": "よろしく"})
        assert [e["code"] for e in got["errors"]] == ["required_file"]
        status, _, headers = await r.post(f"/f/{form_id}/page/2", {"note": "よろしく"},
                                          files=[("doc", "証明書.pdf", pdf(), "application/pdf")])
        assert status == 303, headers
        status, got = await check(r, form_id, 2, {"note": ""})
        assert [e["code"] for e in got["errors"]] == ["required"]  # the document counts


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_inline_message_in_chromium_at_phone_size(tmp_path: Path, clamd: Clamd,
                                                        browser: Browser, lang: str) -> None:
    source = axe_source()
    photo = tmp_path / "secret-photo.pdf"
    photo.write_bytes(pdf(text=b"TOP-SECRET-CONTENT"))
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, definition())
        base = str(r.client.make_url("/")).rstrip("/")
        ctx = await browser.new_context(viewport={"width": 390, "height": 844},
                                        locale="ja-JP" if lang == "ja" else "en-US")
        problems: list[str] = []
        checks: list[str] = []
        dialogs: list[str] = []

        def on_request(req: Request) -> None:
            if "/check/" in req.url:
                checks.append(req.post_data or "")

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.type)
            await dialog.accept()

        try:
            page = await ctx.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", on_request)
            page.on("dialog", on_dialog)
            await page.goto(f"{base}/f/{form_id}?lang={lang}")
            await page.click("#start")
            await page.wait_for_selector("form[data-check]")
            await page.set_input_files("#photo", str(photo))
            await page.click("[id='addr.postal']")
            await page.keyboard.type("12345")
            await page.keyboard.press("Tab")
            error = page.locator("[id='addr-error']")
            await error.wait_for(state="visible")
            message = ("郵便番号は7桁の数字で入力してください" if lang == "ja"
                       else "Enter the postal code as 7 digits")
            said = ("エラー: " if lang == "ja" else "Error: ") + message
            assert (await error.inner_text()).strip() == said
            assert await page.get_attribute("[id='addr.postal']", "aria-invalid") == "true"
            described = await page.get_attribute("[id='addr.postal']", "aria-describedby")
            assert described is not None
            assert described.split() == ["addr-hint", "addr-error"]
            assert "addr-error" in str(await page.get_attribute("fieldset", "aria-describedby"))
            assert await page.get_attribute("[id='addr.prefecture']", "aria-invalid") is None
            assert "field--error" in str(await page.get_attribute("[data-field=addr]", "class"))
            assert await page.evaluate("() => document.activeElement.id") == "addr.prefecture"
            await page.wait_for_function(
                "t => document.getElementById('forms-check-live').textContent === t", arg=said)
            assert await page.locator("#error-summary").count() == 0
            assert checks
            assert all("TOP-SECRET" not in body and "photo" not in body.split("&")[0]
                       for body in checks)
            assert all("secret-photo" not in body for body in checks)
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / f"inline-error-{lang}.png"), full_page=True)
            await page.evaluate(source)  # axe without an inline script: the page's CSP holds
            found = blocking(await run_axe(page, source))
            assert not found, describe(found)

            # the prefecture's own message waits until it has been touched
            await page.click("[id='addr.postal']")
            await page.fill("[id='addr.postal']", "")
            await page.keyboard.type("1768501")
            await page.keyboard.press("Tab")
            await error.wait_for(state="detached")
            assert await page.get_attribute("[id='addr.postal']", "aria-invalid") is None
            assert await page.get_attribute("[id='addr.postal']", "aria-describedby") \
                == "addr-hint"
            assert "field--error" not in str(await page.get_attribute("[data-field=addr]",
                                                                      "class"))
            # a split date is judged when the focus leaves it
            await page.click("[id='born.year']")
            await page.keyboard.type("2026")
            await page.keyboard.press("Tab")
            await page.keyboard.type("2")
            await page.keyboard.press("Tab")
            await page.keyboard.type("30")
            await page.wait_for_timeout(600)
            assert await page.locator("[id='born-error']").count() == 0
            await page.keyboard.press("Tab")
            await page.locator("[id='born-error']").wait_for(state="visible")
            assert await page.get_attribute("[id='born.day']", "aria-invalid") == "true"
            await page.screenshot(path=str(SHOTS / f"inline-date-{lang}.png"), full_page=True)
            found = blocking(await run_axe(page, source))
            assert not found, describe(found)
            await page.click("[id='born.day']")
            await page.fill("[id='born.day']", "")
            await page.keyboard.type("28")
            await page.keyboard.press("Tab")
            await page.locator("[id='born-error']").wait_for(state="detached")
            await page.screenshot(path=str(SHOTS / f"inline-fixed-{lang}.png"), full_page=True)

            # leaving typed answers unsaved asks first; "next" does not
            other = "en" if lang == "ja" else "ja"
            async with page.expect_navigation():
                await page.click(f".langs a[hreflang={other}]")
            assert dialogs == ["beforeunload"]
            await page.click("[id='addr.postal']")
            await page.keyboard.type("1768501")
            await page.select_option("[id='addr.prefecture']", "東京都")
            await page.fill("[id='addr.city']", "練馬区")
            await page.fill("[id='addr.street']", "豊玉北6-12-1")
            async with page.expect_navigation():
                await page.click("#next")
            assert page.url.split("?")[0].endswith("/page/2"), page.url
            assert dialogs == ["beforeunload"]
            assert not problems, problems
        finally:
            await ctx.close()
