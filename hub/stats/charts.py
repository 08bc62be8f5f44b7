"""Server-rendered SVG charts for the statistics pages (issue 15 item 5): no CDN, no script.

Each function returns one ``<figure class="chart">``: a ``<figcaption>`` (the title), the SVG
and a ``<table>`` with the same numbers.

Accessibility pattern (one for all charts): the table is the accessible version and always
sits in the page, under the chart, never folded into a ``<details>`` (a closed ``<details>``
hides its content from screen readers until opened). The SVG therefore carries
``aria-hidden="true"``: a screen reader meets the caption, then the table, and not a picture
that says nothing the table does not. The SVG still has ``role="img"``, ``aria-labelledby``
and a ``<title>``, so it is named wherever it is shown on its own (and the title is the
tooltip). Nothing depends on colour alone: heat-map cells carry their number, line series
differ by dash pattern and marker shape, bar series by fill pattern, and each has a legend.

Styling lives in SVG presentation attributes only (``fill=``, ``font-family=``): the hub's CSP
(hub/kit/headers.py) forbids inline ``style`` attributes and ``<style>`` elements. Every text
passed in is escaped (titles and labels come from staff data) and stripped of characters XML
cannot hold. Long labels are cut with … in the SVG; the table keeps the full text. Output is
deterministic: ids come from a hash of the chart's kind and data, so several charts on one page
do not collide and the same data always renders the same bytes (two charts of the same kind,
title and data on one page would share ids).

``lang`` (keyword, ``"ja"`` or ``"en"``, default ja) picks the few texts a chart writes itself:
the empty state, the table caption, the gap mark, the heat-map legend. The SVG has a viewBox
and its natural size in px; a page that wants it to shrink with the window says so in its
linked stylesheet (``.chart svg { max-width: 100%; height: auto; }``).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Sequence

from markupsafe import Markup, escape

FONT = "'Noto Sans CJK JP', sans-serif"
TEXT, SMALL = 14.0, 12.0  # font sizes (px at 1:1) of labels and of numbers
TEXTS: dict[str, dict[str, str]] = {
    "ja": {"empty": "表示するデータがありません。", "values": "{title}の数値（単位: {unit}）",
           "gap": "データなし", "scale": "色の濃さ（{unit}）"},
    "en": {"empty": "No data to show.", "values": "Values of {title} (unit: {unit})",
           "gap": "no data", "scale": "Shading ({unit})"},
}
# Heat-map classes, light to dark, with a text colour of enough contrast on each.
SHADES = (("#ffffff", "#000000"), ("#c6dbef", "#000000"), ("#6baed6", "#000000"),
          ("#2171b5", "#ffffff"), ("#08306b", "#ffffff"))
# Okabe-Ito colours (distinct also for colour-blind readers), with dash and marker per series.
COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#000000", "#e69f00")
DASHES = ("", "8 4", "2 3", "8 3 2 3", "12 4", "4 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "down")
_XML_BAD = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _t(text: str) -> Markup:
    """Escaped text with the characters XML 1.0 forbids removed."""
    return escape(_XML_BAD.sub("", text))


def _c(x: float) -> str:
    """A coordinate: two decimals at most, never NaN or infinity."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def fmt(value: float | None, lang: str = "ja") -> str:
    """A number as shown in the chart and in the table: integers without a decimal point,
    other values to one decimal; ``None`` and non-finite values as the gap text."""
    if value is None or not math.isfinite(value):
        return TEXTS[lang]["gap"]
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _width(text: str, size: float) -> float:
    """Approximate drawn width: full-width (CJK) characters one em, others 0.6 em."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else 0.6 * size
               for ch in text)


def _fit(text: str, room: float, size: float) -> str:
    """``text`` cut with … so it fits ``room`` pixels at ``size``."""
    text = _XML_BAD.sub("", text)
    if _width(text, size) <= room:
        return text
    while text and _width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def _label(x: float, y: float, text: str, room: float, size: float = TEXT,
           anchor: str = "start", **attrs: str) -> str:
    """A ``<text>`` cut to ``room``; when cut, the full text is its ``<title>`` (tooltip)."""
    shown = _fit(text, room, size)
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    tip = f"<title>{_t(text)}</title>" if shown != _XML_BAD.sub("", text) else ""
    return (f'<text x="{_c(x)}" y="{_c(y)}" font-size="{_c(size)}" text-anchor="{anchor}"'
            f"{extra}>{tip}{_t(shown)}</text>")


def _chart_id(kind: str, *data: object) -> str:
    return f"chart-{kind}-" + hashlib.sha256(repr(data).encode()).hexdigest()[:10]


def _figure(kind: str, cid: str, title: str, width: float, height: float, body: str,
            table: str) -> Markup:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{cid}-t" '
           f'aria-hidden="true" width="{_c(width)}" height="{_c(height)}" '
           f'viewBox="0 0 {_c(width)} {_c(height)}" font-family="{FONT}" fill="#000000">'
           f'<title id="{cid}-t">{_t(title)}</title>{body}</svg>')
    # Every text in svg and table went through _t (escaped); the rest is our own markup.
    return Markup(f'<figure class="chart chart-{kind}" id="{cid}">'  # noqa: S704
                  f"<figcaption>{_t(title)}</figcaption>{svg}{table}</figure>")


def _empty(kind: str, title: str, lang: str) -> Markup:
    return Markup(f'<figure class="chart chart-{kind} chart-empty"><figcaption>{_t(title)}'  # noqa: S704
                  f'</figcaption><p>{_t(TEXTS[lang]["empty"])}</p></figure>')


def _table(title: str, unit: str, cols: Sequence[str], rows: Sequence[str],
           cells: Sequence[Sequence[str]], lang: str) -> str:
    """The data table: a caption, one header cell per column (``scope="col"``) and one per
    row (``scope="row"``)."""
    caption = TEXTS[lang]["values"].format(title=title, unit=unit)
    head = "".join(f'<th scope="col">{_t(c)}</th>' for c in cols)
    body = "".join(f'<tr><th scope="row">{_t(r)}</th>'
                   + "".join(f"<td>{_t(v)}</td>" for v in line) + "</tr>"
                   for r, line in zip(rows, cells, strict=True))
    return (f'<table class="chart-table"><caption>{_t(caption)}</caption><thead><tr><td></td>'
            f"{head}</tr></thead><tbody>{body}</tbody></table>")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10ⁿ apart) covering ``lo``..``hi``; 0..1 when flat."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if not math.isfinite(hi - lo):
        return [lo, hi]
    if hi - lo < 1e-9:
        return [lo, lo + 1.0]
    raw = (hi - lo) / (count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    stop = math.ceil(hi / step) * step
    return [start + i * step for i in range(round((stop - start) / step) + 1)]


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


# ---- heat map -------------------------------------------------------------------------------

def _shade(value: int, top: int) -> int:
    """Class 0 for zero (and below), else 1-4 by quarter of the largest value."""
    return 0 if value <= 0 or top <= 0 else min(4, math.ceil(value * 4 / top))


def _legend_classes(top: int) -> list[tuple[int, str]]:
    """The classes that can occur for integers up to ``top``, with their ranges as text."""
    out = [(0, "0")]
    for k in range(1, 5):
        first, last = top * (k - 1) // 4 + 1, top * k // 4
        if first <= last:
            out.append((k, str(first) if first == last else f"{first}–{last}"))
    return out


def heatmap(title: str, rows: list[str], cols: list[str], values: list[list[int]], *,
            unit: str, lang: str = "ja") -> Markup:
    """Rows (weekdays) × columns (hours); each cell shaded by quarter of the largest value AND
    labelled with its number, with a legend of the shades' ranges."""
    if not rows or not cols:
        return _empty("heatmap", title, lang)
    if len(values) != len(rows) or any(len(r) != len(cols) for r in values):
        raise ValueError("heatmap: values must have one list per row, one value per column")
    cid = _chart_id("heatmap", title, rows, cols, values, unit)
    top = max(max(r) for r in values)
    size, ch = SMALL, 26.0
    cw = max(34.0, max(_width(str(v), size) for r in values for v in r) + 8)
    left = min(140.0, max(_width(r, TEXT) for r in rows)) + 12
    head = 22.0
    parts = [_label(left + j * cw + cw / 2, head - 6, c, cw - 2, size, "middle")
             for j, c in enumerate(cols)]
    for i, (name, line) in enumerate(zip(rows, values, strict=True)):
        y = head + i * ch
        parts.append(_label(left - 6, y + ch / 2 + 5, name, left - 10, TEXT, "end"))
        for j, v in enumerate(line):
            fill, ink = SHADES[_shade(v, top)]
            x = left + j * cw
            parts.append(f'<rect class="cell" x="{_c(x)}" y="{_c(y)}" width="{_c(cw)}" '
                         f'height="{_c(ch)}" fill="{fill}" stroke="#8c8c8c" stroke-width="0.5"/>')
            parts.append(_label(x + cw / 2, y + ch / 2 + 4.5, str(v), cw - 2, size, "middle",
                                fill=ink))
    ly = head + len(rows) * ch + 14
    scale = TEXTS[lang]["scale"].format(unit=unit)
    parts.append(_label(left, ly + 12, scale, 400, TEXT))
    lx = left + min(_width(scale, TEXT), 400) + 10
    for k, text in _legend_classes(top):
        fill, _ink = SHADES[k]
        parts.append(f'<rect x="{_c(lx)}" y="{_c(ly)}" width="16" height="16" fill="{fill}" '
                     f'stroke="#8c8c8c" stroke-width="0.5"/>')
        parts.append(_label(lx + 20, ly + 12, text, 80, SMALL))
        lx += 26 + _width(text, SMALL) + 10
    width = max(left + len(cols) * cw, lx) + 8
    table = _table(title, unit, cols, rows, [[str(v) for v in r] for r in values], lang)
    return _figure("heatmap", cid, title, width, ly + 26, "".join(parts), table)


