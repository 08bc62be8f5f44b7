"""firmware-profiles: the shipped set, the loader's rules and messages, collation, detection.

Broken profile folders are written into tmp_path; every check on an error names the file and
the key, because that is what a ward IT person fixing a file needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.devices.profile_store import (
    SCHEMA_VERSION,
    ProfileError,
    collate,
    collate_resolved,
    dumps_collated,
    load_collated,
    load_profiles,
    profiles_from_collated,
    resolve_directory,
)
from edge.devices.profiles import (
    DisplayProfile,
    KeypadProfile,
    PrinterProfile,
    ScannerProfile,
)
from edge.devices.usb_detect import by_usb_id, detect_usb

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "firmware-profiles"
README = (SHIPPED / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return load_profiles(SHIPPED)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def problems(directory: Path) -> list[str]:
    with pytest.raises(ProfileError) as info:
        load_profiles(directory)
    assert str(directory) in str(info.value)
    return info.value.problems


PRINTER = textwrap.dedent("""\
    kind: printer
    vendor: Test
    name: Test printer
    notes: for tests
    escpos_profile: TM-T88V
    japanese: kanji
    paper_width_dots: 512
    """)


# --- the shipped profiles ----------------------------------------------------------------------

def test_default_directory_is_the_shipped_one(shipped: dict[str, Any]) -> None:
    assert load_profiles() == shipped
    assert list(shipped) == sorted(shipped)
    assert not any(pid.startswith("_") for pid in shipped)  # family bases are not models


@pytest.mark.parametrize(("pid", "command_set", "escpos_profile", "japanese", "dots"), [
    ("epson-tm-t88v", "escpos", "TM-T88V", "kanji", 512),
    ("epson-tm-t88vi", "escpos", "TM-T88V", "kanji", 512),
    ("epson-tm-t70ii", "escpos", "TM-T88V", "kanji", 512),
    ("epson-tm-t20iii", "escpos", "TM-T20II", "kanji", 576),
    ("star-tsp143iiiu", "star-graphic", None, "raster", 576),
    ("star-tsp143iiilan", "star-graphic", None, "raster", 576),
    ("star-mc-print3", "escpos", "default", "raster", 576),
    ("generic-58mm", "escpos", "POS-5890", "raster", 384),
])
def test_shipped_printers(shipped: dict[str, Any], pid: str, command_set: str,
                          escpos_profile: str | None, japanese: str, dots: int) -> None:
    p = shipped[pid]
    assert isinstance(p, PrinterProfile)
    assert (p.command_set, p.escpos_profile, p.japanese, p.paper_width_dots) == (
        command_set, escpos_profile, japanese, dots)
    assert p.vendor
    assert p.name
    assert p.notes


def test_shipped_usb_ids(shipped: dict[str, Any]) -> None:
    index = by_usb_id(shipped)
    assert index[("04b8", "0202")] == ["epson-tm-t70ii", "epson-tm-t88v", "epson-tm-t88vi"]
    assert index[("0519", "0003")] == ["star-tsp143iiiu"]
    assert index[("04b8", "0e28")] == ["epson-tm-t20iii"]
    for pid in ("generic-hid-scanner", "generic-usb-keypad", "star-tsp143iiilan",
                "star-mc-print3"):
        assert shipped[pid].usb == [], pid
    assert all(ids == sorted(ids) for ids in index.values())


def test_shipped_inheritance(shipped: dict[str, Any]) -> None:
    t88v, t88vi = shipped["epson-tm-t88v"], shipped["epson-tm-t88vi"]
    assert t88vi.usb == t88v.usb
    assert t88vi.dpi == t88v.dpi == 180
    assert t88vi.name != t88v.name
    assert t88vi.notes != t88v.notes
    lan = shipped["star-tsp143iiilan"]
    assert lan.default_transport == "tcp"
    assert lan.usb == []
    assert shipped["star-tsp143iiiu"].default_transport == "usb"


def test_shipped_scanners(shipped: dict[str, Any]) -> None:
    hid, ser = shipped["generic-hid-scanner"], shipped["generic-serial-scanner"]
    assert isinstance(hid, ScannerProfile)
    assert hid.interface == "hid"
    assert hid.serial is None
    assert isinstance(ser, ScannerProfile)
    assert ser.interface == "serial"
    assert ser.serial
    assert (ser.serial.baudrate, ser.serial.bytesize, ser.serial.parity, ser.serial.stopbits,
            ser.suffix) == (9600, 8, "N", 1, "\r")


def test_shipped_keypad_matches_the_readme_table(shipped: dict[str, Any]) -> None:
    pad = shipped["generic-usb-keypad"]
    assert isinstance(pad, KeypadProfile)
    assert {k: pad.keymap[k] for k in [f"KEY_KP{d}" for d in range(10)]} == dict.fromkeys(
        [f"KEY_KP{d}" for d in range(10)], "digit")
    expected = {"KEY_KPENTER": "call_number", "KEY_KPPLUS": "recall", "KEY_KPMINUS": "absent",
                "KEY_KPASTERISK": "hold", "KEY_KPSLASH": "finish", "KEY_KPDOT": "call_held",
                "KEY_BACKSPACE": "backspace", "KEY_NUMLOCK": "clear", "KEY_ESC": "cancel"}
    assert {k: v for k, v in pad.keymap.items() if v != "digit"} == expected
    table = [line for line in README.splitlines() if line.startswith("| `KEY_")]
    for key, action in expected.items():
        row = next((line for line in table if line.startswith(f"| `{key}` |")), None)
        assert row is not None, f"README key map has no row for {key}"
        assert f"| `{action}` |" in row, row
    assert any(line.startswith("| `KEY_KP0` … `KEY_KP9`") and "`digit`" in line for line in table)


def _ascii_frame(body: bytes) -> bytes:
    ck = 0
    for b in body + b"\x03":
        ck ^= b
    return b"\x02" + body + b"\x03" + f"{ck:02X}".encode()


def _binary_frame(addr: int, func: int, payload: bytes) -> bytes:
    head = bytes([addr, func, len(payload)]) + payload
    return b"\xaa" + head + bytes([sum(head) & 0xFF])


def test_shipped_displays_and_their_documented_frames(shipped: dict[str, Any]) -> None:
    stx, rs485 = shipped["led-ascii-stx"], shipped["led-rs485-binary"]
    assert isinstance(stx, DisplayProfile)
    assert isinstance(rs485, DisplayProfile)
    assert (stx.protocol, rs485.protocol) == ("ascii-stx", "binary-rs485")
    assert stx.commands == {"show": "{addr:02d}D{number:04d}", "blink": "{addr:02d}B{number:04d}",
                            "clear": "{addr:02d}C", "ping": "{addr:02d}P"}
    assert rs485.commands == {}
    # the worked examples in README and notes, recomputed here from the framing rules
    show = _ascii_frame(stx.commands["show"].format(addr=1, number=123).encode())
    assert show == bytes.fromhex("02 30 31 44 30 31 32 33 03 34 36")
    blink = _ascii_frame(stx.commands["blink"].format(addr=12, number=7).encode())
    clear = _ascii_frame(stx.commands["clear"].format(addr=5).encode())
    ping = _ascii_frame(stx.commands["ping"].format(addr=1).encode())
    binary = {
        "AA 05 01 02 01 23 2C": _binary_frame(5, 1, bytes.fromhex("0123")),
        "AA 05 02 02 01 23 2D": _binary_frame(5, 2, bytes.fromhex("0123")),
        "AA 05 03 00 08": _binary_frame(5, 3, b""),
        "AA 05 04 00 09": _binary_frame(5, 4, b""),
        "AA 20 01 02 99 99 55": _binary_frame(32, 1, bytes.fromhex("9999")),
    }
    for frame in (show, blink, clear, ping):
        assert frame.hex(" ") in README, frame.hex(" ")
    assert show.hex(" ") in stx.notes
    for text, frame in binary.items():
        assert frame.hex(" ").upper() == text
        assert text in README
    assert "AA 05 01 02 01 23 2C" in rs485.notes


# --- inheritance ---------------------------------------------------------------------------------

def test_inheritance_overrides_merges_and_replaces(tmp_path: Path) -> None:
    write(tmp_path, {
        "_base.yaml": """\
            abstract: true
            kind: display
            vendor: Base vendor
            notes: the family
            protocol: ascii-stx
            serial: {baudrate: 9600, parity: "E"}
            commands: {show: "{addr:02d}D{number:04d}", clear: "{addr:02d}C"}
            usb: [{vendor: "1234", product: "0001"}]
            """,
        "mid.yaml": """\
            inherits: _base
            name: Mid
            notes: mid model
            serial: {baudrate: 19200}
            commands: {clear: "{addr:02d}X"}
            """,
        "leaf.yaml": """\
            inherits: mid
            name: Leaf
            notes: leaf model
            vendor: Leaf vendor
            usb: []
            """,
    })
    got = load_profiles(tmp_path)
    assert sorted(got) == ["leaf", "mid"]  # the abstract base is not a profile
    mid, leaf = got["mid"], got["leaf"]
    assert isinstance(mid, DisplayProfile)
    assert isinstance(leaf, DisplayProfile)
    assert mid.vendor == "Base vendor"
    assert leaf.vendor == "Leaf vendor"
    assert (mid.serial.baudrate, mid.serial.parity) == (19200, "E")  # mappings merge
    assert mid.commands == {"show": "{addr:02d}D{number:04d}", "clear": "{addr:02d}X"}
    assert mid.usb[0].product == "0001"
    assert leaf.usb == []
    assert (leaf.name, leaf.notes, leaf.id) == ("Leaf", "leaf model", "leaf")


def test_name_and_notes_are_not_inherited(tmp_path: Path) -> None:
    write(tmp_path, {"parent.yaml": PRINTER, "child.yaml": "inherits: parent\n"})
    found = problems(tmp_path)
    assert any(p.startswith("child.yaml: name: required key is missing") for p in found)
    assert any(p.startswith("child.yaml: notes: required key is missing") for p in found)


def test_inheritance_cycle(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.yaml": "inherits: b\nname: A\nnotes: a\n",
        "b.yaml": "inherits: a\nname: B\nnotes: b\n",
        "self.yaml": "inherits: self\nname: S\nnotes: s\n",
    })
    assert problems(tmp_path) == [
        "a.yaml: inherits: inheritance cycle a -> b -> a",
        "b.yaml: inherits: inheritance cycle b -> a -> b",
        "self.yaml: inherits: inheritance cycle self -> self",
    ]


def test_unknown_parent(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": PRINTER, "c.yaml": "inherits: pp\nname: C\nnotes: c\n"})
    [problem] = problems(tmp_path)
    assert problem.startswith("c.yaml: inherits: unknown profile 'pp': no pp.yaml in")
    assert "did you mean 'p'?" in problem


def test_a_broken_parent_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": "kind: [printer\n", "c.yaml": "inherits: p\nname: C\nnotes: c\n"})
    [problem] = problems(tmp_path)
    assert problem.startswith("p.yaml: line ")


def test_a_bad_inherited_value_names_the_file_that_set_it(tmp_path: Path) -> None:
    write(tmp_path, {
        "_fam.yaml": "abstract: true\nnotes: fam\ndpi: 300\n",
        "m.yaml": PRINTER + "inherits: _fam\n",
    })
    [problem] = problems(tmp_path)
    assert problem.startswith("m.yaml: dpi: Input should be 180 or 203, got 300")
    assert problem.endswith("(the value comes from _fam.yaml)")


@pytest.mark.parametrize(("files", "expected"), [
    ({"_x.yaml": PRINTER}, "_x.yaml: abstract: family bases are abstract: true"),
    ({"x.yaml": PRINTER + "abstract: true\n"}, "x.yaml: abstract: family bases are abstract"),
    ({"_x.yaml": "abstract: true\n", "x.yaml": PRINTER}, "_x.yaml: notes: required key"),
    ({"x.yaml": PRINTER + "abstract: yes please\n"}, "x.yaml: abstract: must be true or false"),
    ({"x.yaml": PRINTER + "inherits: [a, b]\n"}, "x.yaml: inherits: must be one profile id"),
    ({"x.yaml": PRINTER + "id: other\n"}, "x.yaml: id: remove this key; the id is the file name"),
    ({"X-Model.yaml": PRINTER}, "X-Model.yaml: the file name is the profile id"),
    ({"x.yml": PRINTER}, "x.yml: rename it to x.yaml"),
    ({"x.yaml": ""}, "x.yaml: the file is empty"),
    ({"x.yaml": "- a\n- b\n"}, "x.yaml: must be a mapping of `key: value` lines, got a list"),
])
def test_file_level_rules(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    found = problems(write(tmp_path, files))
    assert any(p.startswith(expected) for p in found), found


def test_file_problems_do_not_hide_value_problems(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": PRINTER.replace("512", "5120") + "id: y\n"})
    assert problems(tmp_path) == [
        "x.yaml: id: remove this key; the id is the file name ('x')",
        "x.yaml: paper_width_dots: Input should be less than or equal to 832, got 5120",
    ]


def test_only_family_bases_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"_x.yaml": "abstract: true\nnotes: n\n", "README.md": "# not a profile"})
    assert problems(tmp_path) == [f"{tmp_path}: no profiles found (*.yaml other than family bases)"]
    assert problems(tmp_path / "missing") == [f"{tmp_path / 'missing'}: no such folder"]


# --- values ------------------------------------------------------------------------------------

def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": PRINTER + "paper_widht_dots: 576\n"})
    [problem] = problems(tmp_path)
    assert problem.startswith("x.yaml: paper_widht_dots: unknown key (did you mean "
                              "'paper_width_dots'? allowed: command_set, cut,")


def test_unknown_nested_key(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": PRINTER + "usb: [{vendor: '04b8', prodcut: '0202'}]\n"})
    found = problems(tmp_path)
    assert "x.yaml: usb[0].prodcut: unknown key (did you mean 'product'? allowed: product, " \
           "vendor)" in found
    assert "x.yaml: usb[0].product: required key is missing" in found


def test_missing_required_keys(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": "kind: printer\nname: X\nnotes: n\n",
                     "y.yaml": "name: Y\nnotes: n\n"})
    assert problems(tmp_path) == [
        "x.yaml: vendor: required key is missing",
        "x.yaml: japanese: required key is missing",
        "x.yaml: paper_width_dots: required key is missing",
        "y.yaml: kind: required key is missing; the kinds are printer, scanner, keypad, display",
    ]


def test_bad_escpos_profile(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": PRINTER.replace("TM-T88V", "TM-T88X")})
    [problem] = problems(tmp_path)
    assert problem.startswith("x.yaml: escpos_profile: 'TM-T88X' is not a python-escpos "
                              "capability profile (did you mean TM-T88V")
    assert "known: " in problem
    assert "POS-5890" in problem


def test_unquoted_usb_id_and_yaml_booleans_get_a_hint(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": PRINTER + "usb: [{vendor: '04b8', product: 0202}]\ncut: no\n"})
    found = problems(tmp_path)
    assert any(p.startswith("x.yaml: usb[0].product: must be text, but YAML read 130; put it in "
                            "quotes") for p in found), found
    assert any(p.startswith("x.yaml: cut: Input should be 'partial', 'full' or 'none', got False")
               and "put the word in quotes" in p for p in found), found


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": "kind: printer\nvendor: Test\n  name: x: y\n"})
    assert problems(tmp_path) == ["x.yaml: line 3, column 7: mapping values are not allowed here"]


def test_duplicate_key_reports_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": PRINTER + "japanese: raster\n"})
    assert problems(tmp_path) == ["x.yaml: line 8, column 1: key 'japanese' is written twice"]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_bytes("name: テスト\n".encode("shift_jis"))
    [problem] = problems(tmp_path)
    assert problem.startswith("x.yaml: not UTF-8 text")


@pytest.mark.parametrize(("extra", "expected"), [
    ("command_set: star-graphic\n", "escpos_profile: must be null for command_set star-graphic"),
    ("escpos_profile: null\n", "escpos_profile: required when command_set is escpos"),
])
def test_command_set_rules(tmp_path: Path, extra: str, expected: str) -> None:
    text = PRINTER.replace("escpos_profile: TM-T88V\n", "") if "null" in extra else PRINTER
    write(tmp_path, {"x.yaml": text + extra})
    assert problems(tmp_path) == [f"x.yaml: {expected}" + (
        " (raster only, no ESC/POS), got \"TM-T88V\"" if "star" in extra else
        " (e.g. TM-T88V, or default)")]


def test_star_graphic_needs_raster_everything(tmp_path: Path) -> None:
    star = PRINTER.replace("escpos_profile: TM-T88V", "escpos_profile: null") + \
        "command_set: star-graphic\n"
    write(tmp_path, {"x.yaml": star})
    assert problems(tmp_path) == ['x.yaml: japanese: must be "raster" for command_set '
                                  'star-graphic (raster only, no ESC/POS), got "kanji"']


DISPLAY = textwrap.dedent("""\
    kind: display
    vendor: Test
    name: Test display
    notes: for tests
    """)


@pytest.mark.parametrize(("extra", "expected"), [
    ("protocol: ascii-stx\ncommands: {show: '{addr:02d}D{number:04d}'}\n",
     "commands: ascii-stx needs a 'clear' template"),
    ("protocol: ascii-stx\ncommands: {show: '{addr}D{num}', clear: '{addr}C'}\n",
     "commands.show: '{addr}D{num}' uses {num}; the fields are {addr} {number} {digits} {counter}"),
    ("protocol: ascii-stx\ncommands: {show: '{addr}D{number:4q}', clear: '{addr}C'}\n",
     "commands.show: '{addr}D{number:4q}' is not a valid template"),
    ("protocol: ascii-stx\ncommands: {show: \"\\x02{number}\", clear: '{addr}C'}\n",
     "commands.show: '\\x02{number}' must give printable ASCII"),
    ("protocol: ascii-stx\naddress_max: 120\ncommands: {show: '{number}', clear: 'C'}\n",
     "address_min: need 1 <= address_min <= address_max <= 99 for ascii-stx, got 1..120"),
    ("protocol: binary-rs485\naddress_min: 40\naddress_max: 20\n",
     "address_min: need 1 <= address_min <= address_max <= 254 for binary-rs485, got 40..20"),
    ("protocol: binary-rs485\ncommands: {show: '{number}'}\n",
     "commands: binary-rs485 frames are fixed by the protocol"),
])
def test_display_rules(tmp_path: Path, extra: str, expected: str) -> None:
    write(tmp_path, {"d.yaml": DISPLAY + extra})
    [problem] = problems(tmp_path)
    assert problem.startswith(f"d.yaml: {expected}"), problem


@pytest.mark.parametrize(("extra", "expected"), [
    ("kind: keypad\nkeymap: {KEY_A: digit}\n", "keymap: KEY_A: digit is only for keys named"),
    ("kind: keypad\nkeymap: {KEY_kp1: digit}\n", "keymap.KEY_kp1: key 'KEY_kp1': String should"),
    ("kind: keypad\nkeymap: {KEY_KP1: dance}\n", "keymap.KEY_KP1: Input should be 'call_next'"),
    ("kind: keypad\nkeymap: {}\n", "keymap: map at least one key"),
    ("kind: scanner\ninterface: serial\n", "serial: required when interface is serial"),
    ("kind: scanner\ninterface: hid\nserial: {baudrate: 9600}\n", "serial: only for interface"),
    ("kind: scanner\ninterface: serial\nserial: {baudrate: 9601}\n", "serial.baudrate: Input"),
])
def test_keypad_and_scanner_rules(tmp_path: Path, extra: str, expected: str) -> None:
    write(tmp_path, {"k.yaml": "vendor: T\nname: T\nnotes: n\n" + extra})
    [problem] = problems(tmp_path)
    assert problem.startswith(f"k.yaml: {expected}"), problem


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.yaml": PRINTER + "colour: red\n",
        "b.yaml": "kind: [\n",
        "c.yaml": "inherits: zz\nname: C\nnotes: c\n",
        "d.yaml": PRINTER.replace("TM-T88V", "nope"),
    })
    found = problems(tmp_path)
    assert [p.split(":", 1)[0] for p in found] == ["a.yaml", "b.yaml", "c.yaml", "d.yaml"]


# --- collation -------------------------------------------------------------------------------

def test_collate_is_deterministic_and_sorted(shipped: dict[str, Any]) -> None:
    doc = collate(shipped)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert list(doc["profiles"]) == sorted(shipped)
    text = dumps_collated(doc)
    assert text == dumps_collated(collate(load_profiles(SHIPPED)))
    assert text == dumps_collated(collate(dict(reversed(list(shipped.items())))))
    assert json.loads(text) == doc
    assert text.endswith("}\n")
    for pid, entry in doc["profiles"].items():
        assert entry["id"] == pid
        assert list(entry) == sorted(entry)
    assert dumps_collated({"notes": "日本モデル"}) == '{\n  "notes": "日本モデル"\n}\n'  # no \\u


def test_collated_json_round_trips(shipped: dict[str, Any]) -> None:
    assert profiles_from_collated(collate(shipped)) == shipped


def test_build_hook_collation_equals_the_validated_one(shipped: dict[str, Any]) -> None:
    resolved, found = resolve_directory(SHIPPED)
    assert found == []
    assert collate_resolved({r.id: r.data for r in resolved}) == collate(shipped)


def test_load_collated_prefers_the_json(tmp_path: Path, shipped: dict[str, Any]) -> None:
    only = {"generic-58mm": shipped["generic-58mm"]}
    path = tmp_path / "firmware-profiles.json"
    path.write_text(dumps_collated(collate(only)), encoding="utf-8")
    assert load_collated(path) == collate(only)
    assert load_collated(tmp_path / "absent.json", SHIPPED) == collate(shipped)
    assert load_collated() == collate(shipped)  # a checkout has no edge/_data JSON


@pytest.mark.parametrize(("text", "expected"), [
    ('{"schema_version": 99, "profiles": {}}', "schema_version: expected 1, got 99"),
    ("{not json", "cannot read collated profiles"),
    ('{"schema_version": 1, "profiles": {"x": {"id": "x", "kind": "printer"}}}',
     "firmware-profiles.json [x]: vendor: required key is missing"),
])
def test_load_collated_refuses_a_broken_json(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "firmware-profiles.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_collated(path, SHIPPED)
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_build_hook_needs_only_pyyaml(tmp_path: Path, shipped: dict[str, Any]) -> None:
    """hatch_build.py runs with pydantic, python-escpos and the edge package unimportable."""
    fake = tmp_path / "hatchling" / "builders" / "hooks" / "plugin"
    fake.mkdir(parents=True)
    for d in (tmp_path / "hatchling", tmp_path / "hatchling" / "builders",
              tmp_path / "hatchling" / "builders" / "hooks", fake):
        (d / "__init__.py").write_text("")
    (fake / "interface.py").write_text(textwrap.dedent("""\
        class BuildHookInterface:
            def __init__(self, root, config, build_config, metadata, directory, target_name,
                         app=None):
                self.root, self.target_name = root, target_name
        """))
    script = textwrap.dedent(f"""\
        import json, sys
        from pathlib import Path
        for name in ("pydantic", "escpos", "edge"):
            sys.modules[name] = None  # importing them now fails
        sys.path[:0] = [{str(tmp_path)!r}, {str(REPO)!r}]
        import hatch_build
        data = {{"force_include": {{}}}}
        hook = hatch_build.CustomBuildHook({str(REPO)!r}, {{}}, None, None, "dist", "wheel")
        hook.initialize("standard", data)
        [(tmp, target)] = data["force_include"].items()
        print(json.dumps({{"target": target, "text": Path(tmp).read_text(encoding="utf-8")}}))
        hook.finalize("standard", data, "x.whl")
        assert not Path(tmp).exists()
        editable = {{"force_include": {{}}}}
        hook.initialize("editable", editable)
        assert editable == {{"force_include": {{}}}}
        """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["target"] == "edge/_data/firmware-profiles.json"
    assert out["text"] == dumps_collated(collate(shipped))


# --- madoguchi profiles check ------------------------------------------------------------------

def test_cli_check_on_the_shipped_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         shipped: dict[str, Any]) -> None:
    out = tmp_path / "collated.json"
    assert main(["profiles", "check", "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stderr == ""
    lines = stdout.splitlines()
    assert lines[0].split() == ["epson-tm-t20iii", "printer", "Epson", "TM-T20III", "(Japanese",
                                "model)"]
    assert any(line.split()[:2] == ["generic-usb-keypad", "keypad"] for line in lines)
    assert f"{len(shipped)} profiles OK in {SHIPPED}" in stdout
    assert out.read_text(encoding="utf-8") == dumps_collated(collate(shipped))


def test_cli_check_lists_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, {
        "a.yaml": PRINTER + "colour: red\n",
        "b.yaml": "kind: printer\nvendor: [\n",
        "c.yaml": "inherits: c\nname: C\nnotes: c\n",
    })
    out = tmp_path / "never.json"
    assert main(["profiles", "check", "--dir", str(tmp_path), "--out", str(out)]) == 1
    stdout, stderr = capsys.readouterr()
    assert stdout == ""
    assert not out.exists()
    assert f"firmware profiles in {tmp_path}: 3 problem(s)" in stderr
    assert "  a.yaml: colour: unknown key" in stderr
    assert "  b.yaml: line 3, column 1: " in stderr
    assert "  c.yaml: inherits: inheritance cycle c -> c" in stderr
    assert "Traceback" not in stderr


def test_cli_check_runs_display_frames_through_the_codec(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("edge.devices.display.codec")
    clash = "commands: {show: '{addr:02d}D{number:04d}', blink: '{addr:02d}D{number:04d}', " \
            "clear: '{addr:02d}C'}\n"
    write(tmp_path, {"d.yaml": DISPLAY + "protocol: ascii-stx\n" + clash})
    assert main(["profiles", "check", "--dir", str(tmp_path)]) == 1
    assert "  d.yaml: commands.blink: frame does not decode back" in capsys.readouterr().err


def test_cli_check_reports_an_unwritable_out(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "x.json"
    assert main(["profiles", "check", "--out", str(out)]) == 1
    assert f"{out}: cannot write: " in capsys.readouterr().err


# --- USB detection -----------------------------------------------------------------------------

def _device(root: Path, name: str, **attrs: str) -> None:
    d = root / name
    d.mkdir(parents=True)
    for key, value in attrs.items():
        (d / key).write_text(value + "\n")


def test_detect_usb_reads_sysfs(tmp_path: Path, shipped: dict[str, Any]) -> None:
    _device(tmp_path, "usb1", idVendor="1d6b", idProduct="0002", busnum="1", devnum="1")
    _device(tmp_path, "1-1", idVendor="04B8", idProduct="0202", manufacturer="EPSON",
            product="TM-T88V", busnum="1", devnum="5")
    _device(tmp_path, "1-1:1.0", bInterfaceClass="07")
    _device(tmp_path, "2-1.4", idVendor="0519", idProduct="0003", busnum="2", devnum="3")
    _device(tmp_path, "1-2", idVendor="0416", idProduct="5011", busnum="1", devnum="2",
            product="POS58 Printer")
    _device(tmp_path, "1-3", product="no ids")  # not a device description: skipped
    seen = detect_usb(tmp_path)
    assert [(s.port, s.usb_id, s.busnum, s.devnum) for s in seen] == [
        ("1-2", ("0416", "5011"), 1, 2),
        ("1-1", ("04b8", "0202"), 1, 5),
        ("2-1.4", ("0519", "0003"), 2, 3),
    ]
    assert (seen[1].manufacturer, seen[1].product) == ("EPSON", "TM-T88V")
    assert (seen[2].manufacturer, seen[2].product) == ("", "")
    index = by_usb_id(shipped)
    assert [index.get(s.usb_id) for s in seen] == [
        ["generic-58mm"], ["epson-tm-t70ii", "epson-tm-t88v", "epson-tm-t88vi"],
        ["star-tsp143iiiu"]]


def test_detect_usb_without_sysfs(tmp_path: Path) -> None:
    assert detect_usb(tmp_path / "absent") == []
    assert detect_usb(tmp_path) == []
