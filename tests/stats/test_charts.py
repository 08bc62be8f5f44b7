"""hub/stats/charts.py: well-formed SVG, the table holds the input, escaping, empty data."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from hub.stats import charts

SVG = "{http://www.w3.org/2000/svg}"
COORDS = {"x", "y", "width", "height", "cx", "cy", "r", "x1", "x2", "y1", "y2"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

# Staff text: anything but control characters (their removal has its own test).
label = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
labels = st.lists(label, min_size=1, max_size=10)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def parse(html: str) -> ET.Element:
    """The figure parsed as XML (the charts write XHTML-compatible markup)."""
    return ET.fromstring(html)


def svg_of(fig: ET.Element) -> ET.Element:
    found = fig.find(f"{SVG}svg")
    assert found is not None
    return found


def table_rows(fig: ET.Element) -> list[list[str]]:
    """Body of the data table: each row as [row header, cell, …]."""
    table = fig.find("table")
    assert table is not None
    return [["".join(c.itertext()) for c in tr] for tr in table.iter("tr")][1:]


def table_head(fig: ET.Element) -> list[str]:
    table = fig.find("table")
    assert table is not None
    return ["".join(th.itertext()) for th in table.iter("th") if th.get("scope") == "col"]


def coordinates(svg: ET.Element) -> list[float]:
    """Every number the SVG draws with (attributes, path data, polygon points)."""
    out: list[float] = []
    for el in svg.iter():
        for name, value in el.attrib.items():
            if name in COORDS or name in {"d", "points", "viewBox"}:
                assert not re.search("nan|inf", value, re.IGNORECASE), value
                out.extend(float(n) for n in NUMBER.findall(value))
    return out


def check_common(fig: ET.Element) -> ET.Element:
    """What every chart shares: figure, caption, named svg, CSP-safe, finite coordinates."""
    assert fig.tag == "figure"
    assert "chart" in fig.get("class", "").split()
    assert fig.find("figcaption") is not None
    svg = svg_of(fig)
    assert svg.get("role") == "img"
    assert svg.get("aria-hidden") == "true"
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.get("id") == svg.get("aria-labelledby")
    assert "Noto Sans CJK JP" in svg.get("font-family", "")
    for el in fig.iter():
        assert "style" not in el.attrib
        assert not el.tag.endswith("style")
    assert all(math.isfinite(c) for c in coordinates(svg))
    return svg


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_heatmap_one_labelled_cell_per_value(data: st.DataObject) -> None:
    rows = data.draw(labels)
    cols = data.draw(st.lists(label, min_size=1, max_size=30))
    values = data.draw(st.lists(st.lists(st.integers(0, 10**6), min_size=len(cols),
                                         max_size=len(cols)),
                                min_size=len(rows), max_size=len(rows)))
    fig = parse(charts.heatmap("来庁者数", rows, cols, values, unit="人"))
    svg = check_common(fig)
    cells = [el for el in svg.iter(f"{SVG}rect") if el.get("class") == "cell"]
    assert len(cells) == len(rows) * len(cols)
    assert _cell_numbers(svg) == [str(v) for r in values for v in r]
    assert table_rows(fig) == [[r, *map(str, line)] for r, line in zip(rows, values,
                                                                       strict=True)]
    assert table_head(fig) == cols


def _cell_numbers(svg: ET.Element) -> list[str]:
    """The text drawn right after each cell rect (its number)."""
    out, after_cell = [], False
    for el in svg:
        if el.tag == f"{SVG}rect":
            after_cell = el.get("class") == "cell"
        elif el.tag == f"{SVG}text" and after_cell:
            out.append("".join(el.itertext()))
            after_cell = False
    return out


def test_heatmap_shades_differ_and_all_zero_is_fine() -> None:
    fig = parse(charts.heatmap("t", ["月", "火"], ["9", "10"], [[0, 5], [10, 20]], unit="件"))
    svg = check_common(fig)
    fills = [el.get("fill") for el in svg.iter(f"{SVG}rect") if el.get("class") == "cell"]
    assert len(set(fills)) == 4
    zero = parse(charts.heatmap("t", ["月"], ["9", "10"], [[0, 0]], unit="件"))
    check_common(zero)
    assert table_rows(zero) == [["月", "0", "0"]]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_line_table_and_gaps(data: st.DataObject) -> None:
    xs = data.draw(st.lists(label, min_size=1, max_size=40))
    series = data.draw(st.lists(
        st.tuples(label, st.lists(st.none() | finite, min_size=len(xs), max_size=len(xs))),
        min_size=1, max_size=8))
    html = charts.line("待ち時間", xs, series, unit="分")
    fig = parse(html)
    if not any(v is not None for _n, vs in series for v in vs):
        assert fig.find(f"{SVG}svg") is None
        assert "chart-empty" in fig.get("class", "")
        return
    svg = check_common(fig)
    assert table_head(fig) == [n for n, _vs in series]
    assert table_rows(fig) == [[x, *(charts.fmt(vs[i]) for _n, vs in series)]
                               for i, x in enumerate(xs)]
    paths = [el.get("d", "") for el in svg.iter(f"{SVG}path") if el.get("class") == "series"]
    assert len(paths) == len(series)
    for d, (_n, vs) in zip(paths, series, strict=True):
        runs = sum(1 for i, v in enumerate(vs) if v is not None
                   and (i == 0 or vs[i - 1] is None))
        assert d.count("M") == runs  # a None breaks the line
        assert d.count("L") == sum(v is not None for v in vs) - runs


def test_line_series_differ_without_colour() -> None:
    series: list[tuple[str, list[float | None]]] = [(f"s{i}", [1.0, 2.0, float(i)])
                                                    for i in range(6)]
    svg = check_common(parse(charts.line("t", ["9", "10", "11"], series, unit="分")))
    paths = [el for el in svg.iter(f"{SVG}path") if el.get("class") == "series"]
    assert len({p.get("stroke-dasharray") for p in paths}) == 6
    assert len({el.tag for el in svg} & {f"{SVG}{t}" for t in ("circle", "polygon")}) == 2


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_bars_proportional(data: st.DataObject) -> None:
    names = data.draw(labels)
    series = data.draw(st.lists(
        st.tuples(label, st.lists(st.floats(0, 1e6), min_size=len(names),
                                  max_size=len(names))), min_size=1, max_size=6))
    fig = parse(charts.bars("窓口別", names, series, unit="件"))
    svg = check_common(fig)
    widths = [float(el.get("width", "")) for el in svg.iter(f"{SVG}rect")
              if el.get("class") == "bar"]
    values = [vs[g] for g in range(len(names)) for _n, vs in series]
    assert len(widths) == len(values)
    top = max(values)
    if top == 0:
        assert set(widths) == {0.0}
    else:
        scale = max(widths) / top
        for w, v in zip(widths, values, strict=True):
            assert abs(w - v * scale) <= 0.02
    assert table_rows(fig) == [[n, *(charts.fmt(vs[g]) for _m, vs in series)]
                               for g, n in enumerate(names)]


def test_bars_patterns_and_values_at_ends() -> None:
    fig = parse(charts.bars("t", ["1番窓口", "2番窓口"], [("今日", [12, 0]), ("先週", [3.5, 7])],
                            unit="件"))
    svg = check_common(fig)
    fills = {el.get("fill") for el in svg.iter(f"{SVG}rect") if el.get("class") == "bar"}
    assert len(fills) == 2
    texts = {"".join(t.itertext()) for t in svg.iter(f"{SVG}text")}
    assert {"12", "0", "3.5", "7"} <= texts


@pytest.mark.parametrize("make", [
    lambda s: charts.heatmap(s, [s], [s], [[1]], unit=s),
    lambda s: charts.line(s, [s, "b"], [(s, [1.0, None])], unit=s),
    lambda s: charts.bars(s, [s], [(s, [1.0])], unit=s),
])
def test_staff_text_is_escaped(make: Callable[[str], Markup]) -> None:
    nasty = '<script>alert("x")</script> & \'q\''
    html = str(make(nasty))
    assert "<script>" not in html
    assert "& " not in html
    fig = parse(html)
    check_common(fig)
    assert "".join(fig.find("figcaption").itertext()) == nasty  # type: ignore[union-attr]
    assert nasty in table_head(fig) + [r[0] for r in table_rows(fig)]


def test_control_characters_are_dropped() -> None:
    fig = parse(charts.bars("a\x00b", ["c\x1fd"], [("e\x0bf", [1.0])], unit="件"))
    check_common(fig)
    assert "".join(fig.find("figcaption").itertext()) == "ab"  # type: ignore[union-attr]
    assert table_rows(fig) == [["cd", "1"]]
    assert table_head(fig) == ["ef"]


def test_empty_data_says_so() -> None:
    for html in (charts.heatmap("t", [], [], [], unit="人"),
                 charts.heatmap("t", ["月"], [], [[]], unit="人"),
                 charts.line("t", [], [], unit="分"),
                 charts.line("t", ["9"], [("a", [None])], unit="分"),
                 charts.bars("t", [], [], unit="件"),
                 charts.bars("t", ["a"], [], unit="件", lang="en")):
        fig = parse(html)
        assert fig.find(f"{SVG}svg") is None
        text = "".join(fig.itertext())
        assert "表示するデータがありません" in text or "No data to show" in text


def test_all_zero_values() -> None:
    check_common(parse(charts.line("t", ["9", "10"], [("a", [0.0, 0.0])], unit="分")))
    check_common(parse(charts.bars("t", ["a", "b"], [("x", [0, 0])], unit="件")))


def test_long_japanese_label_cut_in_svg_full_in_table() -> None:
    long = "マイナンバーカード交付・電子証明書更新・暗証番号再設定"
    fig = parse(charts.bars("t", [long, "住民票"], [("件数", [30, 5])], unit="件"))
    svg = check_common(fig)
    drawn = [shown(t) for t in svg.iter(f"{SVG}text")]
    cut = [t for t in drawn if t.endswith("…")]
    assert len(cut) == 1
    assert long.startswith(cut[0][:-1])
    assert long not in drawn
    assert [r[0] for r in table_rows(fig)] == [long, "住民票"]
    fits = check_common(parse(charts.bars("t", ["マイナンバーカード交付"], [("件数", [3])],
                                          unit="件")))
    assert "マイナンバーカード交付" in [shown(t) for t in fits.iter(f"{SVG}text")]


def shown(text: ET.Element) -> str:
    """What a <text> draws (without its <title> tooltip)."""
    return (text.text or "") + "".join(c.tail or "" for c in text)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="heatmap"):
        charts.heatmap("t", ["月"], ["9"], [[1, 2]], unit="人")
    with pytest.raises(ValueError, match="line"):
        charts.line("t", ["9"], [("a", [1.0, 2.0])], unit="分")
    with pytest.raises(ValueError, match="bars"):
        charts.bars("t", ["a"], [("x", [])], unit="件")


def test_deterministic_and_ids_unique_on_a_page() -> None:
    def page() -> str:
        return "".join([
            charts.heatmap("到着", ["月"], ["9"], [[1]], unit="人"),
            charts.line("待ち", ["9", "10"], [("a", [1.0, 2.0])], unit="分"),
            charts.bars("窓口", ["1"], [("a", [1.0]), ("b", [2.0])], unit="件"),
            charts.bars("窓口（先週）", ["1"], [("a", [1.0]), ("b", [2.0])], unit="件"),
        ])
    assert page() == page()
    ids = re.findall(r'\bid="([^"]+)"', page())
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'url\(#([^)]+)\)|aria-labelledby="([^"]+)"', page()):
        assert "".join(ref) in ids


def test_non_finite_values_are_gaps() -> None:
    nan, inf = float("nan"), float("inf")
    fig = parse(charts.line("t", ["9", "10", "11"], [("a", [1.0, nan, inf])], unit="分"))
    svg = check_common(fig)
    assert table_rows(fig) == [["9", "1"], ["10", "データなし"], ["11", "データなし"]]
    (d,) = [el.get("d", "") for el in svg.iter(f"{SVG}path") if el.get("class") == "series"]
    assert re.fullmatch(r"M[\d.]+ [\d.]+", d)  # one point, no segment into the gaps
    fig = parse(charts.bars("t", ["a", "b"], [("x", [nan, 2.0])], unit="件", lang="en"))
    svg = check_common(fig)
    assert len([el for el in svg.iter(f"{SVG}rect") if el.get("class") == "bar"]) == 1
    assert table_rows(fig) == [["a", "no data"], ["b", "2"]]
