"""axe-core in Chromium on the forms module (issue 17, "Must show": no serious or critical
violations on every field type and on the builder, ja and en): a published form holding all 14
field types (the date both 西暦 and 和暦) as the resident sees it, and its error state (the page
sent empty: every required field in the error summary); the builder, a field's settings, the
form's settings and the delete page; the staff's submissions list and one submission. Lesser
findings are printed, not failed: they are for a person to judge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from forms_e2e_support import SHOTS  # noqa: E402
from forms_staff_support import add_submission  # noqa: E402
from forms_support import Resident, add_form, resident_app  # noqa: E402
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402
from staff_support import staff_cookie  # noqa: E402

from hub.auth.guard import COOKIE  # noqa: E402
from hub.forms.scan import ClamdClient  # noqa: E402

DEPT = "shimin"


def _t(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def _opts(*pairs: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [{"value": v, "label": _t(ja, en)} for v, ja, en in pairs]


def every_type(form_id: str) -> dict[str, Any]:
    """One page with every field type (the date twice: 西暦 inputs, 和暦 one string), each
    with help text; all answerable ones required, so the empty page lists them all."""
    colours = _opts(("r", "赤", "Red"), ("g", "緑", "Green"), ("b", "青", "Blue"))
    fields: list[dict[str, Any]] = [
        {"type": "fixed_text", "id": "intro",
         "text": _t("この申請には本人確認書類が必要です。", "You need proof of identity.")},
        {"type": "text", "id": "t", "label": _t("件名", "Subject")},
        {"type": "long_text", "id": "lt", "label": _t("詳しい内容", "Details")},
        {"type": "number", "id": "num", "label": _t("人数", "Number of people")},
        {"type": "email", "id": "mail", "label": _t("メールアドレス", "E-mail")},
        {"type": "phone", "id": "tel", "label": _t("電話番号", "Phone")},
        {"type": "date", "id": "d1", "display": "seireki", "label": _t("利用日", "Date")},
        {"type": "date", "id": "d2", "display": "wareki", "label": _t("生年月日", "Birth date")},
        {"type": "choice", "id": "ch", "options": colours, "label": _t("色", "Colour")},
        {"type": "checkboxes", "id": "cb", "options": colours,
         "label": _t("好きな色", "Colours you like")},
        {"type": "dropdown", "id": "dd", "options": colours, "label": _t("車の色", "Car colour")},
        {"type": "name", "id": "nm", "label": _t("氏名", "Name")},
        {"type": "address", "id": "addr", "label": _t("住所", "Address")},
        {"type": "file", "id": "doc", "label": _t("本人確認書類", "Proof of identity")},
        {"type": "consent", "id": "ok", "label": _t("同意", "Consent"),
         "text": _t("内容に誤りはありません", "The answers are true")},
    ]
    for f in fields[1:]:
        f["help"] = _t("説明文です。", "A hint.")
    return {"id": form_id, "title": _t("すべての項目", "Every field"),
            "description": _t("アクセシビリティの確認用です。", "For the accessibility check."),
            "retention_days": 365, "identity": "anonymous",
            "pages": [{"id": "p1", "title": _t("入力", "Answers"), "fields": fields}]}


ANSWERS = {"t": "駐輪場", "lt": "二台目の登録です。", "num": 2, "mail": "a@example.jp",
           "tel": "03-1234-5678", "d1": "2026-12-24", "d2": "1990-04-01", "ch": "r",
           "cb": ["g", "b"], "dd": "b",
           "nm": {"family": "山田", "given": "花子", "family_kana": "ヤマダ",
                  "given_kana": "ハナコ"},
           "addr": {"postal": "1768501", "prefecture": "東京都", "city": "練馬区",
                    "street": "豊玉北6-12-1", "building": ""}, "ok": True}


@pytest.fixture
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        yield browser
        await browser.close()


async def check(tab: Page, name: str, source: str, failures: list[str]) -> None:
    """axe on the page as it is: serious/critical into ``failures``, the rest printed."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await tab.screenshot(path=str(SHOTS / f"axe-{name}.png"), full_page=True)
    found = await run_axe(tab, source)
    bad = blocking(found)
    rest = [v for v in found if v not in bad]
    if rest:
        print(f"\n{name} ({tab.url}), not blocking:\n{describe(rest)}")
    if bad:
        failures.append(f"{name} ({tab.url}):\n{describe(bad)}")


