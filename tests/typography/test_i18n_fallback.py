"""The screens' i18n (kiosk-ui/lib/i18n.js) falls back like ``Text.get``: a zh/ko reader gets
English before Japanese, a Japanese reader Japanese then English; <html lang> follows the
language (Japanese line breaking depends on it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.register_assert_rewrite("browser")

from browser.support import Screens  # noqa: E402
from playwright.async_api import Route  # noqa: E402

pytest_plugins = ["browser.support"]

TABLES = {
    "ja": {"x.all": "日本語", "x.ja_en": "日本語だけ", "x.ja_only": "日本語のみ"},
    "en": {"x.all": "English", "x.ja_en": "English only", "x.en_only": "English alone"},
    "zh": {"x.all": "中文"},
    "ko": {},
}

PROBE = """async () => {
  const m = await import("/ui/lib/i18n.js");
  const site = { ja: "1番窓口", en: "Counter 1" };
  const out = {};
  for (const lang of ["zh", "ko", "ja", "en"]) {
    await m.loadLang(lang, "typotest");
    out[lang] = { all: m.t("x.all"), jaEn: m.t("x.ja_en"), jaOnly: m.t("x.ja_only"),
                  enOnly: m.t("x.en_only"), missing: m.t("x.none"), pick: m.pick(site),
                  pickJaOnly: m.pick({ ja: "窓口" }), html: document.documentElement.lang };
  }
  return out;
}"""


async def test_zh_and_ko_fall_back_to_english(screens: Screens) -> None:
    screen = await screens.open("index.html")
    await screen.page.wait_for_selector("#screens tr")

    async def tables(route: Route) -> None:
        lang = route.request.url.rsplit("/", 1)[-1].removesuffix(".json")
        await route.fulfill(status=200, content_type="application/json",
                            body=json.dumps(TABLES.get(lang, {})))
    await screen.page.route("**/ui/i18n/typotest/*.json", tables)
    got: dict[str, dict[str, Any]] = await screen.page.evaluate(PROBE)
    for lang in ("zh", "ko"):
        assert got[lang]["jaEn"] == "English only", got[lang]
        assert got[lang]["enOnly"] == "English alone"
        assert got[lang]["jaOnly"] == "日本語のみ"  # Japanese only when nothing else exists
        assert got[lang]["pick"] == "Counter 1"
        assert got[lang]["pickJaOnly"] == "窓口"
        assert got[lang]["html"] == lang
    assert got["zh"]["all"] == "中文"
    assert got["ja"]["jaEn"] == "日本語だけ"
    assert got["ja"]["enOnly"] == "English alone"
    assert got["ja"]["pick"] == "1番窓口"
    assert got["ja"]["html"] == "ja"
    assert got["en"]["jaOnly"] == "日本語のみ"
    assert all(got[lang]["missing"] == "x.none" for lang in got)


async def test_the_glossary_is_served_to_the_screens(screens: Screens) -> None:
    glossary = await screens.get("/ui/glossary.json")
    assert glossary["terms"]["web_ticket"]["ja"] == "Web番号札"
    assert "インターネット番号札" in glossary["terms"]["web_ticket"]["avoid"]["ja"]