# ---- lines ----------------------------------------------------------------------------------

def _marker(shape: str, x: float, y: float, colour: str) -> str:
    r = 4.0
    if shape == "circle":
        return f'<circle cx="{_c(x)}" cy="{_c(y)}" r="{_c(r)}" fill="{colour}"/>'
    if shape == "square":
        return (f'<rect x="{_c(x - r)}" y="{_c(y - r)}" width="{_c(2 * r)}" '
                f'height="{_c(2 * r)}" fill="{colour}"/>')
    if shape == "cross":
        return (f'<path d="M{_c(x - r)} {_c(y - r)}L{_c(x + r)} {_c(y + r)}M{_c(x - r)} '
                f'{_c(y + r)}L{_c(x + r)} {_c(y - r)}" stroke="{colour}" stroke-width="2"/>')
    points = {"triangle": ((0, -r - 1), (r + 1, r), (-r - 1, r)),
              "down": ((0, r + 1), (r + 1, -r), (-r - 1, -r)),
              "diamond": ((0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0))}[shape]
    return (f'<polygon points="{" ".join(f"{_c(x + dx)},{_c(y + dy)}" for dx, dy in points)}" '
            f'fill="{colour}"/>')


def _stroke(i: int) -> str:
    dash = DASHES[i % len(DASHES)]
    return (f'fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else ""))


def line(title: str, xs: list[str], series: list[tuple[str, list[float | None]]], *,
         unit: str, lang: str = "ja") -> Markup:
    """Series over ``xs`` (times of day, days), told apart by dash pattern and marker shape as
    well as colour; ``None`` leaves a gap in the line; y axis with round ticks and the unit."""
    if not xs or not series or not any(_finite(vs) for _n, vs in series):
        return _empty("line", title, lang)
    if any(len(vs) != len(xs) for _n, vs in series):
        raise ValueError("line: every series needs one value per x")
    cid = _chart_id("line", title, xs, series, unit)
    found = [v for _n, vs in series for v in _finite(vs)]
    ticks = _ticks(min(found), max(found))
    lo, hi = ticks[0], ticks[-1]
    left, top, plot_w, plot_h = 64.0, 28.0, 640.0, 220.0
    step = plot_w / (len(xs) - 1) if len(xs) > 1 else 0.0

    def px(i: int) -> float:
        return left + (i * step if len(xs) > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    parts = [_label(left - 8, top - 12, unit, left + 200, TEXT, "start")]
    for t in ticks:
        y = py(t)
        parts.append(f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(left + plot_w)}" '
                     f'y2="{_c(y)}" stroke="#d0d0d0" stroke-width="1"/>')
        parts.append(_label(left - 6, y + 4, fmt(t, lang), left - 8, SMALL, "end"))
    parts.append(f'<path d="M{_c(left)} {_c(top)}V{_c(top + plot_h)}H{_c(left + plot_w)}" '
                 f'fill="none" stroke="#000000" stroke-width="1"/>')
    every = max(1, math.ceil(len(xs) * 44 / plot_w))
    for i in range(0, len(xs), every):
        x, y = px(i), top + plot_h
        parts.append(f'<line x1="{_c(x)}" y1="{_c(y)}" x2="{_c(x)}" y2="{_c(y + 5)}" '
                     f'stroke="#000000" stroke-width="1"/>')
        parts.append(_label(x, y + 18, xs[i], max(step * every - 4, 40), SMALL, "middle"))
    for s, (_name, vs) in enumerate(series):
        colour, shape = COLOURS[s % len(COLOURS)], MARKERS[s % len(MARKERS)]
        path, pen = [], "M"
        for i, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                pen = "M"
                continue
            path.append(f"{pen}{_c(px(i))} {_c(py(v))}")
            pen = "L"
        parts.append(f'<path class="series" d="{"".join(path)}" {_stroke(s)}/>')
        parts.extend(_marker(shape, px(i), py(v), colour) for i, v in enumerate(vs)
                     if v is not None and math.isfinite(v))
    ly = top + plot_h + 40
    lx = left
    for s, (name, _vs) in enumerate(series):
        shown = _fit(name, 360, TEXT)
        item = 40 + _width(shown, TEXT) + 24
        if lx + item > left + plot_w and lx > left:
            lx, ly = left, ly + 22
        parts.append(f'<line x1="{_c(lx)}" y1="{_c(ly)}" x2="{_c(lx + 32)}" y2="{_c(ly)}" '
                     f"{_stroke(s)}/>")
        parts.append(_marker(MARKERS[s % len(MARKERS)], lx + 16, ly, COLOURS[s % len(COLOURS)]))
        parts.append(_label(lx + 40, ly + 4, name, 200, TEXT))
        lx += item
    table = _table(title, unit, [n for n, _vs in series], xs,
                   [[fmt(vs[i], lang) for _n, vs in series] for i in range(len(xs))], lang)
    return _figure("line", cid, title, left + plot_w + 24, ly + 16, "".join(parts), table)


# ---- bars -----------------------------------------------------------------------------------

def _patterns(cid: str, count: int) -> str:
    """One fill pattern per series (solid, hatched, dotted, cross-hatched, …) so series differ
    without colour; the bar's outline keeps the series colour."""
    shapes = ("", '<path d="M0 8L8 0M-2 2L2 -2M6 10L10 6" stroke="{c}" stroke-width="2"/>',
              '<circle cx="4" cy="4" r="1.8" fill="{c}"/>',
              '<path d="M0 0L8 8M8 0L0 8" stroke="{c}" stroke-width="1.5"/>',
              '<path d="M0 4H8" stroke="{c}" stroke-width="2"/>',
              '<path d="M4 0V8" stroke="{c}" stroke-width="2"/>')
    out = []
    for i in range(count):
        colour, shape = COLOURS[i % len(COLOURS)], shapes[i % len(shapes)]
        back = colour if not shape else "#ffffff"
        out.append(f'<pattern id="{cid}-p{i}" width="8" height="8" '
                   f'patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="{back}"/>'
                   f"{shape.format(c=colour)}</pattern>")
    return "<defs>" + "".join(out) + "</defs>"


def bars(title: str, labels: list[str], series: list[tuple[str, list[float]]], *,
         unit: str, lang: str = "ja") -> Markup:
    """Horizontal bars, one group per label and one bar per series (told apart by fill
    pattern), each value written at its bar's end; the axis starts at zero."""
    if not labels or not series:
        return _empty("bars", title, lang)
    if any(len(vs) != len(labels) for _n, vs in series):
        raise ValueError("bars: every series needs one value per label")
    cid = _chart_id("bars", title, labels, series, unit)
    found = [v for _n, vs in series for v in _finite(vs)] or [0.0]
    ticks = _ticks(min(found), max(found))
    lo, hi = ticks[0], ticks[-1]
    left = min(180.0, max(_width(lb, TEXT) for lb in labels)) + 14
    plot_w, bar_h, gap = 440.0, 18.0, 12.0
    group_h = bar_h * len(series) + gap
    legend_rows = 1 if len(series) < 2 else 1 + len(series) // 4
    top = 8.0 + 22 * legend_rows

    def px(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    parts = [_patterns(cid, len(series))]
    for s, (name, _vs) in enumerate(series):
        lx, ly = left + (s % 4) * 150, 8 + (s // 4) * 22
        parts.append(f'<rect x="{_c(lx)}" y="{_c(ly)}" width="16" height="16" '
                     f'fill="url(#{cid}-p{s})" stroke="{COLOURS[s % len(COLOURS)]}"/>')
        parts.append(_label(lx + 22, ly + 13, name, 124, TEXT))
    bottom = top + group_h * len(labels)
    for t in ticks:
        x = px(t)
        parts.append(f'<line x1="{_c(x)}" y1="{_c(top)}" x2="{_c(x)}" y2="{_c(bottom)}" '
                     f'stroke="#d0d0d0" stroke-width="1"/>')
        parts.append(_label(x, bottom + 16, fmt(t, lang), 60, SMALL, "middle"))
    parts.append(_label(left + plot_w + 18, bottom + 16, unit, 120, SMALL))
    for g, lb in enumerate(labels):
        y0 = top + g * group_h
        parts.append(_label(left - 8, y0 + (group_h - gap) / 2 + 4, lb, left - 12, TEXT, "end"))
        for s, (_name, vs) in enumerate(series):
            v, y = vs[g], y0 + s * bar_h
            if not math.isfinite(v):
                continue
            x0, x1 = sorted((px(0.0), px(v)))
            parts.append(f'<rect class="bar" x="{_c(x0)}" y="{_c(y + 1)}" '
                         f'width="{_c(x1 - x0)}" height="{_c(bar_h - 2)}" '
                         f'fill="url(#{cid}-p{s})" stroke="{COLOURS[s % len(COLOURS)]}"/>')
            parts.append(_label(x1 + 4, y + bar_h - 4, fmt(v, lang), 70, SMALL))
    parts.append(f'<line x1="{_c(px(0.0))}" y1="{_c(top)}" x2="{_c(px(0.0))}" '
                 f'y2="{_c(bottom)}" stroke="#000000" stroke-width="1"/>')
    table = _table(title, unit, [n for n, _vs in series], labels,
                   [[fmt(vs[g], lang) for _n, vs in series] for g in range(len(labels))], lang)
    width = max(left + plot_w + 80, left + 150 * min(4, len(series)))
    return _figure("bars", cid, title, width, bottom + 26, "".join(parts), table)
