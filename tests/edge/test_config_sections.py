"""Config rules for the ward's layouts: sections, per-kiosk menus, monitors, operator devices
driving several counters, shared and multiple display heads, per-zone volume.

Each mistake must be reported at its key and line (the style of tests/test_config.py), and old
files without the new keys must stay valid.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cli import main
from edge.config import ConfigError, _profiles, load_site_config, parse_site_config
from edge.domain.model import SiteConfig

SITES = Path(__file__).resolve().parents[2] / "sites"
PROFILES = _profiles()

HEAD = """
[site]
id = "ward-test"
name = { ja = "テスト", en = "Test" }

[[sections]]
id = "a"
name = { ja = "甲係", en = "Section A" }
admin_pcs = 2

[[sections]]
id = "b"
name = { ja = "乙係", en = "Section B" }

[[services]]
code = "A"
name = { ja = "甲", en = "A" }
range = [1, 99]

[[services]]
code = "B"
name = { ja = "乙", en = "B" }
range = [101, 199]
"""


def counter(cid: str, section: str | None, services: str = '["A", "B"]') -> str:
    sec = "" if section is None else f'section = "{section}"\n'
    return (f'\n[[counters]]\nid = "{cid}"\nname = {{ ja = "{cid}番", en = "{cid}" }}\n'
            f"services = {services}\n{sec}")


def device(did: str, kind: str, section: str | None, **keys: str) -> str:
    profile = {"printer": "epson-tm-t88vi", "keypad": "generic-usb-keypad",
               "scanner": "generic-serial-scanner", "display": "led-ascii-stx"}[kind]
    url = keys.pop("url", f"sim://{did}")
    body = "".join(f"{k} = {v}\n" for k, v in keys.items())
    sec = "" if section is None else f'section = "{section}"\n'
    return (f'\n[[devices]]\nid = "{did}"\nkind = "{kind}"\nprofile = "{profile}"\n'
            f'url = "{url}"\n{body}{sec}')


GOOD = (HEAD + counter("1", "a") + counter("2", "a") + counter("3", "b") + """
[[menus]]
id = "main"
name = { ja = "甲", en = "A" }
services = ["A"]
kiosks = ["k1"]
default = true

[[menus]]
id = "corner"
name = { ja = "乙", en = "B" }
services = ["B"]
kiosks = ["k2"]
default = true

[[monitors]]
id = "guide-a"
kind = "guide"
section = "a"
services = ["A"]

[[monitors]]
id = "back-b"
kind = "backyard"
section = "b"
counters = ["3"]
""" + device("p1", "printer", "a", kiosk='"k1"')
    + device("p2", "printer", "b", kiosk='"k2"')
    + device("pad", "keypad", "a", counters='["2", "1"]')
    + device("pad-3", "keypad", "b", counter='"3"')
    + device("led", "display", "a", addresses='{ "1" = [1, 2], "2" = 2 }')
    + """
[voice]
volume = 0.8

[[voice.zones]]
id = "hall"
counters = ["1", "2"]

