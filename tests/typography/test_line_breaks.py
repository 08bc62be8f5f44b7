"""Japanese never breaks inside a word on any screen (issue 11): "戸 / 籍" is a failure.

Every page is rendered in Japanese at the size it is used at, with real content (a real edge
for the sample main office, a real hub with the sample sites). For each text node holding
Japanese the browser reports where its lines start (``Range.getClientRects`` per character); a
break is fine when it falls on a BudouX phrase boundary (the same model Chromium's
``word-break: auto-phrase`` uses) or next to a space, punctuation, a symbol or ASCII. Offences
are reported with page, element and the two halves. A deliberately ``word-break: break-all``
narrow element proves the check can fail. Screenshots go to test-artifacts/typography/.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import budoux
from conftest import free_port
from playwright.async_api import Browser, Page
from support import TZ

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.transport.sim import SIMS
from edge.domain import commands as c
from edge.domain.clock import ManualClock

pytest_plugins = ["browser.support"]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "typography"
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # 11/23 is a holiday
PIN = "1234"  # the sample site's PIN (sites/nerima-main.toml)

# Walk the text nodes; report each Japanese one with the indexes where a new line starts.
BREAKS_JS = """
() => {
  const JA = /[\\u3040-\\u30ff\\u3400-\\u9fff\\uf900-\\ufaff\\uff66-\\uff9f]/;
  const where = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
      let s = e.tagName.toLowerCase();
      if (e.id) s += "#" + e.id;
      else if (e.dataset && e.dataset.testid) s += `[data-testid=${e.dataset.testid}]`;
      else if (e.classList.length) s += "." + [...e.classList].slice(0, 2).join(".");
      parts.unshift(s);
    }
    return parts.join(" > ");
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.data, el = node.parentElement;
    if (!JA.test(text) || !el || el.closest("script, style, noscript, option")) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 2 || box.height <= 2) continue;  // visually hidden (screen readers only)
    const cs = getComputedStyle(el);
    if (cs.visibility === "hidden") continue;
    let prev = null;
    const breaks = [];
    for (let i = 0; i < text.length; i++) {
      if (/\\s/.test(text[i])) continue;
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const r = range.getClientRects()[0];
      if (!r || (r.width === 0 && r.height === 0)) continue;
      if (prev && r.top - prev.top > Math.min(r.height, prev.height) / 2) breaks.push(i);
      prev = r;
    }
    const lang = (el.closest("[lang]") || document.documentElement).lang;
    out.push({ where: where(el), text, breaks, lang, wordBreak: cs.wordBreak });
  }
  return out;
}
"""

PLANT_JS = """
(id) => {
  const d = document.createElement("div");
  d.id = id;
  d.lang = "ja";
  d.style.cssText = "width: 4.5em; font-size: 24px; word-break: break-all; background: #fff";
  d.textContent = "証明書発行の受付は本日終了しました";
  document.body.prepend(d);
}
"""


@cache
def _parser() -> Any:
    return budoux.load_default_japanese_parser()


def phrase_ends(text: str) -> set[int]:
    """Indexes where BudouX lets a line start."""
    ends, at = set(), 0
    for phrase in _parser().parse(text):
        at += len(phrase)
        ends.add(at)
    return ends


def _loose(ch: str) -> bool:
    """A character a line may break beside: space, punctuation, symbol, ASCII."""
    return ch.isspace() or ord(ch) < 128 or unicodedata.category(ch)[0] in "PSZ"


_FREE_NEXT = {"名詞", "動詞", "形容詞", "副詞", "連体詞", "接頭詞", "感動詞", "接続詞"}
_BOUND_NEXT = {"接尾", "非自立", "数"}  # pos_group1 of words that lean on the word before
_ENDS_PHRASE = {"助詞", "助動詞", "記号", "動詞", "形容詞", "副詞", "連体詞", "感動詞", "接続詞"}


@cache
def _morphemes(text: str) -> tuple[tuple[int, str, str], ...]:
    """(start, pos, pos_group1) of each word (Open JTalk's dictionary); () if unaligned."""
    import pyopenjtalk  # the voice's engine; imported only when BudouX alone disagrees

    out, at = [], 0
    for f in pyopenjtalk.run_frontend(text):
        word = str(f["string"])
        found = text.find(word, at)
        if found < 0:
            found = text.find(unicodedata.normalize("NFKC", word), at)
        if found < 0:
            return ()
        out.append((found, str(f["pos"]), str(f["pos_group1"])))
        at = found + len(word)
    return tuple(out)


def _phrase_start_by_words(text: str, i: int) -> bool:
    """Second opinion where Chromium's BudouX model and the python one differ (they do: they
    are different releases and BudouX reads context): ``i`` starts a free word and the word
    before ends a phrase (a particle, a verb, 「本日」-like adverbial nouns), so neither a word
    ("戸 / 籍", "押 / して") nor a compound ("証明書 / 発行") is split."""
    words = _morphemes(text)
    for k, (start, pos, group) in enumerate(words):
        if start == i and k > 0:
            _s, prev_pos, prev_group = words[k - 1]
            free = pos in _FREE_NEXT and group not in _BOUND_NEXT
            # a formal noun after a verb starts a phrase: 「変わる / ことがあります」
            formal = (pos, group) == ("名詞", "非自立") and prev_pos in {"動詞", "形容詞", "助動詞"}
            return (free or formal) and (prev_pos in _ENDS_PHRASE or prev_group == "副詞可能")
    return False


def offences(page: str, nodes: list[dict[str, Any]]) -> list[str]:
    """Each break inside a phrase, as 'page element: 「left / right」'."""
    bad = []
    for node in nodes:
        text, ends = node["text"], phrase_ends(node["text"])
        for i in node["breaks"]:
            if i in ends or _loose(text[i - 1]) or _loose(text[i]):
                continue
            if _phrase_start_by_words(text, i):
                continue
            bad.append(f"{page} {node['where']}: 「{text[:i].strip()} / {text[i:].strip()}」")
    return bad


def no_auto_phrase(page: str, nodes: list[dict[str, Any]]) -> list[str]:
    """Japanese text whose element lacks lang="ja" or the auto-phrase rule (Chinese or Korean
    text marked as such, e.g. the 「中文」 language button, is not Japanese)."""
    return [f"{page} {n['where']}: lang={n['lang']!r} word-break={n['wordBreak']} {n['text']!r}"
            for n in nodes if not n["lang"].startswith(("zh", "ko"))
            and (not n["lang"].startswith("ja") or n["wordBreak"] != "auto-phrase")]


async def check(page: Page, name: str) -> tuple[list[str], list[str]]:
    await page.wait_for_timeout(300)  # live updates and fonts settle
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"))
    assert await page.evaluate("document.documentElement.lang") == "ja", name
    nodes: list[dict[str, Any]] = await page.evaluate(BREAKS_JS)
    assert nodes, f"{name}: no Japanese text found"
    return offences(name, nodes), no_auto_phrase(name, nodes)


# --- the edge's screens -------------------------------------------------------------------------

@asynccontextmanager
async def main_office(tmp_path: Path) -> AsyncIterator[tuple[Edge, str]]:
    """The sample main office on a Monday morning, with queues, calls, a hold, an absence and a
    second wait, so every panel of every screen has something to show."""
    SIMS.clear()
    edge = build_edge(load_site_config(ROOT / "sites" / "nerima-main.toml"),
                      tmp_path / "edge.db", ManualClock(MONDAY_10))
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    try:
        ex = edge.writer.execute
        for cid in ("1", "2", "3", "4", "5"):
            await ex(c.OpenCounter(cid))
        for code in "ABCDM" * 3:
            await ex(c.Issue(code))
        for cid in ("1", "2", "3", "4"):
            await ex(c.CallNext(cid))
        await ex(c.Hold("3"))
        await ex(c.MarkAbsent("4"))
        await ex(c.Transfer("1", "T"))
        await ex(c.CallNext("1"))
        yield edge, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


EDGE_PAGES: list[tuple[str, str, tuple[int, int]]] = [
    ("kiosk-portrait", "kiosk.html?kiosk=k1", (1080, 1920)),
    ("kiosk-landscape", "kiosk.html?kiosk=k1", (1920, 1080)),
    ("operator", "operator.html?counter=1", (1366, 768)),
    ("monitor", "monitor.html", (1920, 1080)),
    ("counter", "counter.html?counter=1", (800, 480)),
    ("backyard", "backyard.html", (1366, 768)),
    ("index", "index.html", (1366, 768)),
]


async def _open(browser: Browser, url: str, size: tuple[int, int]) -> Page:
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]},
                                        locale="ja-JP")
    page = await context.new_page()
    await page.goto(url + ("&" if "?" in url else "?") + "lang=ja")
    await page.wait_for_load_state("load")
    return page


