"""Reservation ID files (issue 14 item 2): UTF-8 with and without a BOM and cp932 files made
here, full-width IDs normalised, the ward's column layout as a setting, every bad line named,
and nothing taken from a file with one bad line."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hub.reservations.ids import ID_RE, Layout, normalise_id, parse

HEADER = "予約ID,区民事務所コード,氏名カナ\r\n"
REPO = Path(__file__).resolve().parents[2]

ids = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=8, max_size=8)
offices = st.text("0123456789", min_size=4, max_size=4)


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


@given(st.dictionaries(ids, offices, min_size=1, max_size=30),
       st.sampled_from(["utf-8", "utf-8-sig", "cp932"]), st.booleans())
def test_any_file_round_trips_in_every_encoding(rows: dict[str, str], encoding: str,
                                                wide: bool) -> None:
    body = HEADER + "".join(f"{full_width(r) if wide else r.lower()},{o},ヤマダ\r\n"
                            for r, o in rows.items())
    got = parse(body.encode(encoding))
    assert got.errors == []
    assert got.rows == rows
    assert got.encoding == encoding if encoding != "cp932" else got.encoding == "cp932"


@given(st.text(max_size=12))
def test_normalised_ids_are_eight_ascii_alphanumerics_or_refused(raw: str) -> None:
    rid = normalise_id(raw)
    if ID_RE.match(rid):
        assert rid.isascii()
        assert rid == unicodedata.normalize("NFKC", rid).upper()


def test_every_bad_line_is_named_and_nothing_is_taken() -> None:
    body = (HEADER + "AB12CD34,0001,a\r\n" + "AB12CD3,0001,b\r\n" + "EF56GH78,01,c\r\n"
            + "\r\n" + "AB12CD34,0002,d\r\n" + "AB12CD34,0001,e\r\n")
    got = parse(body.encode("cp932"))
    assert [(e.line, e.code) for e in got.errors] == [(3, "bad_id"), (4, "bad_office"),
                                                      (6, "conflict")]


def test_the_layout_is_a_setting() -> None:
    by_name = Layout(id_column="ID", office_column="事務所")
    body = "事務所,ID\n0005,ZZ99YY88\n".encode("utf-8-sig")
    assert parse(body, by_name).rows == {"ZZ99YY88": "0005"}
    by_position = Layout(header=False, id_position=2, office_position=1)
    assert parse(b"0005,ZZ99YY88\n", by_position).rows == {"ZZ99YY88": "0005"}
    skip = Layout(header=False, skip_header=True, id_position=2, office_position=1)
    assert parse(b"office,id\n0005,ZZ99YY88\n", skip).rows == {"ZZ99YY88": "0005"}
    missing = parse("番号,場所\n1,2\n".encode())
    assert [e.code for e in missing.errors] == ["missing_column"]


def test_unreadable_or_empty_files_are_refused() -> None:
    assert [e.code for e in parse(b"\xff\xfe\x00\x00garbage\x80").errors] == ["bad_encoding"]
    assert [e.code for e in parse(HEADER.encode()).errors] == ["empty"]


def test_the_import_command_is_all_or_nothing(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    good = tmp_path / "ids.csv"
    good.write_bytes("予約ID,区民事務所コード\nＡＢ１２ＣＤ３４,0001\nef56gh78,0002\n".encode("cp932"))
    bad = tmp_path / "bad.csv"
    bad.write_bytes("予約ID,区民事務所コード\nXY12XY12,0001\nshort,0001\n".encode("utf-8-sig"))

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge.cli", "hub", "reservations", "import",
                               str(path), "--db", db], capture_output=True, text=True, cwd=REPO,
                              timeout=120, check=False)

    first = run(good)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"added": 2, "unchanged": 0, "moved": 0,
                                        "encoding": "cp932"}
    assert json.loads(run(good).stdout)["unchanged"] == 2  # the same file again: no change
    refused = run(bad)
    assert refused.returncode == 1
    assert f"{bad}:3:" in refused.stderr
    assert "取り込んでいません" in refused.stderr
    assert "Traceback" not in refused.stderr
