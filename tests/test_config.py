"""Site TOML loading: samples load, and each mistake is reported with its key and exact line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.config import ConfigError, load_site_config, parse_site_config
from edge.toml_lines import key_lines, line_of

SITES = Path(__file__).resolve().parent.parent / "sites"

# A small valid site; the tests below replace single lines (numbered here) to break it.
BASE_LINES = [
    "version = 2",  # 1
    "",  # 2   (top level)
    "[site]",  # 3
    'id = "test-site"',  # 4
    'name = { ja = "テスト区民事務所", en = "Test Office" }',  # 5
    "",  # 6
    "[[services]]",  # 7
    'code = "A"',  # 8
    'name = { ja = "住民異動届", en = "Moving" }',  # 9
    "range = [1, 299]",  # 10
    'ticket = "two-part"',  # 11
    "handling_minutes = 6",  # 12
    "",  # 13  (in services[0])
    "[[services]]",  # 14
    'code = "B"',  # 15
    'name = { ja = "証明書", en = "Certificates" }',  # 16
    "range = [300, 599]",  # 17
    "",  # 18
    "[[services]]",  # 19
    'code = "T"',  # 20
    'name = { ja = "2次受付", en = "Second reception" }',  # 21
    "range = [8001, 8999]",  # 22
    "kiosk = false",  # 23
    "",  # 24
    "[[counters]]",  # 25
    'id = "1"',  # 26
    'name = { ja = "1番窓口", en = "Counter 1" }',  # 27
    'services = ["A", "B"]',  # 28
    "",  # 29  (in counters[0])
    "[[counters]]",  # 30
    'id = "2"',  # 31
    'name = { ja = "2番窓口", en = "Counter 2" }',  # 32
    "services = [",  # 33
    '    "T",',  # 34
    '    "A",',  # 35
    "]",  # 36
]


def variant(**lines: str) -> str:
    """BASE with line N replaced, written as ``variant(l12='...')``."""
    out = list(BASE_LINES)
    for name, text in lines.items():
        out[int(name[1:]) - 1] = text
    return "\n".join(out) + "\n"


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_site_config(text, "t.toml")
    return info.value


def where(exc: ConfigError) -> list[tuple[int | None, str]]:
    return [(p.line, p.key) for p in exc.problems]


# --- valid configs ------------------------------------------------------------------------------


def test_base_maps_to_domain_model() -> None:
    cfg = parse_site_config(variant())
    assert (cfg.site, cfg.timezone, cfg.version) == ("test-site", "Asia/Tokyo", 2)
    assert cfg.name.get("en") == "Test Office"
    assert list(cfg.services) == ["A", "B", "T"]
    a, b, t = cfg.services["A"], cfg.services["B"], cfg.services["T"]
    assert (a.first, a.last, a.ticket, a.kiosk, a.wrap, a.handling_s) == (
        1, 299, "two-part", True, True, 360.0,
    )  # fmt: skip
    assert (b.ticket, b.handling_s, b.daily_limit) == ("single", 300.0, None)
    assert t.kiosk is False
    assert list(cfg.counters) == ["1", "2"]
    assert cfg.counters["2"].services == ("T", "A")
    assert cfg.counters["1"].name.get("ko") == "Counter 1"  # falls back to English first


@pytest.mark.parametrize(
    ("file", "site", "services", "counters"),
    [
        ("nerima-main.toml", "nerima-main", 6, 15),
        ("hikarigaoka.toml", "hikarigaoka", 5, 6),
        ("oizumi.toml", "oizumi", 4, 4),
    ],
)
def test_samples_load(file: str, site: str, services: int, counters: int) -> None:
    cfg = load_site_config(SITES / file)
    assert (cfg.site, len(cfg.services), len(cfg.counters)) == (site, services, counters)
    assert cfg.version == 1
    for svc in cfg.services.values():
        assert set(svc.name.values) == {"ja", "en", "zh", "ko"}


def test_nerima_has_two_part_and_second_stage() -> None:
    cfg = load_site_config(SITES / "nerima-main.toml")
    assert cfg.services["A"].ticket == "two-part"
    assert [s.code for s in cfg.services.values() if not s.kiosk] == ["T"]
    assert [c.id for c in cfg.counters.values() if c.services[0] == "T"] == ["5", "6", "7"]
    assert cfg.service_for_number(8001) is cfg.services["T"]
    assert cfg.services["M"].daily_limit == 300


def test_dotted_keys_and_bom(tmp_path: Path) -> None:
    text = variant(l5='name.ja = "テスト"\nname.en = "Test"')
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_site_config(path).name.values == {"ja": "テスト", "en": "Test"}


# --- one mistake each ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "line", "key", "message"),
    [
        ({"l2": 'colour = "red"'}, 2, "colour", "unknown key 'colour'"),
        ({"l13": 'colour = "red"'}, 13, "services[0].colour", "unknown key 'colour'"),
        ({"l29": 'colour = "red"'}, 29, "counters[0].colour", "unknown key 'colour'"),
        (
            {"l12": 'handling_minutes = "6"'},
            12,
            "services[0].handling_minutes",
            "Input should be a valid number, got '6'",
        ),
        ({"l23": "kiosk = 0"}, 23, "services[2].kiosk", "Input should be a valid boolean, got 0"),
        ({"l1": "version = 1.5"}, 1, "version", "Input should be a valid integer, got 1.5"),
        (
            {"l17": "range = [250, 599]"},
            17,
            "services[1].range",
            "250-599 overlaps services[0] 'A' (1-299); a number must identify one ticket site-wide",
        ),
        (
            {"l35": '    "Z",'},
            35,
            "counters[1].services[1]",
            "unknown service 'Z' (known: A, B, T)",
        ),
        (
            {"l10": "range = [299, 1]"},
            10,
            "services[0].range",
            "need 1 <= first <= last <= 9999, got [299, 1]",
        ),
        (
            {"l22": "range = [8001, 10000]"},
            22,
            "services[2].range",
            "need 1 <= first <= last <= 9999, got [8001, 10000]",
        ),
        (
            {"l21": 'name = { en = "Second reception" }'},
            21,
            "services[2].name",
            "missing ja (need at least ja, en)",
        ),
        (
            {"l5": 'name = { ja = "テスト", en = "Test", JP = "x" }'},
            5,
            "site.name.JP",
            "String should match pattern '^[a-z]{2}(-[A-Z]{2})?$', got 'JP'",
        ),
        (
            {"l6": 'timezone = "Asia/Tokio"'},
            6,
            "site.timezone",
            "unknown time zone 'Asia/Tokio' (e.g. 'Asia/Tokyo')",
        ),
        (
            {"l4": 'id = "Test_Site"'},
            4,
            "site.id",
            "String should match pattern '^[a-z0-9][a-z0-9-]{1,40}$', got 'Test_Site'",
        ),
        (
            {"l31": 'id = "1"'},
            31,
            "counters[1].id",
            "duplicate counter id '1' (also counters[0])",
        ),
        (
            {"l28": 'services = ["A", "B", "A"]'},
            28,
            "counters[0].services[2]",
            "duplicate service 'A' (also counters[0].services[0])",
        ),
        (
            {"l34": '    "B",'},
            19,
            "services[2]",
            "no counter serves 'T', yet its tickets are reached only by transfer (kiosk = false)",
        ),
        (
            {"l28": "services = []", "l35": '    "A", "B",'},
            28,
            "counters[0].services",
            "List should have at least 1 item",
        ),
    ],
)
def test_single_problem(lines: dict[str, str], line: int, key: str, message: str) -> None:
    exc = error(variant(**lines))
    assert len(exc.problems) == 1, str(exc)
    assert (exc.source, exc.line, exc.key) == ("t.toml", line, key)
    assert exc.problems[0].message.startswith(message)
    assert str(exc).startswith(f"t.toml:{line}: {key}: {message}")


def test_unknown_service_inline_array_exact_text() -> None:
    exc = error(variant(l28='services = ["A", "B", "Q"]'))
    assert str(exc) == "t.toml:28: counters[0].services[2]: unknown service 'Q' (known: A, B, T)"


def test_toml_syntax_error_has_line() -> None:
    exc = error(variant(l16='name = { ja = "証明書", en = }'))
    assert (exc.line, exc.key) == (16, "")
    assert str(exc).startswith("t.toml:16: invalid TOML: ")
    assert "(at line" not in str(exc)


def test_duplicate_code_also_breaks_references() -> None:
    exc = error(variant(l15='code = "A"'))
    assert where(exc) == [(15, "services[1].code"), (28, "counters[0].services[1]")]
    assert exc.problems[0].message == "duplicate service code 'A' (also services[0])"
    assert exc.problems[1].message == "unknown service 'B' (known: A, T)"


def test_missing_key_points_at_its_table() -> None:
    exc = error(variant(l8=""))
    assert where(exc) == [
        (7, "services[0].code"),
        (28, "counters[0].services[0]"),
        (35, "counters[1].services[1]"),
    ]
    assert exc.problems[0].message == "missing required key"


def test_all_problems_reported_in_line_order() -> None:
    exc = error(
        variant(
            l2="colour = 1",
            l12="handling_minutes = 0",
            l17="range = [1, 10]",
            l35='    "X",',
        )
    )
    assert where(exc) == [
        (2, "colour"),
        (12, "services[0].handling_minutes"),
        (17, "services[1].range"),
        (35, "counters[1].services[1]"),
    ]
    lines = str(exc).splitlines()
    assert len(lines) == 4
    assert lines[1] == (
        "t.toml:12: services[0].handling_minutes: Input should be greater than 0, got 0"
    )
    assert (exc.line, exc.key) == (2, "colour")


def test_items_of_wrong_type() -> None:
    text = 'services = [1, { code = "A" }]\ncounters = [["x"]]\n' + "\n".join(BASE_LINES[2:5])
    exc = error(text)
    assert str(exc) == (
        "t.toml:1: services[0]: expected a table, got int\n"
        "t.toml:1: services[1].name: missing required key\n"
        "t.toml:1: services[1].range: missing required key\n"
        "t.toml:2: counters[0]: expected a table, got list"
    )


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_site_config("/nonexistent/site.toml")
    assert info.value.line is None
    assert str(info.value).startswith("/nonexistent/site.toml: cannot read: ")


def test_cli_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(variant(l13="colour = 1"), encoding="utf-8")
    assert main(["config", "check", str(SITES / "oizumi.toml")]) == 0
    assert main(["config", "check", str(bad)]) == 1
    assert f"{bad}:13: services[0].colour: unknown key 'colour'" in capsys.readouterr().err


# --- line scanner -------------------------------------------------------------------------------


def test_key_lines_tables_arrays_and_strings() -> None:
    text = (
        "a.b = 1\n"  # 1
        '[t."x.y"]\n'  # 2
        's = """\n'  # 3
        "not = a key\n"  # 4
        '"""\n'  # 5
        "arr = [ [1, 2], # c\n"  # 6
        "  { k = 'v' } ]\n"  # 7
        "[[p]]\n"  # 8
        "[[p.q]]\n"  # 9
        "[[p]]\n"  # 10
        "[p.r]\n"  # 11
        "z = 0\n"  # 12
    )
    lines = key_lines(text)
    assert lines[("a", "b")] == 1
    assert lines[("a",)] == 1  # a dotted key defines its parent table
    assert lines[("t",)] == 2
    assert lines[("t", "x.y", "s")] == 3
    assert ("t", "x.y", "not") not in lines
    assert lines[("t", "x.y", "arr", 0, 1)] == 6
    assert lines[("t", "x.y", "arr", 1, "k")] == 7
    assert lines[("p", 0, "q", 0)] == 9
    assert lines[("p", 1, "r", "z")] == 12
    assert line_of(lines, ("p", 1, "r", "missing", 3)) == 11
    assert line_of(lines, ("nowhere",)) is None


