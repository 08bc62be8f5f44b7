"""Check a page's answers as an HTML form posts them and turn them into normalised values.

Why messages are written per rule: the error summary (GOV.UK / Digital Agency pattern) lists
each error as a link to its input and says exactly what to do (「郵便番号は7桁の数字で入力して
ください」, not "invalid"). Each error has a stable ``code`` for programs and tests.

Raw input is ``dict[str, list[str]]`` (what ``MultiDict`` gives for a POST). Compound fields
post their parts as ``<id>.<part>``: a name as ``.family .given .family_kana .given_kana``, an
address as ``.postal .prefecture .city .street .building``, a date either as ``<id>`` (ISO,
``2026/12/6``, ``2026年12月6日`` or 和暦) or as ``.year .month .day``. Checkboxes post ``<id>``
once per ticked box. Files arrive separately as references (``UploadedFile``): their contents
are checked by ``hub.forms.attachments``, here only whether there are enough and not too many.
Only visible fields are checked and returned, so hidden answers never leave this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from hub.forms import jp
from hub.forms.conditions import holds
from hub.forms.model import (
    AddressField,
    AnyField,
    CheckboxesField,
    ChoiceField,
    ConsentField,
    DateField,
    DropdownField,
    EmailField,
    FileField,
    FixedTextField,
    Form,
    LongTextField,
    NameField,
    NumberField,
    Page,
    PhoneField,
    TextField,
)


class UploadedFile(Protocol):
    """A file the resident attached, already stored (sealed) by the attachments engine."""

    @property
    def id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def content_type(self) -> str: ...
    @property
    def filename(self) -> str: ...


Raw = Mapping[str, Sequence[str]]
Files = Mapping[str, Sequence[UploadedFile]]

# code -> (ja, en); {label} is the field's label, {Label} its English label capitalised
MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("{label}を入力してください", "Enter {label}"),
    "required_select": ("{label}を選択してください", "Select {label}"),
    "required_file": ("{label}のファイルを選択してください", "Select a file for {label}"),
    "required_part": ("{part_ja}を入力してください", "Enter the {part_en}"),
    "consent": ("{label}に同意する場合は、チェックを入れてください",
                "Tick the box to agree to {label}"),
    "too_long": ("{label}は{max}文字以内で入力してください",
                 "{Label} must be {max} characters or fewer"),
    "too_long_part": ("{part_ja}は{max}文字以内で入力してください",
                      "The {part_en} must be {max} characters or fewer"),
    "too_short": ("{label}は{min}文字以上で入力してください",
                  "{Label} must be {min} characters or more"),
    "not_number": ("{label}は数字で入力してください", "{Label} must be a number"),
    "not_integer": ("{label}は整数で入力してください", "{Label} must be a whole number"),
    "too_small": ("{label}は{min}以上の数を入力してください", "{Label} must be {min} or more"),
    "too_large": ("{label}は{max}以下の数を入力してください", "{Label} must be {max} or less"),
    "bad_email": ("メールアドレスは name@example.jp のような形式で入力してください",
                  "Enter an email address in the correct format, like name@example.jp"),
    "bad_phone": ("電話番号は0から始まる10桁または11桁の数字で入力してください",
                  "Enter a phone number of 10 or 11 digits starting with 0, like 03 1234 5678"),
    "bad_postal": ("郵便番号は7桁の数字で入力してください", "Enter the postal code as 7 digits"),
    "bad_prefecture": ("都道府県を選択してください", "Select a prefecture"),
    "bad_katakana": ("{part_ja}はカタカナで入力してください", "Enter the {part_en} in katakana"),
    "bad_hiragana": ("{part_ja}はひらがなで入力してください", "Enter the {part_en} in hiragana"),
    "bad_date": ("{label}は実在する日付で入力してください（例：2026年12月6日、令和8年12月6日）",
                 "{Label} must be a real date, like 2026-12-06"),
    "date_too_early": ("{label}は{min}以降の日付を入力してください",
                       "{Label} must be the same as or after {min_en}"),
    "date_too_late": ("{label}は{max}以前の日付を入力してください",
                      "{Label} must be the same as or before {max_en}"),
    "unknown_option": ("{label}は選択肢から選んでください", "Select {label} from the list"),
    "too_few_choices": ("{label}は{min}個以上選択してください",
                        "Select {min} or more options for {label}"),
    "too_many_choices": ("{label}は{max}個以内で選択してください",
                         "Select no more than {max} options for {label}"),
    "too_many_files": ("{label}のファイルは{max}個以内にしてください",
                       "Attach no more than {max} files for {label}"),
    "bad_value": ("{label}の値が正しくありません", "{Label} is not valid"),
}

PARTS: dict[str, tuple[str, str]] = {
    "family": ("姓", "family name"), "given": ("名", "given name"),
    "family_kana": ("姓のフリガナ", "family name reading"),
    "given_kana": ("名のフリガナ", "given name reading"),
    "postal": ("郵便番号", "postal code"), "prefecture": ("都道府県", "prefecture"),
    "city": ("市区町村", "city, ward, town or village"), "street": ("町名・番地", "street address"),
    "building": ("建物名・部屋番号", "building and room"),
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
PART_MAX = 200  # characters in one part of a name or an address
_NUMBER = re.compile(r"[-−]?[0-9]{1,15}(\.[0-9]{1,10})?")
_CHECKED = frozenset({"true", "on", "yes", "1"})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of the error summary: ``input`` is the HTML name to link to and focus."""

    field: str
    input: str
    code: str
    ja: str
    en: str