async def _ready(page: Page, name: str) -> None:
    if name.startswith("kiosk"):
        await page.wait_for_selector("body[data-ready=true]", state="attached")
    elif name == "operator":
        await page.get_by_test_id("pin").fill(PIN)
        await page.get_by_test_id("login").click()
        await page.get_by_test_id("call-next").wait_for(state="visible")
        await page.get_by_test_id("current-number").wait_for(state="visible")
    elif name == "counter":
        await page.get_by_test_id("current-number").wait_for(state="visible")
    elif name == "backyard":
        await page.get_by_test_id("updated").wait_for(state="visible")
    elif name == "monitor":
        await page.get_by_test_id("calling").wait_for(state="visible")


async def test_edge_screens_break_japanese_between_phrases(
        tmp_path: Path, browser: Browser) -> None:
    bad: list[str] = []
    unstyled: list[str] = []
    async with main_office(tmp_path) as (_edge, url):
        for name, path, size in EDGE_PAGES:
            page = await _open(browser, f"{url}/ui/{path}", size)
            await _ready(page, name)
            b, u = await check(page, f"{name}-{size[0]}x{size[1]}")
            bad += b
            unstyled += u
            if name == "kiosk-portrait":  # the check can fail: a planted break-all element
                await page.evaluate(PLANT_JS, "planted")
                planted = [o for o in offences("k", await page.evaluate(BREAKS_JS))
                           if "#planted" in o]
                assert planted, "a word-break: break-all element was not caught"
                await page.evaluate("""() => { const d = document.getElementById("planted");
                    d.style.wordBreak = ""; d.style.width = "8em"; }""")
                assert not [o for o in offences("k", await page.evaluate(BREAKS_JS))
                            if "#planted" in o], "the same text with auto-phrase was flagged"
            await page.context.close()
    assert not bad, "Japanese broken inside a phrase:\n" + "\n".join(bad)
    assert not unstyled, "Japanese text without lang=ja + auto-phrase:\n" + "\n".join(unstyled)


