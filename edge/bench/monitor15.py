"""Guide-monitor legibility in a 15-counter hall, measured in Chromium (part of ``bench screens``).

A real ``edge run`` with a generated site (:func:`hall_toml`: 15 counters, five kiosk services
with three- and four-digit numbers, a second-stage queue, a notice so the ticker takes its row)
gets all 15 counters calling, two of them recalled, one number absent and one visitor in the
second wait. The monitor page then opens in headless Chromium at 1920x1080 (ja and en) and
1080x1920 (portrait, ja) and, after the fonts are loaded, measures every big "number -> counter"
row in the page.

**Glyph height** (what the figures mean): the ink height of the text as rendered, i.e. for the
element's computed font (style, weight, size, family) ``CanvasRenderingContext2D.measureText``'s
``actualBoundingBoxAscent + actualBoundingBoxDescent`` of its text: the distance from the top of
the tallest glyph to the bottom of the lowest one. For "123" that is the digits' height (about
0.73 em in Noto Sans CJK), for 「3番窓口」 the kanji's (about 0.9 em). It is smaller than the
element's box (``Range.getBoundingClientRect`` gives the line box, about 1.45 em), which is also
read to place the ink: its top is the box's top + the font's ascent - the ink's ascent. A row
counts as *clipped* when the row is not wholly inside the viewport, the ink of its number,
counter name or label is not wholly inside the row's border, or a text is wider than its element
(``scrollWidth > clientWidth``: cut by ``overflow: hidden``).

Figures, in % of the viewport height (landscape) or of its width (portrait: the same panel
turned, so the same physical size as landscape): ``monitor15_number_height_pct_min`` the smallest
number among the rows, ``monitor15_counter_height_pct_min`` the smallest counter name,
``monitor15_sub_height_pct_min`` the smallest second-language label next to it,
``monitor15_rows`` how many rows were shown (the other calls are in the band's "earlier calls"),
``monitor15_clipped`` rows with clipped text. ``_en`` and ``_portrait`` variants likewise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from edge.bench.load import BenchError, EdgeProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser

COUNTERS = 15
TARGETS: dict[str, float] = {
    "monitor15_number_height_pct_min": 8.0, "monitor15_counter_height_pct_min": 6.0,
    "monitor15_clipped": 0.0,
}
AT_LEAST = ("monitor15_number_height_pct_min", "monitor15_counter_height_pct_min")

# (code, ja, en, zh, ko, first number, kiosk)
_SERVICES = (
    ("A", "住民異動届", "Moving in / out", "迁入・迁出申报", "전입・전출 신고", 1, True),
    ("B", "証明書発行", "Certificates", "证明书发行", "증명서 발급", 1001, True),
    ("C", "国民健康保険", "National Health Insurance", "国民健康保险", "국민건강보험", 2001, True),
    ("D", "子育て・福祉", "Childcare and welfare", "育儿・福利", "육아・복지", 3001, True),
    ("E", "税の証明", "Tax certificates", "税务证明", "세금 증명", 4001, True),
    ("T", "住民異動 2次受付", "Moving: second reception", "住民迁移 第二次受理",
     "전입・전출 2차 접수", 8001, False),
)


def _serves(i: int) -> list[str]:
    """Counter ``i`` (1-based): the first five serve A, then B, C, D and E in turn; 15 serves T."""
    if i == COUNTERS:
        return ["T"]
    kiosk = [s[0] for s in _SERVICES if s[6]]
    own = kiosk[(i - 1) // 3] if i > 3 else "A"
    return [own, *[c for c in kiosk if c != own][:1]]


def hall_toml() -> str:
    """A 15-counter site for the benchmark (no PINs, no devices, no voice)."""
    lines = ['[site]', 'id = "bench-hall15"', 'access = "open"  # a bench, no sign-in', '',
             '[site.name]', 'ja = "練馬区役所 本庁舎 区民事務所"',
             'en = "Nerima City Office, Residents Hall"', 'zh = "练马区政府 区民事务所"',
             'ko = "네리마구청 구민사무소"', '']
    for code, ja, en, zh, ko, first, kiosk in _SERVICES:
        lines += ['[[services]]', f'code = "{code}"',
                  f'name = {{ ja = "{ja}", en = "{en}", zh = "{zh}", ko = "{ko}" }}',
                  f'range = [{first}, {first + 998}]', f'kiosk = {str(kiosk).lower()}', '']
    for i in range(1, COUNTERS + 1):
        services = ", ".join(f'"{c}"' for c in _serves(i))
        lines += ['[[counters]]', f'id = "{i}"',
                  f'name = {{ ja = "{i}番窓口", en = "Counter {i}", zh = "{i}号窗口", '
                  f'ko = "{i}번 창구" }}', f'services = [{services}]', '']
    lines += ['[[notices]]', '[notices.text]',
              'ja = "マイナンバーカードの交付は予約制です。"',
              'en = "My Number card pick-up is by reservation."',
              'zh = "个人编号卡的领取需要预约。"', 'ko = "마이넘버 카드 교부는 예약제입니다."', '']
    return "\n".join(lines)


# Measured in the page: every big row's number and counter name (see the module docstring).
_MEASURE_JS = """() => {
  const canvas = document.createElement('canvas').getContext('2d');
  // the ink box of an element's (one-line) text, in page coordinates
  const ink = (el) => {
    const cs = getComputedStyle(el);
    canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const m = canvas.measureText(el.textContent.trim());
    const range = document.createRange();
    range.selectNodeContents(el);
    const box = range.getBoundingClientRect();  // the text's content area (font ascent+descent)
    const baseline = box.top + m.fontBoundingBoxAscent;
    const up = m.actualBoundingBoxAscent, down = m.actualBoundingBoxDescent;
    return {top: baseline - up, bottom: baseline + down, left: box.left, right: box.right,
            height: up + down, box: box.height};
  };
  const inside = (r, o) => r.top >= o.top - 1 && r.bottom <= o.bottom + 1
                           && r.left >= o.left - 1 && r.right <= o.right + 1;
  const vw = innerWidth, vh = innerHeight;
  const view = {top: 0, left: 0, bottom: vh, right: vw};
  return [...document.querySelectorAll('[data-testid="calling"] .row')].map((row) => {
    const r = row.getBoundingClientRect();
    const cs = getComputedStyle(row);
    const inner = {top: r.top + parseFloat(cs.borderTopWidth),
                   bottom: r.bottom - parseFloat(cs.borderBottomWidth),
                   left: r.left + parseFloat(cs.borderLeftWidth),
                   right: r.right - parseFloat(cs.borderRightWidth)};
    const parts = {};
    let clipped = !inside(r, view);
    for (const [k, sel] of [['number', '.num'], ['counter', '.cname'], ['sub', '.csub']]) {
      const el = row.querySelector(sel);
      if (!el) { parts[k] = null; continue; }
      const got = ink(el);
      if (!inside(got, inner) || el.scrollWidth > el.clientWidth + 1) clipped = true;
      parts[k] = {ink: got.height, box: got.box, text: el.textContent.trim()};
    }
    return {...parts, clipped, vw, vh};
  });
}"""


async def _hall_calling(http: aiohttp.ClientSession, base: str) -> None:
    """All 15 counters calling; two recalled; one absent number; one in the second wait."""

    async def post(path: str, body: Any = None) -> dict[str, Any]:
        async with http.post(base + path, json=body) as resp:
            data: dict[str, Any] = await resp.json()
            if resp.status >= 300:
                raise BenchError(f"POST {path} -> {resp.status}: {data}")
            return data

    for i in range(1, COUNTERS + 1):
        await post(f"/api/counters/{i}/open")
    for code in ("A", "A", "A", "A", "A", "B", "B", "B", "B", "C", "C", "C", "D", "D", "D",
                 "E", "E", "E", "A", "B", "C"):
        await post("/api/tickets", {"service": code, "lang": "ja"})
    await post("/api/counters/1/call-next")
    await post("/api/counters/1/absent")
    await post("/api/counters/2/call-next")
    await post("/api/counters/2/transfer", {"service": "T"})
    for i in range(1, COUNTERS + 1):
        await post(f"/api/counters/{i}/call-next")
    for i in (4, 9):
        await post(f"/api/counters/{i}/recall")
    async with http.get(base + "/api/state") as resp:
        state = await resp.json()
    if len(state["calling"]) != COUNTERS:
        raise BenchError(f"{len(state['calling'])} counters calling, not {COUNTERS}")


async def _shape(browser: Browser, base: str, size: tuple[int, int], query: str,
                 shot: Path | None) -> dict[str, Any]:
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]},
                                        reduced_motion="reduce")
    try:
        page = await context.new_page()
        await page.goto(f"{base}/ui/monitor.html?{query}")
        await page.wait_for_selector('[data-testid="calling"] .row .cname', state="visible")
        await page.evaluate("() => document.fonts.ready.then(() => true)")
        await page.wait_for_timeout(300)  # the fit pass after the first render
        rows: list[dict[str, Any]] = await page.evaluate(_MEASURE_JS)
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(shot))
    finally:
        await context.close()
    if not rows:
        raise BenchError("the monitor showed no rows")
    # percent of the panel's short side: the height in landscape, the width in portrait
    side = min(size)

    def low(part: str) -> float:
        values = [r[part]["ink"] for r in rows if r[part] is not None]
        return round(100 * min(values) / side, 2) if values else 0.0

    return {"number_height_pct_min": low("number"), "counter_height_pct_min": low("counter"),
            "sub_height_pct_min": low("sub"), "rows": len(rows),
            "clipped": sum(1 for r in rows if r["clipped"]),
            "number_box_pct_min": round(100 * min(r["number"]["box"] for r in rows) / side, 2)}


async def measure_monitor15(browser: Browser, workdir: Path,
                            shots: Path | None = None) -> dict[str, Any]:
    """The ``monitor15_*`` figures; ``shots``: a folder for the screenshots, if wanted."""
    config = workdir / "hall15.toml"
    config.write_text(hall_toml(), encoding="utf-8")
    server = EdgeProcess(config, workdir / "hall15.db", workdir / "hall15.log")
    out: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_ready(http)
            await _hall_calling(http, server.base)
        for suffix, size, query in (("", (1920, 1080), "lang=ja"),
                                    ("_en", (1920, 1080), "lang=en"),
                                    ("_portrait", (1080, 1920), "lang=ja&layout=portrait")):
            shot = None if shots is None else shots / f"monitor15{suffix or '_ja'}.png"
            got = await _shape(browser, server.base, size, query, shot)
            out.update({f"monitor15{suffix}_{k}": v for k, v in got.items()})
        out["monitor15_calling"] = COUNTERS
    finally:
        server.stop()
    return out