@dataclass(slots=True)
class PageResult:
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _Invalid(Exception):
    def __init__(self, code: str, part: str | None = None, **params: object) -> None:
        super().__init__(code)
        self.code, self.part, self.params = code, part, params


def error(fld: AnyField, code: str, part: str | None = None, **params: object) -> FieldError:
    """The error ``code`` for ``fld`` with its texts filled in."""
    label = fld.text if isinstance(fld, FixedTextField) else fld.label
    label_ja, label_en = label.ja, label.en or label.ja
    # mid-sentence English labels in lower case ("Enter date of birth"), acronyms kept
    inner = label_en[:1].lower() + label_en[1:] if label_en[1:2].islower() else label_en
    part_ja, part_en = PARTS.get(part or "", ("", ""))
    values = {"label": label_ja, "inner": inner, "part_ja": part_ja, "part_en": part_en,
              "Label": label_en[:1].upper() + label_en[1:]} | {k: str(v) for k, v in params.items()}
    ja, en = MESSAGES[code]
    en = en.replace("{label}", "{inner}")
    return FieldError(fld.id, f"{fld.id}.{part}" if part else fld.id, code,
                      ja.format(**values), en.format(**values))


def _one(raw: Raw, key: str) -> str:
    values = [v for v in raw.get(key, ()) if v.strip()]
    if len(values) > 1:
        raise _Invalid("bad_value")
    return values[0].strip() if values else ""


def _text(fld: TextField | LongTextField, raw: Raw) -> str | None:
    value = _one(raw, fld.id).replace("\r\n", "\n")
    if not value:
        return None
    if len(value) > fld.max_length:
        raise _Invalid("too_long", max=fld.max_length)
    if len(value) < fld.min_length:
        raise _Invalid("too_short", min=fld.min_length)
    return value


def _number(fld: NumberField, raw: Raw) -> int | Decimal | None:
    text = jp.nfkc(_one(raw, fld.id)).replace(",", "")
    if not text:
        return None
    # plain decimals only: no exponent ("1e999999" would make a million-digit integer), no NaN
    if not _NUMBER.fullmatch(text):
        raise _Invalid("not_number")
    number = Decimal(text.replace("−", "-"))
    if fld.integer and number != number.to_integral_value():
        raise _Invalid("not_integer")
    if fld.min is not None and number < Decimal(str(fld.min)):
        raise _Invalid("too_small", min=fld.min)
    if fld.max is not None and number > Decimal(str(fld.max)):
        raise _Invalid("too_large", max=fld.max)
    return int(number) if number == number.to_integral_value() else number


def _email(fld: EmailField, raw: Raw) -> str | None:
    text = jp.nfkc(_one(raw, fld.id))
    if not text:
        return None
    if len(text) > 254 or not text.isascii() or not _EMAIL.fullmatch(text):
        raise _Invalid("bad_email")
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _phone(fld: PhoneField, raw: Raw) -> str | None:
    text = _one(raw, fld.id)
    if not text:
        return None
    phone = jp.normalize_phone(text)
    if phone is None:
        raise _Invalid("bad_phone")
    return phone


def _show(day: date, wareki: bool) -> tuple[str, str]:
    ja = jp.to_wareki(day) if wareki else f"{day.year}年{day.month}月{day.day}日"
    return ja, f"{day.day} {day:%B} {day.year}"


def _date(fld: DateField, raw: Raw) -> date | None:
    text = _one(raw, fld.id)
    parts = [_one(raw, f"{fld.id}.{p}") for p in ("year", "month", "day")]
    if not text and not any(parts):
        return None
    try:
        day = jp.parse_date(text) if text else date(*(int(jp.nfkc(p)) for p in parts))
    except (ValueError, TypeError, OverflowError):  # date(10**20, 1, 1) overflows
        raise _Invalid("bad_date") from None
    wareki = fld.display == "wareki"
    if fld.min is not None and day < fld.min:
        ja, en = _show(fld.min, wareki)
        raise _Invalid("date_too_early", min=ja, min_en=en)
    if fld.max is not None and day > fld.max:
        ja, en = _show(fld.max, wareki)
        raise _Invalid("date_too_late", max=ja, max_en=en)
    return day


def _choice(fld: ChoiceField | DropdownField, raw: Raw) -> str | None:
    value = _one(raw, fld.id)
    if not value:
        return None
    if value not in {o.value for o in fld.options}:
        raise _Invalid("unknown_option")
    return value


