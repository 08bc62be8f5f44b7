"""Page answers as posted by an HTML form: normalised values and error-summary entries
(hub/forms/validate.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.model import Form, Page
from hub.forms.validate import MESSAGES, FieldError, UploadedFile, validate_form, validate_page
from hub.forms.versions import parse_form


@dataclass(frozen=True)
class Upload:
    id: str
    size: int
    content_type: str
    filename: str


def T(ja: str, en: str = "") -> dict[str, str]:
    return {"ja": ja, "en": en}


def page_of(*fields: dict[str, Any]) -> Page:
    form = parse_form({"id": "f", "title": T("f"), "retention_days": 1,
                       "pages": [{"id": "p", "title": T("p"), "fields": list(fields)}]})
    return form.pages[0]


def one(field: dict[str, Any], raw: dict[str, list[str]], files: Any = None) -> Any:
    """The value, or the single error, of one field."""
    result = validate_page(page_of(field), raw, files)
    if result.errors:
        (err,) = result.errors
        return err
    return result.values.get(field["id"])


def field(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "id": "x", "label": T("項目", "Item")} | extra


def err_code(value: Any) -> str:
    assert isinstance(value, FieldError), value
    return value.code


def test_postal_message_is_specific() -> None:
    got = one(field("address"), {"x.postal": ["123"], "x.prefecture": ["東京都"]})
    assert isinstance(got, FieldError)
    assert (got.code, got.input) == ("bad_postal", "x.postal")
    assert got.ja == "郵便番号は7桁の数字で入力してください"
    assert got.en == "Enter the postal code as 7 digits"


def test_address_normalised() -> None:
    raw = {"x.postal": ["〒１４０－８７１５"], "x.prefecture": ["東京都"], "x.city": ["品川区"],
           "x.street": ["広町２丁目１－３６"], "x.building": [""]}
    assert one(field("address"), raw) == {"postal": "1408715", "prefecture": "東京都",
                                          "city": "品川区", "street": "広町２丁目１－３６",
                                          "building": ""}
    assert err_code(one(field("address"), raw | {"x.prefecture": ["東京"]})) == "bad_prefecture"
    assert err_code(one(field("address"), raw | {"x.city": [""]})) == "required_part"
    long = one(field("address"), raw | {"x.street": ["丁" * 201]})
    assert (long.code, long.input) == ("too_long_part", "x.street")
    assert long.ja == "町名・番地は200文字以内で入力してください"
    assert one(field("address"), raw | {"x.street": ["丁" * 200]})["street"] == "丁" * 200


def test_required_messages_by_kind() -> None:
    text = one(field("text"), {})
    assert (text.code, text.ja, text.en) == ("required", "項目を入力してください", "Enter item")
    pick = one(field("choice", options=[{"value": "a", "label": T("A")}]), {})
    assert (pick.code, pick.ja, pick.en) == ("required_select", "項目を選択してください",
                                             "Select item")
    assert err_code(one(field("file"), {})) == "required_file"
    assert one(field("text", required=False), {"x": ["  "]}) is None
    name = one(field("name"), {})
    assert (name.code, name.input) == ("required", "x.family")


def test_english_label_acronym_kept() -> None:
    got = one({"type": "email", "id": "x", "label": T("メール", "PIN e-mail")}, {})
    assert got.en == "Enter PIN e-mail"


@pytest.mark.parametrize(("extra", "text", "want"), [
    ({}, "１２３", 123), ({}, "1,000", 1000), ({}, "2.50", Decimal("2.50")),
    ({"integer": True}, "2.5", "not_integer"), ({}, "abc", "not_number"),
    ({}, "NaN", "not_number"), ({}, "1e999999", "not_number"),
    ({"min": 1, "max": 10}, "0", "too_small"), ({"min": 1, "max": 10}, "11", "too_large"),
    ({"min": 1, "max": 10}, "10", 10), ({"min": 0.5}, "0.4", "too_small"),
])
def test_numbers(extra: dict[str, Any], text: str, want: Any) -> None:
    got = one(field("number", **extra), {"x": [text]})
    assert (got.code if isinstance(got, FieldError) else got) == want


def test_number_range_message() -> None:
    got = one(field("number", min=1, max=10), {"x": ["11"]})
    assert (got.ja, got.en) == ("項目は10以下の数を入力してください", "Item must be 10 or less")


@given(st.integers(-10**6, 10**6), st.integers(-100, 100), st.integers(0, 200))
def test_number_range_rule(value: int, low: int, span: int) -> None:
    got = one(field("number", min=low, max=low + span), {"x": [str(value)]})
    if value < low:
        assert err_code(got) == "too_small"
    elif value > low + span:
        assert err_code(got) == "too_large"
    else:
        assert got == value


@pytest.mark.parametrize(("kind", "extra", "text", "want"), [
    ("text", {}, "a" * 1000, "a" * 1000), ("text", {}, "a" * 1001, "too_long"),
    ("text", {"max_length": 5, "min_length": 2}, "a", "too_short"),
    ("long_text", {}, "行\r\n" * 3000, "行\n" * 2999 + "行"),
    ("long_text", {}, "a" * 10001, "too_long"),
    ("email", {}, "Taro@Example.JP", "Taro@example.jp"),
    ("email", {}, "ｔａｒｏ＠example.jp", "taro@example.jp"),
    ("email", {}, "taro@localhost", "bad_email"), ("email", {}, "a b@c.jp", "bad_email"),
    ("email", {}, "山田@example.jp", "bad_email"),
    ("phone", {}, "０３－１２３４－５６７８", "0312345678"), ("phone", {}, "12345", "bad_phone"),
])
def test_texts_emails_phones(kind: str, extra: dict[str, Any], text: str, want: str) -> None:
    got = one(field(kind, **extra), {"x": [text]})
    assert (got.code if isinstance(got, FieldError) else got) == want


def test_two_values_for_one_field_refused() -> None:
    assert err_code(one(field("text"), {"x": ["a", "b"]})) == "bad_value"


@pytest.mark.parametrize(("raw", "want"), [
    ({"x": ["令和8年12月6日"]}, date(2026, 12, 6)),
    ({"x": ["2026-12-06"]}, date(2026, 12, 6)),
    ({"x.year": ["２０２６"], "x.month": ["12"], "x.day": ["6"]}, date(2026, 12, 6)),
    ({"x.year": ["2026"], "x.month": ["2"], "x.day": ["30"]}, "bad_date"),
    ({"x.year": ["2026"], "x.month": [""], "x.day": ["3"]}, "bad_date"),
    ({"x": ["H31.5.1"]}, "bad_date"),
    ({"x.year": ["9" * 20], "x.month": ["1"], "x.day": ["1"]}, "bad_date"),
    ({"x.year": ["9" * 5000], "x.month": ["1"], "x.day": ["1"]}, "bad_date"),
    ({"x": ["1899-12-31"]}, "date_too_early"),
    ({"x": ["2101-01-01"]}, "date_too_late"),
])
def test_dates(raw: dict[str, list[str]], want: Any) -> None:
    got = one(field("date", min="1900-01-01", max="2100-12-31", display="wareki"), raw)
    assert (got.code if isinstance(got, FieldError) else got) == want


def test_date_range_message_in_display_calendar() -> None:
    got = one(field("date", min="2019-05-01", display="wareki"), {"x": ["2019-04-30"]})
    assert got.ja == "項目は令和元年5月1日以降の日付を入力してください"
    assert got.en == "Item must be the same as or after 1 May 2019"


OPTS = [{"value": v, "label": T(v)} for v in ("a", "b", "c")]


def test_choices() -> None:
    assert one(field("choice", options=OPTS), {"x": ["b"]}) == "b"
    assert err_code(one(field("dropdown", options=OPTS), {"x": ["z"]})) == "unknown_option"
    boxes = field("checkboxes", options=OPTS, min_selected=1, max_selected=2)
    assert one(boxes, {"x": ["c", "a", "c"]}) == ("a", "c")
    assert err_code(one(boxes, {"x": ["a", "b", "c"]})) == "too_many_choices"
    assert err_code(one(boxes, {"x": ["a", "evil"]})) == "unknown_option"
    two = field("checkboxes", options=OPTS, min_selected=2)
    assert err_code(one(two, {"x": ["a"]})) == "too_few_choices"


@given(st.lists(st.text(max_size=3), max_size=5))
def test_only_known_options_ever_accepted(values: list[str]) -> None:
    got = one(field("checkboxes", options=OPTS, required=False), {"x": values})
    if isinstance(got, tuple):
        assert set(got) <= {"a", "b", "c"}
        assert set(got) == {v for v in values if v}
    else:
        assert got is None or err_code(got) == "unknown_option"


def test_names_with_furigana() -> None:
    raw = {"x.family": ["山田"], "x.given": ["太郎"], "x.family_kana": ["やまだ"],
           "x.given_kana": ["ﾀﾛｳ"]}
    assert one(field("name"), raw) == {"family": "山田", "given": "太郎",
                                       "family_kana": "ヤマダ", "given_kana": "タロウ"}
    bad = one(field("name"), raw | {"x.given_kana": ["Taro"]})
    assert (bad.code, bad.input, bad.ja) == ("bad_katakana", "x.given_kana",
                                             "名のフリガナはカタカナで入力してください")
    hira = one(field("name", furigana="hiragana"), raw)
    assert hira["given_kana"] == "たろう"
    assert err_code(one(field("name"), raw | {"x.family_kana": [""]})) == "required_part"
    plain = one(field("name", furigana="none"), {"x.family": ["Smith"]})
    assert plain == {"family": "Smith", "given": ""}


def test_consent_and_files() -> None:
    consent = field("consent", text=T("同意します"), required=False)
    assert one(consent, {"x": ["on"]}) is True
    assert err_code(one(consent, {})) == "consent"  # must be ticked even if marked optional
    pdf: UploadedFile = Upload("u1", 1000, "application/pdf", "a.pdf")
    assert one(field("file", max_files=2), {}, {"x": [pdf, pdf]}) == (pdf, pdf)
    assert err_code(one(field("file"), {}, {"x": [pdf, pdf]})) == "too_many_files"


def conditional_form() -> Form:
    return parse_form({"id": "f", "title": T("f"), "retention_days": 1, "pages": [
        {"id": "p1", "title": T("1"), "fields": [
            field("choice", id="kind", options=OPTS),
            field("text", id="detail", condition={"field": "kind", "op": "equals", "value": "a"}),
        ]},
        {"id": "p2", "title": T("2"), "condition": {"field": "kind", "op": "equals", "value": "b"},
         "fields": [field("text", id="more")]}]})


def test_hidden_fields_neither_checked_nor_returned() -> None:
    form = conditional_form()
    got = validate_form(form, {"kind": ["c"], "detail": ["stale"], "more": ["stale"]})
    assert got.ok
    assert got.values == {"kind": "c"}
    shown = validate_form(form, {"kind": ["a"]})
    assert [e.field for e in shown.errors] == ["detail"]
    page2 = validate_form(form, {"kind": ["b"], "detail": ["stale"]})
    assert [e.field for e in page2.errors] == ["more"]
    assert "detail" not in page2.values


def test_every_message_has_both_languages() -> None:
    for code, (ja, en) in MESSAGES.items():
        assert ja
        assert en, code
        assert ja != en


EVERY = page_of(
    field("text", id="t"), field("long_text", id="lt"), field("number", id="n", min=0, max=9),
    field("email", id="e"), field("phone", id="ph"), field("date", id="d", display="wareki"),
    field("choice", id="c", options=OPTS), field("dropdown", id="dd", options=OPTS),
    field("checkboxes", id="cb", options=OPTS, max_selected=2), field("name", id="nm"),
    field("address", id="ad"), field("file", id="fl"),
    field("consent", id="ok", text=T("同意")), {"type": "fixed_text", "id": "ft", "text": T("注")})
KEYS = ["t", "lt", "n", "e", "ph", "d", "d.year", "d.month", "d.day", "c", "dd", "cb", "nm.family",
        "nm.given", "nm.family_kana", "nm.given_kana", "ad.postal", "ad.prefecture", "ad.city",
        "ad.street", "ad.building", "ok", "ft"]


@given(st.dictionaries(st.sampled_from(KEYS), st.lists(st.text(max_size=30), max_size=3)))
def test_any_post_gives_values_or_errors_never_an_exception(raw: dict[str, list[str]]) -> None:
    result = validate_page(EVERY, raw)
    answered = {e.field for e in result.errors} | set(result.values)
    assert answered == {f.id for f in EVERY.fields if f.type != "fixed_text"}
    assert not set(result.values) & {e.field for e in result.errors}
    for err in result.errors:
        assert err.code in MESSAGES
        assert err.input.split(".")[0] == err.field
        assert "{" not in err.ja + err.en
