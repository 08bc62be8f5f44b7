"""Recipient lists (N1): CSV in three encodings and xlsx, every bad line named, all or nothing,
and no name or address in any problem text."""

from __future__ import annotations

import pytest
from notices_pdf_support import (
    csv_bytes,
    make_recipients_csv,
    make_recipients_xlsx,
    recipients_rows,
    xlsx_bytes,
)

from hub.notices.recipients import (
    ImportProblems,
    Problem,
    normalise_email,
    parse_recipients,
)


def problems(data: bytes, key_column: str | None = None, **kw: int) -> list[Problem]:
    with pytest.raises(ImportProblems) as info:
        parse_recipients(data, key_column, **kw)
    assert info.value.problems
    return info.value.problems


def codes(data: bytes, key_column: str | None = None, **kw: int) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in problems(data, key_column, **kw)]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
def test_csv_encodings_are_detected(encoding: str) -> None:
    parsed = parse_recipients(make_recipients_csv(3, encoding=encoding))
    assert parsed.encoding == encoding
    assert parsed.columns == ("通知番号", "氏名", "メールアドレス", "税額", "メッセージ")
    assert (parsed.name_column, parsed.email_column, parsed.key_column) == (
        "氏名", "メールアドレス", "通知番号")
    first = parsed.rows[0]
    assert (first.line, first.name, first.email, first.key) == (
        2, "練馬 太郎1", "resident1@example.jp", "A0001")
    assert first.data == {"税額": "1000", "メッセージ": "1様へのお知らせです。"}
    assert list(first.data) == ["税額", "メッセージ"]  # file order kept
    assert first.message == "1様へのお知らせです。"
    assert [r.line for r in parsed.rows] == [2, 3, 4]


def test_cp932_full_width_keys_and_addresses_are_normalised() -> None:
    rows = [["通知番号", "宛名", "メールアドレス"],
            ["Ａ０００１", "練馬 花子", "ｈａｎａｋｏ＠Ｅｘａｍｐｌｅ．ＪＰ"],
            [" A0002 ", "練馬 一郎", " Ichiro@EXAMPLE.jp "]]
    parsed = parse_recipients(csv_bytes(rows, "cp932"))
    assert [r.key for r in parsed.rows] == ["A0001", "A0002"]
    assert [r.email for r in parsed.rows] == ["hanako@example.jp", "Ichiro@example.jp"]


def test_xlsx_is_detected_by_content_and_cells_read_as_text() -> None:
    parsed = parse_recipients(make_recipients_xlsx(2))
    assert parsed.encoding == "xlsx"
    assert [(r.line, r.name, r.email, r.key) for r in parsed.rows] == [
        (2, "練馬 太郎1", "resident1@example.jp", "A0001"),
        (2 + 1, "練馬 太郎2", "resident2@example.jp", "A0002")]
    numeric = xlsx_bytes([["key", "name", "email", "金額"],
                          [1001, "練馬 次郎", "j@example.jp", 3000.0]])
    row = parse_recipients(numeric).rows[0]
    assert (row.key, row.data) == ("1001", {"金額": "3000"})


def test_xlsx_bad_rows_are_named_by_row() -> None:
    rows = recipients_rows(3)
    rows[2][2] = "not-an-address"
    assert codes(xlsx_bytes(rows)) == [(3, "bad_email")]


def test_every_bad_line_is_listed_at_once() -> None:
    rows = recipients_rows(6)
    rows[1][1] = "  "  # line 2: empty name
    rows[3][2] = "resident3@@example.jp"  # line 4
    rows[4][2] = ""  # line 5
    rows[5][0] = "Ａ０００１"  # line 6: the key of line 2 in full width
    found = problems(csv_bytes(rows))
    assert [(p.line, p.code) for p in found] == [
        (2, "empty_name"), (4, "bad_email"), (5, "empty_email"), (6, "duplicate_key")]
    assert found[1].en == "Line 4: the e-mail address is not valid"
    assert found[1].ja.startswith("4行目: ")
    assert "line 2" in found[3].en  # which line it repeats


def test_problem_texts_never_hold_names_or_addresses() -> None:
    rows = recipients_rows(3)
    rows[2][2] = rows[1][2]  # line 3: duplicate address, empty keys
    rows[2][0] = ""
    rows[1][0] = ""
    rows[3][2] = "練馬@example"
    found = problems(csv_bytes(rows))
    assert {p.code for p in found} == {"duplicate_email", "bad_email"}
    for p in found:
        for secret in ("練馬", "resident", "example", "太郎"):
            assert secret not in p.ja
            assert secret not in p.en


def test_same_address_with_different_keys_is_fine() -> None:
    rows = recipients_rows(2)
    rows[2][2] = rows[1][2]  # one family address, two notices
    assert len(parse_recipients(csv_bytes(rows)).rows) == 2