def _checkboxes(fld: CheckboxesField, raw: Raw) -> tuple[str, ...] | None:
    ticked = [v for v in raw.get(fld.id, ()) if v]
    if not ticked:
        return None
    known = [o.value for o in fld.options]
    if any(v not in known for v in ticked):
        raise _Invalid("unknown_option")
    chosen = tuple(v for v in known if v in ticked)  # option order, no repeats
    if len(chosen) < fld.min_selected:
        raise _Invalid("too_few_choices", min=fld.min_selected)
    if fld.max_selected is not None and len(chosen) > fld.max_selected:
        raise _Invalid("too_many_choices", max=fld.max_selected)
    return chosen


def _parts(fld: AnyField, raw: Raw, keys: Sequence[str]) -> dict[str, str]:
    got = {k: " ".join(_one(raw, f"{fld.id}.{k}").split()) for k in keys}
    for key, value in got.items():
        if len(value) > PART_MAX:
            raise _Invalid("too_long_part", key, max=PART_MAX)
    return got


def _name(fld: NameField, raw: Raw) -> dict[str, str] | None:
    keys = ["family", "given"] + ([] if fld.furigana == "none" else ["family_kana", "given_kana"])
    got = _parts(fld, raw, keys)
    if not any(got.values()):
        return None
    for key in keys:
        if not got[key] and key != "given":  # a given name may be absent (some foreign names)
            raise _Invalid("required_part", key)
        if key.endswith("_kana") and got[key]:
            kana = jp.normalize_kana(got[key], fld.furigana)
            if kana is None:
                raise _Invalid(f"bad_{fld.furigana}", key)
            got[key] = kana
    return got


def _address(fld: AddressField, raw: Raw) -> dict[str, str] | None:
    got = _parts(fld, raw, ("postal", "prefecture", "city", "street", "building"))
    if not any(got.values()):
        return None
    postal = jp.normalize_postal(got["postal"])
    if postal is None:
        raise _Invalid("bad_postal", "postal")
    if got["prefecture"] not in jp.PREFECTURES:
        raise _Invalid("bad_prefecture", "prefecture")
    for key in ("city", "street"):
        if not got[key]:
            raise _Invalid("required_part", key)
    return got | {"postal": postal}


def _files(fld: FileField, files: Files) -> tuple[UploadedFile, ...] | None:
    got = tuple(files.get(fld.id, ()))
    if len(got) > fld.max_files:
        raise _Invalid("too_many_files", max=fld.max_files)
    return got or None


def _value(fld: AnyField, raw: Raw, files: Files) -> object:
    if isinstance(fld, TextField | LongTextField):
        return _text(fld, raw)
    if isinstance(fld, NumberField):
        return _number(fld, raw)
    if isinstance(fld, EmailField):
        return _email(fld, raw)
    if isinstance(fld, PhoneField):
        return _phone(fld, raw)
    if isinstance(fld, DateField):
        return _date(fld, raw)
    if isinstance(fld, ChoiceField | DropdownField):
        return _choice(fld, raw)
    if isinstance(fld, CheckboxesField):
        return _checkboxes(fld, raw)
    if isinstance(fld, NameField):
        return _name(fld, raw)
    if isinstance(fld, AddressField):
        return _address(fld, raw)
    if isinstance(fld, FileField):
        return _files(fld, files)
    if isinstance(fld, ConsentField):
        return True if _one(raw, fld.id).lower() in _CHECKED else None
    return None


def _missing(fld: AnyField) -> str:
    if isinstance(fld, ChoiceField | DropdownField | CheckboxesField):
        return "required_select"
    if isinstance(fld, FileField):
        return "required_file"
    return "consent" if isinstance(fld, ConsentField) else "required"


def validate_page(page: Page, raw: Raw, files: Files | None = None,
                  earlier: Mapping[str, Any] | None = None) -> PageResult:
    """The visible fields of ``page`` checked; ``earlier`` are the normalised answers of the
    pages before (they decide conditions). Values of fields left empty are absent."""
    result = PageResult()
    known: dict[str, Any] = dict(earlier or {})
    for fld in page.fields:
        if isinstance(fld, FixedTextField) or not holds(fld.condition, known):
            continue
        try:
            value = _value(fld, raw, files or {})
        except _Invalid as bad:
            result.errors.append(error(fld, bad.code, bad.part, **bad.params))
            continue
        if value is None:
            if fld.required or isinstance(fld, ConsentField):
                part = "postal" if isinstance(fld, AddressField) else (
                    "family" if isinstance(fld, NameField) else None)
                result.errors.append(error(fld, _missing(fld), part))
            continue
        result.values[fld.id] = value
        known[fld.id] = value
    return result


def validate_form(form: Form, raw: Raw, files: Files | None = None) -> PageResult:
    """The whole submission checked page by page in order (the final check before it is
    accepted): values only of visible fields on visible pages."""
    result = PageResult()
    for page in form.pages:
        if not holds(page.condition, result.values):
            continue
        page_result = validate_page(page, raw, files, result.values)
        result.values.update(page_result.values)
        result.errors.extend(page_result.errors)
    return result