[[voice.zones]]
id = "corner"
counters = ["3"]
volume = 0.3
""")


def parse(text: str) -> SiteConfig:
    return parse_site_config(text, "t.toml", profiles=PROFILES)


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as exc:
        parse(text)
    return [(p.key, p.line, p.message) for p in exc.value.problems]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth - 1]


def test_the_new_keys_load_into_the_model() -> None:
    cfg = parse(GOOD)
    assert {s: (x.name.values["ja"], x.admin_pcs) for s, x in cfg.sections.items()} == {
        "a": ("甲係", 2), "b": ("乙係", 0)}
    assert {k: c.section for k, c in cfg.counters.items()} == {"1": "a", "2": "a", "3": "b"}
    assert {m.id: m.kiosks for m in cfg.menus.values()} == {"main": ("k1",), "corner": ("k2",)}
    assert [(m.id, m.kind, m.section, m.services, m.counters) for m in cfg.monitors] == [
        ("guide-a", "guide", "a", ("A",), ()), ("back-b", "backyard", "b", (), ("3",))]
    devs = {d.id: d for d in cfg.devices}
    assert devs["pad"].operated == ("2", "1")
    assert devs["pad"].counter == "2"
    assert devs["pad-3"].operated == ("3",)
    assert devs["pad-3"].counters == ()
    assert devs["led"].addresses == (("1", 1), ("1", 2), ("2", 2))
    assert {d.section for d in cfg.devices} == {"a", "b"}
    assert cfg.voice is not None
    assert [(z.id, z.volume) for z in cfg.voice.zones] == [("hall", None), ("corner", 0.3)]


@pytest.mark.parametrize("path", sorted(SITES.glob("*.toml")), ids=lambda p: p.name)
def test_files_without_the_new_keys_stay_valid(path: Path) -> None:
    cfg = load_site_config(path)
    assert cfg.sections == {}
    assert cfg.monitors == ()
    assert all(m.kiosks is None for m in cfg.menus.values())


# (text transformation, key reported, its line as (needle, nth), part of the message)
CASES = [
    ("missing section on a counter", lambda t: t.replace('services = ["A", "B"]\nsection = "b"',
                                                         'services = ["A", "B"]'),
     "counters[2]", ('[[counters]]', 3), "missing 'section'"),
    ("unknown section", lambda t: t.replace('section = "b"\ncounters = ["3"]',
                                            'section = "c"\ncounters = ["3"]'),
     "monitors[1].section", ('section = "c"', 1), "unknown section 'c'"),
    ("duplicate section id", lambda t: t.replace(
        "[[services]]", '[[sections]]\nid = "a"\nname = { ja = "丙係", en = "C" }\n\n'
        "[[services]]", 1), "sections[2].id", ('id = "a"', 2), "duplicate section id"),
    ("keypad operating another section's counter",
     lambda t: t.replace('counters = ["2", "1"]', 'counters = ["2", "3"]'),
     "devices[2].counters[1]", ('counters = ["2", "3"]', 1), "belongs to section 'b'"),
    ("counter and counters together",
     lambda t: t.replace('counters = ["2", "1"]', 'counters = ["2", "1"]\ncounter = "1"'),
     "devices[2].counters", ('counters = ["2", "1"]', 1), "not both"),
    ("unknown counter in counters",
     lambda t: t.replace('counters = ["2", "1"]', 'counters = ["2", "9"]'),
     "devices[2].counters[1]", ('counters = ["2", "9"]', 1), "unknown counter '9'"),
    ("repeated counter in counters",
     lambda t: t.replace('counters = ["2", "1"]', 'counters = ["1", "1"]'),
     "devices[2].counters[1]", ('counters = ["1", "1"]', 1), "duplicate counter"),
    ("counters on a printer", lambda t: t.replace('kiosk = "k2"', 'kiosk = "k2"\ncounters = ["3"]'),
     "devices[1].counters", ('counters = ["3"]', 2), "does not apply to a printer"),
    ("address twice for one counter",
     lambda t: t.replace('"1" = [1, 2]', '"1" = [2, 2]'),
     "devices[4].addresses.1", ('"1" = [2, 2]', 1), "listed twice"),
    ("empty address list", lambda t: t.replace('"1" = [1, 2]', '"1" = []'),
     "devices[4].addresses.1", ('"1" = []', 1), "a bus address 0-255 or a list"),
    ("address out of the profile's range",
     lambda t: t.replace('"1" = [1, 2]', '"1" = [1, 40]'),
     "devices[4].addresses.1", ('"1" = [1, 40]', 1), "outside 1-32"),
    ("menu for an unknown kiosk",
     lambda t: t.replace('kiosks = ["k2"]', 'kiosks = ["k2", "k9"]'),
     "menus[1].kiosks[1]", ('kiosks = ["k2", "k9"]', 1), "unknown kiosk 'k9'"),
    ("two defaults at one kiosk",
     lambda t: t.replace('kiosks = ["k2"]', 'kiosks = ["k1", "k2"]'),
     "menus[1].default", ('default = true', 2), "already the default menu at kiosk 'k1'"),
    ("unknown service on a monitor",
     lambda t: t.replace('section = "a"\nservices = ["A"]', 'section = "a"\nservices = ["Q"]'),
     "monitors[0].services[0]", ('services = ["Q"]', 1), "unknown service 'Q'"),
    ("duplicate monitor id", lambda t: t.replace('id = "back-b"', 'id = "guide-a"'),
     "monitors[1].id", ('id = "guide-a"', 2), "duplicate monitor id"),
    ("bad monitor kind", lambda t: t.replace('kind = "backyard"', 'kind = "hall"'),
     "monitors[1].kind", ('kind = "hall"', 1), "'guide' or 'backyard'"),
    ("zone volume above 1", lambda t: t.replace("volume = 0.3", "volume = 1.5"),
     "voice.zones[1].volume", ("volume = 1.5", 1), "less than or equal to 1"),
    ("negative admin PCs", lambda t: t.replace("admin_pcs = 2", "admin_pcs = -1"),
     "sections[0].admin_pcs", ("admin_pcs = -1", 1), "greater than or equal to 0"),
]


@pytest.mark.parametrize(("change", "key", "where", "message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_is_reported_at_its_key_and_line(
        change: object, key: str, where: tuple[str, int], message: str) -> None:
    assert callable(change)
    text = change(GOOD)
    assert text != GOOD, "the case did not change the file"
    found = problems(text)
    assert [k for k, _, _ in found] == [key], found
    (_, line, msg), = found
    assert line == line_of(text, *where)
    assert message in msg


def test_a_kiosk_without_any_menu_is_refused() -> None:
    text = GOOD.replace('kiosks = ["k2"]', 'kiosks = ["k1"]').replace(
        'kiosks = ["k1"]\ndefault = true', 'kiosks = ["k1"]', 1)
    assert problems(text) == [("menus", line_of(text, "[[menus]]"),
                               "kiosk 'k2' has no menu: list it in some menu's kiosks, or "
                               "leave kiosks out of one menu / この発券機のメニューがありません")]


def test_a_shared_head_is_fine_but_not_across_devices_on_one_line() -> None:
    shared = GOOD.replace('"2" = 2 }', '"2" = 2 }\n') + device(
        "led-b", "display", "b", addresses='{ "3" = 1 }', url="sim://other-line")
    parse(shared)  # same address on another line: another head
    clash = GOOD + device("led-b", "display", "b", addresses='{ "3" = 1 }', url="sim://led")
    assert [k for k, _, m in problems(clash)] == ["devices[5].addresses.3"]


def test_sections_are_all_or_nothing_in_a_file() -> None:
    bare = """