async def _form(r: Resident) -> tuple[str, str]:
    fid = await add_form(r.ctx, every_type("x"), department=DEPT)
    sid, _ref = await add_submission(r.ctx, fid, answers=ANSWERS)
    return fid, sid


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_resident_pages_every_field_type(tmp_path: Path, chromium: Browser,
                                               lang: str) -> None:
    source = axe_source()
    async with resident_app(tmp_path, ClamdClient.from_address("127.0.0.1:9")) as r:
        fid, _sid = await _form(r)
        base = str(r.client.make_url("")).rstrip("/")
        ctx = await chromium.new_context(viewport={"width": 390, "height": 844},
                                         locale="ja-JP" if lang == "ja" else "en-US",
                                         is_mobile=True, bypass_csp=True)
        failures: list[str] = []
        try:
            tab = await ctx.new_page()
            await tab.goto(f"{base}/f/{fid}?lang={lang}")
            assert await tab.get_attribute("html", "lang") == lang
            await check(tab, f"resident-start-{lang}", source, failures)
            async with tab.expect_navigation():
                await tab.click("#start")
            types = await tab.eval_on_selector_all(
                "[data-type]", "els => els.map(e => e.dataset.type)")
            assert len(set(types)) == 14, types
            await check(tab, f"resident-fields-{lang}", source, failures)
            async with tab.expect_navigation():
                await tab.click("#next")
            links = await tab.locator("#error-summary a").count()
            assert links == 14, await tab.inner_text("#error-summary")  # every answerable one
            await check(tab, f"resident-errors-{lang}", source, failures)
        finally:
            await ctx.close()
        assert not failures, "\n".join(failures)


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_builder_and_staff_pages(tmp_path: Path, chromium: Browser, lang: str) -> None:
    source = axe_source()
    async with resident_app(tmp_path, ClamdClient.from_address("127.0.0.1:9")) as r:
        fid, sid = await _form(r)
        base = str(r.client.make_url("")).rstrip("/")
        cookie = await staff_cookie(r.ctx.store, r.ctx.hub, "form_staff", DEPT)
        ctx = await chromium.new_context(viewport={"width": 1366, "height": 768},
                                         locale="ja-JP" if lang == "ja" else "en-US",
                                         bypass_csp=True)
        await ctx.add_cookies([{"name": COOKIE, "value": cookie[COOKIE], "url": base}])
        failures: list[str] = []
        try:
            tab = await ctx.new_page()
            pages = {"list": "/admin/forms", "builder": f"/admin/forms/{fid}",
                     "field-choice": f"/admin/forms/{fid}/fields/ch",
                     "field-file": f"/admin/forms/{fid}/fields/doc",
                     "settings": f"/admin/forms/{fid}/settings",
                     "preview": f"/admin/forms/{fid}/preview?page=1",
                     "delete": f"/admin/forms/{fid}/delete",
                     "submissions": f"/admin/forms/{fid}/submissions",
                     "submission": f"/admin/forms/{fid}/submissions/{sid}"}
            for name, path in pages.items():
                got = await tab.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
                assert got is not None, path
                assert got.status == 200, (path, got.status)
                assert await tab.get_attribute("html", "lang") == lang
                await check(tab, f"{name}-{lang}", source, failures)
            assert "豊玉北6-12-1" in await tab.inner_text("[data-testid=answers]")
            # the ward office's monitors: the same pages at 1920×1080, for looking at
            await tab.set_viewport_size({"width": 1920, "height": 1080})
            for name in ("list", "builder", "submissions", "submission"):
                await tab.goto(f"{base}{pages[name]}?lang={lang}")
                await tab.screenshot(path=str(SHOTS / f"monitor-{name}-{lang}-1920x1080.png"))
        finally:
            await ctx.close()
        assert not failures, "\n".join(failures)
