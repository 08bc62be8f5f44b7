"""What the staff's submission pages and the export show of an answer (no aiohttp here).

Answers are labelled with the fields of the submission's own version (``service.version_of``):
a form edited later never relabels what a resident answered. Compound fields (name, address)
are one line on the detail page and one column per part in the CSV. Dates are shown as the
field displays them (和暦 for ``display: wareki``), so the CSV matches the paper register.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from hub.forms import jp
from hub.forms.model import (
    AddressField,
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

PARTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "name": (("family", "姓", "family name"), ("given", "名", "given name"),
             ("family_kana", "セイ", "family name (kana)"),
             ("given_kana", "メイ", "given name (kana)")),
    "address": (("postal", "郵便番号", "postal code"), ("prefecture", "都道府県", "prefecture"),
                ("city", "市区町村", "city"), ("street", "番地", "street"),
                ("building", "建物名", "building")),
}


def tr(text: Text | None, lang: str) -> str:
    if text is None:
        return ""
    return text.shown(lang)


@dataclass(frozen=True)
class Column:
    field_id: str
    part: str | None
    header: str


def answer_fields(form: Form) -> list[Any]:
    """Every answerable field of every page, in order."""
    return [f for p in form.pages for f in p.fields if not isinstance(f, FixedTextField)]


def columns(form: Form, lang: str) -> list[Column]:
    """The CSV's answer columns: one per field, one per part of a compound field."""
    out: list[Column] = []
    for f in answer_fields(form):
        label = tr(f.label, lang)
        parts = PARTS.get(f.type)
        if parts is None:
            out.append(Column(f.id, None, label))
            continue
        if isinstance(f, NameField) and f.furigana == "none":
            parts = parts[:2]
        for key, ja, en in parts:
            out.append(Column(f.id, key, f"{label}（{ja}）" if lang == "ja" else
                              f"{label} ({en})"))
    return out


def _date_text(f: DateField, value: Any, lang: str) -> str:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    if f.display == "wareki" and lang == "ja":
        try:
            return jp.to_wareki(day)
        except ValueError:
            pass
    return day.isoformat() if lang == "en" else f"{day.year}年{day.month}月{day.day}日"


def _label_of(f: ChoiceField | DropdownField | CheckboxesField, value: str, lang: str) -> str:
    for o in f.options:
        if o.value == value:
            return tr(o.label, lang)
    return value


def text_of(f: Any, value: Any, lang: str, part: str | None = None,
            files: Sequence[str] = ()) -> str:
    """One answer as text (a part of a compound one with ``part``); "" when unanswered."""
    if isinstance(f, FileField):
        return "\n".join(files)
    if value is None or value == "":
        return ""
    if isinstance(f, DateField):
        return _date_text(f, value, lang)
    if isinstance(f, ChoiceField | DropdownField):
        return _label_of(f, str(value), lang)
    if isinstance(f, CheckboxesField):
        items = value if isinstance(value, list | tuple) else [value]
        return ("、" if lang == "ja" else ", ").join(_label_of(f, str(v), lang) for v in items)
    if isinstance(f, ConsentField):
        return "同意" if lang == "ja" else "Agreed"
    if isinstance(f, NameField | AddressField) and isinstance(value, Mapping):
        if part is not None:
            got = str(value.get(part, ""))
            return jp.format_postal(got) if part == "postal" and got else got
        if isinstance(f, NameField):
            name = " ".join(str(value.get(k, "")) for k in ("family", "given")).strip()
            kana = " ".join(str(value.get(k, "")) for k in ("family_kana", "given_kana")).strip()
            return f"{name}（{kana}）" if kana else name
        postal = str(value.get("postal", ""))
        rest = " ".join(str(value.get(k, "")) for k in ("prefecture", "city", "street",
                                                       "building") if value.get(k))
        return f"〒{jp.format_postal(postal)} {rest}" if postal else rest
    return str(value)


def display(form: Form, answers: Mapping[str, Any], lang: str,
            files: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The detail page's rows ``{id, label, text}`` (unanswered fields shown empty)."""
    return [{"id": f.id, "label": tr(f.label, lang), "type": f.type,
             "text": text_of(f, answers.get(f.id), lang, files=files.get(f.id, ()))}
            for f in answer_fields(form)]


def row_cells(form: Form, answers: Mapping[str, Any], lang: str,
              files: Mapping[str, Sequence[str]]) -> list[str]:
    """The CSV's answer cells, in ``columns`` order."""
    by_id = {f.id: f for f in answer_fields(form)}
    return [text_of(by_id[c.field_id], answers.get(c.field_id), lang, c.part,
                    files.get(c.field_id, ())) for c in columns(form, lang)]


def haystack(answers: Mapping[str, Any]) -> str:
    """Every answer's text flattened, for the staff's search in memory."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        elif v is not None:
            out.append(str(v))

    walk(answers)
    return jp.nfkc("\n".join(out)).casefold()