def test_without_a_key_column_a_repeated_address_is_a_duplicate() -> None:
    rows = [["氏名", "e-mail"], ["練馬 太郎", "a@example.jp"], ["練馬 次郎", "A@Example.JP"]]
    assert codes(csv_bytes(rows)) == [(3, "duplicate_email")]
    parsed = parse_recipients(csv_bytes(rows[:2]))
    assert parsed.key_column is None
    assert parsed.rows[0].key is None


@pytest.mark.parametrize(("header", "missing"), [
    (["通知番号", "メールアドレス"], 1), (["氏名", "通知番号"], 1), (["通知番号"], 2)])
def test_required_columns(header: list[str], missing: int) -> None:
    found = codes(csv_bytes([header, ["x"] * len(header)]))
    assert found == [(1, "missing_column")] * missing


def test_key_column_is_chosen_by_staff() -> None:
    rows = [["整理番号", "氏名", "メールアドレス", "通知番号"],
            ["K1", "練馬 太郎", "a@example.jp", "A1"]]
    assert parse_recipients(csv_bytes(rows), "整理番号").rows[0].key == "K1"
    assert parse_recipients(csv_bytes(rows)).rows[0].key == "A1"  # auto: a known name
    assert codes(csv_bytes(rows), "宛名番号") == [(1, "missing_column")]


def test_header_names_are_matched_loosely() -> None:
    rows = [["ＮＡＭＥ", "E-Mail", " ＫＥＹ "], ["練馬 太郎", "a@example.jp", "x1"]]
    row = parse_recipients(csv_bytes(rows, "utf-8")).rows[0]
    assert (row.name, row.email, row.key) == ("練馬 太郎", "a@example.jp", "x1")


def test_formula_like_cells_are_kept_as_data() -> None:
    rows = [["氏名", "メールアドレス", "備考"], ["練馬 太郎", "a@example.jp", "=HYPERLINK(\"x\")"],
            ["練馬 次郎", "b@example.jp", "@SUM(1)"]]
    parsed = parse_recipients(csv_bytes(rows))
    assert [r.data["備考"] for r in parsed.rows] == ['=HYPERLINK("x")', "@SUM(1)"]


def test_empty_files_and_lists_without_rows() -> None:
    assert codes(b"") == [(0, "empty")]
    assert codes(b"\xef\xbb\xbf\r\n\r\n") == [(0, "empty")]
    assert codes("氏名,メールアドレス\r\n,\r\n".encode()) == [(0, "no_rows")]


def test_blank_lines_are_skipped_and_multiline_cells_keep_their_start_line() -> None:
    text = ('氏名,メールアドレス,メッセージ\r\n\r\n練馬 太郎,a@example.jp,"一行目\r\n二行目"\r\n'
            "練馬 次郎,b@example.jp,x\r\n,,\r\n")
    parsed = parse_recipients(text.encode("cp932"))
    assert [r.line for r in parsed.rows] == [3, 5]
    assert parsed.rows[0].message == "一行目\r\n二行目"


def test_too_many_rows() -> None:
    found = codes(make_recipients_csv(11), max_rows=10)
    assert found[0] == (0, "too_many_rows")
    assert len(parse_recipients(make_recipients_csv(10), max_rows=10).rows) == 10


def test_undecodable_and_binary_files() -> None:
    assert codes(b"\x81\x20\xff\xfe\x00abc") == [(0, "bad_encoding")]
    assert codes("氏名,メールアドレス".encode("utf-16")) == [(0, "bad_encoding")]
    assert codes(b"PK\x03\x04 not really a zip") == [(0, "bad_xlsx")]
    assert codes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100) == [(0, "xls_not_supported")]


def test_cells_beyond_the_header_are_refused() -> None:
    text = "氏名,メールアドレス\r\n練馬 太郎,a@example.jp,surprise\r\n練馬 次郎,b@example.jp,\r\n"
    assert codes(text.encode()) == [(2, "extra_cells")]


def test_duplicate_headings_are_refused() -> None:
    text = "氏名,メールアドレス,メールアドレス\r\nx,a@example.jp,b@example.jp\r\n"
    assert codes(text.encode()) == [(1, "duplicate_column")]


def test_problem_list_is_capped() -> None:
    rows = [["氏名", "メールアドレス"]] + [["練馬", "bad"]] * 300
    found = codes(csv_bytes(rows))
    assert len(found) == 201
    assert found[-1] == (0, "more_problems")


@pytest.mark.parametrize(("raw", "expected"), [
    ("a.b+tag@Example.JP", "a.b+tag@example.jp"),
    ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
    ("x@xn--eckwd4c7c.xn--zckzah", "x@xn--eckwd4c7c.xn--zckzah"),
    ("no-at.example.jp", None), ("a@b", None), ("a..b@example.jp", None),
    (".a@example.jp", None), ("a@-example.jp", None), ("a@example.j", None),
    ("a b@example.jp", None), ("太郎@example.jp", None), ("a@例え.jp", None),
    ("a@example.jp.", None), ("a@@example.jp", None), ("a@example..jp", None),
    ("x" * 65 + "@example.jp", None),
])
def test_email_syntax(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected
