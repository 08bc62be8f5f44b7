"""Saved answers as the inputs of a page (``forms/fields.html``'s ``values``) and as the review
page's text. Pure functions: the same conversions serve the builder's preview and the staff.

Why the inputs are rebuilt from the normalised answers rather than kept as typed: the draft
stores one form of each answer (what is submitted), and a resident who comes back sees what
will be sent (a postal code with its hyphen removed, furigana in katakana).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from hub.forms import jp
from hub.forms.model import (
    AddressField,
    AnyField,
    CheckboxesField,
    ChoiceField,
    ConsentField,
    DateField,
    DropdownField,
    FileField,
    FixedTextField,
    Form,
    NameField,
    Text,
)

NAME_PARTS = ("family", "given", "family_kana", "given_kana")
ADDRESS_PARTS = ("postal", "prefecture", "city", "street", "building")


def text(t: Text | None, lang: str) -> str:
    if t is None:
        return ""
    return t.shown(lang)


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def field_inputs(fld: AnyField, value: Any) -> dict[str, list[str]]:
    """One field's saved answer as the HTML inputs that post it."""
    fid = fld.id
    if value is None or isinstance(fld, FixedTextField):
        return {}
    if isinstance(fld, NameField | AddressField) and isinstance(value, Mapping):
        return {f"{fid}.{k}": [str(v)] for k, v in value.items() if v}
    if isinstance(fld, DateField):
        day = _date(value)
        if day is None:
            return {}
        if fld.display == "wareki":
            return {fid: [jp.to_wareki(day)]}
        return {f"{fid}.year": [str(day.year)], f"{fid}.month": [str(day.month)],
                f"{fid}.day": [str(day.day)]}
    if isinstance(fld, CheckboxesField):
        return {fid: [str(v) for v in value]}
    if isinstance(fld, ConsentField):
        return {fid: ["true"]} if value is True else {}
    if isinstance(fld, FileField):
        return {f"{fid}.files": list(value)}
    return {fid: [str(value)]}


def as_inputs(form: Form, answers: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every saved answer of ``form`` as ``fields.html``'s ``values``."""
    out: dict[str, list[Any]] = {}
    for _, fld in form.fields():
        out.update(field_inputs(fld, answers.get(fld.id)))
    return out


def raw_with_files(raw: Mapping[str, Sequence[str]], form: Form,
                   answers: Mapping[str, Any]) -> dict[str, list[Any]]:
    """What a page shows after a refused POST: the typed inputs, and the files attached."""
    out: dict[str, list[Any]] = {k: list(v) for k, v in raw.items()}
    for _, fld in form.fields():
        if isinstance(fld, FileField) and answers.get(fld.id):
            out[f"{fld.id}.files"] = list(answers[fld.id])
    return out


def _option(fld: ChoiceField | DropdownField | CheckboxesField, value: str, lang: str) -> str:
    for o in fld.options:
        if o.value == value:
            return text(o.label, lang)
    return value


def shown(fld: AnyField, value: Any, lang: str) -> str:
    """An answer as the review page and the staff say it."""
    en = lang == "en"
    if value is None or value == "" or value == []:
        return ""
    if isinstance(fld, ChoiceField | DropdownField):
        return _option(fld, str(value), lang)
    if isinstance(fld, CheckboxesField):
        return (", " if en else "、").join(_option(fld, str(v), lang) for v in value)
    if isinstance(fld, ConsentField):
        return "Agreed" if en else "同意する"
    if isinstance(fld, DateField):
        day = _date(value)
        if day is None:
            return str(value)
        if en:
            return f"{day.day} {day:%B} {day.year}"
        return jp.to_wareki(day) if fld.display == "wareki" else \
            f"{day.year}年{day.month}月{day.day}日"
    if isinstance(fld, NameField) and isinstance(value, Mapping):
        name = " ".join(str(value.get(k) or "") for k in ("family", "given")).strip()
        kana = " ".join(str(value.get(k) or "") for k in ("family_kana", "given_kana")).strip()
        return f"{name}（{kana}）" if kana else name
    if isinstance(fld, AddressField) and isinstance(value, Mapping):
        postal = str(value.get("postal") or "")
        rest = " ".join(str(value.get(k) or "") for k in ADDRESS_PARTS[1:]).strip()
        return f"〒{jp.format_postal(postal)} {rest}" if postal else rest
    if isinstance(fld, FileField):
        return ", ".join(str(item.get("filename", "")) for item in value
                         if isinstance(item, Mapping))
    return str(value)