# --- the hub's resident pages -------------------------------------------------------------------

async def test_hub_pages_break_japanese_between_phrases(
        mqtt_broker_url: str, tmp_path: Path, browser: Browser) -> None:
    from residents_support import ward  # imports the hub: only this test needs it

    open_counters = {"nerima-main": ("1", "2"), "hikarigaoka": ("1", "4"), "oizumi": ("1",)}
    bad: list[str] = []
    unstyled: list[str] = []
    async with ward(mqtt_broker_url, tmp_path, open_counters=open_counters) as w:
        await w.issue("nerima-main", "A", 3)
        await w.issue("oizumi", "B", 2)
        await w.run("nerima-main", c.CallNext("2"))
        await w.run("nerima-main", c.Transfer("2", "T"))
        await w.synced()
        token = w.token("nerima-main", (await w.issue("nerima-main", "B"))[0]["number"])
        await w.synced()
        for name, path in (("hub-status", "/"), ("hub-ticket", f"/t/{token}")):
            for size in ((390, 844), (1366, 768)):
                page = await _open(browser, f"{w.url}{path}", size)
                b, u = await check(page, f"{name}-{size[0]}x{size[1]}")
                bad += b
                unstyled += u
                await page.context.close()
    assert not bad, "Japanese broken inside a phrase:\n" + "\n".join(bad)
    assert not unstyled, "Japanese text without lang=ja + auto-phrase:\n" + "\n".join(unstyled)


# --- the checker itself -------------------------------------------------------------------------

def test_phrase_rule() -> None:
    """Breaks allowed at phrase ends and beside punctuation/ASCII; inside a word refused."""
    node = {"where": "p", "text": "証明書発行（住民票・戸籍）", "breaks": [5, 10, 3],
            "lang": "ja", "wordBreak": "auto-phrase"}
    got = offences("page", [node])
    assert got == ["page p: 「証明書 / 発行（住民票・戸籍）」"], got
    assert offences("page", [{**node, "text": "戸籍", "breaks": [1]}]) == ["page p: 「戸 / 籍」"]
    assert not offences("page", [{**node, "text": "窓口 1", "breaks": [3]}])
    # words: a model difference ("本日 / 終了") passes, a split verb or compound does not
    assert not offences("page", [{**node, "text": "受付は本日終了しました", "breaks": [5]}])
    assert not offences("page", [{**node, "text": "変わることがあります", "breaks": [3]}])
    for text, at in (("押してください", 1), ("開いている窓口", 6), ("待ち人数", 3),
                     ("証明書発行", 2)):
        assert offences("page", [{**node, "text": text, "breaks": [at]}]), text