DEVICE_SITE = """
[site]
id = "dev-site"
name = { ja = "テスト", en = "Test" }

[[services]]
code = "A"
name = { ja = "住民異動", en = "Moving" }
range = [1, 99]

[[counters]]
id = "1"
name = { ja = "1番", en = "Counter 1" }
services = ["A"]
"""


@pytest.mark.parametrize(("extra", "key", "message"), [
    ('[[devices]]\nid = "led"\nkind = "display"\nprofile = "led-ascii-stx"\n'
     'url = "sim://led"\naddresses = { "1" = 250 }\n', "devices[0].addresses.1", "outside"),
    ('[[devices]]\nid = "p"\nkind = "printer"\nprofile = "epson-tm-t88vi"\n'
     'url = "evdev:///dev/input/event3"\nkiosk = "k1"\n', "devices[0].url", "cannot use evdev"),
    ('[[devices]]\nid = "s"\nkind = "scanner"\nprofile = "generic-serial-scanner"\n'
     'url = "serial:///dev/ttyUSB0?baudrate=fast"\ncounter = "1"\n', "devices[0].url",
     "baudrate"),
    ('[[devices]]\nid = "p"\nkind = "printer"\nprofile = "epson-tm-t88vi"\n'
     'url = "usb://04b8:0202?out=zz"\nkiosk = "k1"\n', "devices[0].url", "hex"),
    ('[[devices]]\nid = "p"\nkind = "printer"\nprofile = "led-ascii-stx"\n'
     'url = "sim://p"\nkiosk = "k1"\n', "devices[0].profile", "display profile"),
    ('[[devices]]\nid = "p"\nkind = "printer"\nprofile = "epson-tm-t99"\n'
     'url = "sim://p"\nkiosk = "k1"\n', "devices[0].profile", "unknown profile"),
    ("[voice]\n[[voice.zones]]\nid = \"hall\"\noutput = \"command:aplay '{file}\"\n",
     "voice.zones[0].output", "bad command"),
    ('[voice]\ntemplates = "no-such-templates.toml"\n', "voice.templates", "no such file"),
])
def test_device_settings_that_would_fail_at_run_time_fail_the_check(
        tmp_path: Path, extra: str, key: str, message: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(DEVICE_SITE + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_site_config(path)
    assert any(p.key == key and message in p.message for p in err.value.problems), \
        [(p.key, p.message) for p in err.value.problems]


# --- kiosk menus: exactly one applies at any moment (Q5) ----------------------------------------

MENU_DAY = """
[[menus]]
id = "day"
name = { ja = "通常", en = "Regular" }
services = ["A", "B"]
schedule = [{ days = ["mon", "tue", "wed", "thu", "fri"], from = "08:30", to = "17:15" }]
"""
MENU_SAT = """
[[menus]]
id = "sat"
name = { ja = "土曜", en = "Saturday" }
services = ["B"]
schedule = [
    { days = ["sat"], from = "09:00", to = "17:00" },
    { days = ["fri"], from = "17:15", to = "19:00" },
]
"""
MENU_BUSY = """
[[menus]]
id = "busy"
name = { ja = "繁忙期", en = "Busy season" }
services = ["A"]
"""


def menus_site(*blocks: str) -> str:
    return variant() + "".join(blocks)


def test_menus_default_is_explicit_or_the_only_menu() -> None:
    only = parse_site_config(menus_site(MENU_BUSY))
    assert only.menus["busy"].default  # a single menu is the default by itself
    cfg = parse_site_config(menus_site(MENU_DAY + "default = true\n", MENU_SAT, MENU_BUSY))
    assert [m.id for m in cfg.menus.values() if m.default] == ["day"]
    assert cfg.menus["sat"].schedule[0].days == (5,)


def test_menus_without_a_default_are_refused() -> None:
    text = menus_site(MENU_DAY, MENU_BUSY)
    exc = error(text)
    assert where(exc) == [(text.splitlines().index("[[menus]]") + 1, "menus[0]")]
    assert "none is the default: add default = true" in str(exc)


def test_two_default_menus_are_refused_at_the_second() -> None:
    text = menus_site(MENU_DAY + "default = true\n", MENU_BUSY + "default = true\n")
    exc = error(text)
    line = text.splitlines().index("default = true", text.splitlines().index('id = "busy"')) + 1
    assert where(exc) == [(line, "menus[1].default")]
    assert "menus[0] is already the default menu" in str(exc)


def test_overlapping_windows_of_two_menus_are_located() -> None:
    # Friday 17:00-19:00 of "sat" overlaps the weekday 08:30-17:15 of "day" (17:00-17:15)
    early = MENU_SAT.replace('from = "17:15", to = "19:00"', 'from = "17:00", to = "19:00"')
    text = menus_site(MENU_DAY + "default = true\n", early)
    exc = error(text)
    line = text.splitlines().index('    { days = ["fri"], from = "17:00", to = "19:00" },') + 1
    assert where(exc) == [(line, "menus[1].schedule[1]")]
    assert exc.problems[0].message == (
        "17:00-19:00 overlaps menus[0].schedule[0] 'day' (08:30-17:15) on fri: "
        "a moment can show only one menu")
    # windows that only touch (17:15 ends one, starts the other) are fine, as are windows of
    # one menu overlapping each other
    touching = menus_site(MENU_DAY + "default = true\n", MENU_SAT)
    assert parse_site_config(touching).menus["sat"].schedule[1].start == "17:15"
    same = MENU_DAY.replace("}]", '}, { days = ["mon"], from = "12:00", to = "20:00" }]')
    assert len(parse_site_config(menus_site(same)).menus["day"].schedule) == 2


def test_menu_problems_together_and_in_the_cli(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two defaults, an overlap and an unknown service: all reported at once, with lines."""
    busy = MENU_BUSY.replace('services = ["A"]', 'services = ["A", "Q"]') + "default = true\n"
    path = tmp_path / "menus.toml"
    early = MENU_SAT.replace('"17:15"', '"17:00"')
    path.write_text(menus_site(MENU_DAY + "default = true\n", early, busy), encoding="utf-8")
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    for key in ("menus[1].schedule[1]", "menus[2].default", "menus[2].services[1]"):
        assert f": {key}: " in err, err