[site]
id = "plain"
name = { ja = "テスト", en = "Test" }

[[services]]
code = "A"
name = { ja = "甲", en = "A" }
range = [1, 99]
""" + counter("1", "a", '["A"]')
    assert problems(bare) == [("counters[0].section", line_of(bare, 'section = "a"'),
                               "unknown section 'a' (known: none, add [[sections]]) / "
                               "未定義の係・所です")]


def test_the_cli_fails_a_file_breaking_a_new_rule(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(GOOD.replace('counters = ["2", "1"]', 'counters = ["2", "3"]'),
                   encoding="utf-8")
    assert main(["config", "check", str(good)]) == 0
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "devices[2].counters[1]: counter '3' belongs to section 'b'" in err


# --- property: who must name a section, and which operator devices cross sections ----------

@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, list[int | None], list[tuple[int | None, list[int]]]]:
    n_sections = draw(st.integers(0, 3))
    sec = st.none() | st.integers(0, max(n_sections - 1, 0)) if n_sections else st.none()
    n_counters = draw(st.integers(1, 5))
    counters = [draw(sec) for _ in range(n_counters)]
    pads = draw(st.lists(st.tuples(sec, st.lists(st.integers(0, n_counters - 1), min_size=1,
                                                 max_size=3, unique=True)), max_size=4))
    return n_sections, counters, pads


def name(i: int) -> str:
    return f"s{i}"


@settings(max_examples=60, deadline=None)
@given(layouts())
def test_section_rules_match_a_simple_model(
        layout: tuple[int, list[int | None], list[tuple[int | None, list[int]]]]) -> None:
    n_sections, counters, pads = layout
    text = '[site]\nid = "prop"\nname = { ja = "テスト", en = "Test" }\n'
    text += "".join(f'\n[[sections]]\nid = "{name(i)}"\nname = {{ ja = "係{i}", en = "S{i}" }}\n'
                    for i in range(n_sections))
    text += '\n[[services]]\ncode = "A"\nname = { ja = "甲", en = "A" }\nrange = [1, 99]\n'
    text += "".join(counter(str(i + 1), None if s is None else name(s), '["A"]')
                    for i, s in enumerate(counters))
    for j, (s, refs) in enumerate(pads):
        text += device(f"pad-{j}", "keypad", None if s is None else name(s),
                       counters="[" + ", ".join(f'"{r + 1}"' for r in refs) + "]")
    expected: set[str] = set()
    if n_sections:
        expected |= {f"counters[{i}]" for i, s in enumerate(counters) if s is None}
        expected |= {f"devices[{j}]" for j, (s, _) in enumerate(pads) if s is None}
    for j, (s, refs) in enumerate(pads):
        for k, r in enumerate(refs):
            if s is not None and counters[r] is not None and counters[r] != s:
                expected.add(f"devices[{j}].counters[{k}]")
    if expected:
        assert {k for k, _, _ in problems(text)} == expected
    else:
        cfg = parse(text)
        assert len(cfg.sections) == n_sections
        assert [d.operated for d in cfg.devices] == [
            tuple(str(r + 1) for r in refs) for _, refs in pads]


# --- property: per-kiosk menus follow the one-default rule kiosk by kiosk ---------------------

@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.tuples(st.none() | st.sets(st.integers(0, k - 1), min_size=1), st.booleans()),
             min_size=1, max_size=4))))
def test_per_kiosk_menu_rule_matches_a_simple_model(
        case: tuple[int, list[tuple[set[int] | None, bool]]]) -> None:
    n_kiosks, menus = case
    text = HEAD.split("[[sections]]")[0] + (
        '\n[[services]]\ncode = "A"\nname = { ja = "甲", en = "A" }\nrange = [1, 99]\n')
    text += counter("1", None, '["A"]')
    for k in range(n_kiosks):
        text += device(f"p{k}", "printer", None, kiosk=f'"k{k}"')
    for i, (kiosks, default) in enumerate(menus):
        listed = "" if kiosks is None else \
            "kiosks = [" + ", ".join(f'"k{k}"' for k in sorted(kiosks)) + "]\n"
        text += (f'\n[[menus]]\nid = "m{i}"\nname = {{ ja = "メ{i}", en = "M{i}" }}\n'
                 f'services = ["A"]\n{listed}default = {str(default).lower()}\n')
    per_kiosk = any(k is not None for k, _ in menus)
    groups = [[i for i, (ks, _) in enumerate(menus) if ks is None or k in ks]
              for k in range(n_kiosks)] if per_kiosk else [list(range(len(menus)))]
    valid = all(g and (len(g) == 1 or sum(menus[i][1] for i in g) == 1) for g in groups)
    if valid:
        cfg = parse(text)
        assert [m.kiosks for m in cfg.menus.values()] == [
            None if ks is None else tuple(f"k{k}" for k in sorted(ks)) for ks, _ in menus]
    else:
        assert all(k.startswith("menus") for k, _, _ in problems(text))


def test_menus_for_a_kiosk_are_its_own_and_the_shared_ones() -> None:
    from datetime import datetime

    from edge.domain.menus import choose_menu

    shared = '[[menus]]\nid = "all"\nname = { ja = "全", en = "All" }\nservices = ["A", "B"]\n\n'
    cfg = parse(GOOD.replace("[[monitors]]", shared + "[[monitors]]", 1))
    assert list(cfg.menus_for("k1")) == ["main", "all"]
    assert list(cfg.menus_for("k2")) == ["corner", "all"]
    assert list(cfg.menus_for(None)) == ["main", "corner", "all"]
    now = datetime(2026, 11, 24, 10, 0)
    assert choose_menu(cfg.menus_for("k2"), None, now) == "corner"
    assert choose_menu(cfg.menus_for("k1"), None, now) == "main"
