"""The form definition (F1): pages of typed fields, conditions, identity and retention.

Why pydantic models, frozen and with tuples: a form is data that staff build, export, import and
publish; one definition gives the checks, the JSON schema (docs/forms/form-schema.json) and deep
immutability, so a published version cannot change under a resident mid-answer.

Refusals carry a stable ``code`` (for programs and tests) and a sentence in ja and en (for the
builder), like ``edge.devices.health.REASONS``; ``versions.parse_form`` turns pydantic's
errors into these, so callers never see anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

SLUG_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"  # ids: HTML input names (``id.part``), so no dots
MAX_RETENTION_DAYS = 1826  # five years including a leap day (F5)
MAX_FEE_YEN = 1_000_000  # a fee is whole yen, 0 (none) to one million (F3)
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Identity = Literal["anonymous", "email_code", "oidc"]
Prefill = Literal["name", "address", "birth_date", "email", "phone"]
Op = Literal["equals", "not_equals", "in", "checked", "not_empty"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Frozen):
    """A text staff write in both languages; ``en`` empty means "show the Japanese"."""

    ja: str = Field(min_length=1, max_length=10000)
    en: str = Field(default="", max_length=10000)

    def shown(self, lang: str) -> str:
        """The text in ``lang`` (``en`` falls back to Japanese when staff left it empty)."""
        return self.en if lang == "en" and self.en else self.ja


class Option(_Frozen):
    value: str = Field(min_length=1, max_length=100)
    label: Text


class Rule(_Frozen):
    """One test on an earlier answer. ``value``: a string for equals/not_equals, a list for
    ``in``, an option value (or nothing) for ``checked``, nothing for ``not_empty``."""

    field: Slug
    op: Op
    value: str | tuple[str, ...] | None = None


class AllOf(_Frozen):
    all: tuple[Condition, ...] = Field(min_length=1)


class AnyOf(_Frozen):
    any: tuple[Condition, ...] = Field(min_length=1)


Condition = Rule | AllOf | AnyOf


class _Answerable(_Frozen):
    id: Slug
    label: Text
    help: Text | None = None
    required: bool = True
    condition: Condition | None = None
    prefill: Prefill | None = None


class TextField(_Answerable):
    type: Literal["text"]
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=1000, ge=1, le=1000)


class LongTextField(_Answerable):
    type: Literal["long_text"]
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=10000, ge=1, le=10000)


class NumberField(_Answerable):
    type: Literal["number"]
    min: int | float | None = None
    max: int | float | None = None
    integer: bool = False


class EmailField(_Answerable):
    type: Literal["email"]


class PhoneField(_Answerable):
    type: Literal["phone"]


class DateField(_Answerable):
    type: Literal["date"]
    display: Literal["seireki", "wareki"] = "seireki"
    min: date | None = None
    max: date | None = None


class ChoiceField(_Answerable):
    """Radio buttons: one answer."""

    type: Literal["choice"]
    options: tuple[Option, ...] = ()


class DropdownField(_Answerable):
    type: Literal["dropdown"]
    options: tuple[Option, ...] = ()


class CheckboxesField(_Answerable):
    type: Literal["checkboxes"]
    options: tuple[Option, ...] = ()
    min_selected: int = Field(default=0, ge=0)
    max_selected: int | None = Field(default=None, ge=1)


class NameField(_Answerable):
    """Family and given name; furigana in katakana or hiragana (or none, for a nickname)."""

    type: Literal["name"]
    furigana: Literal["katakana", "hiragana", "none"] = "katakana"


class AddressField(_Answerable):
    """Postal code (7 digits), prefecture, city, street; building optional."""

    type: Literal["address"]


class FileField(_Answerable):
    type: Literal["file"]
    max_bytes: int = Field(default=10_000_000, ge=1, le=100_000_000)
    allowed_types: tuple[str, ...] = ("application/pdf", "image/jpeg", "image/png")
    max_files: int = Field(default=1, ge=1, le=20)


class ConsentField(_Answerable):
    """A statement the resident must tick when it is shown (``required`` is ignored)."""

    type: Literal["consent"]
    text: Text


class FixedTextField(_Frozen):
    """Guidance between fields (markdown-ish); never answered, never prefilled."""

    type: Literal["fixed_text"]
    id: Slug
    text: Text
    condition: Condition | None = None


AnyField = Annotated[
    TextField | LongTextField | NumberField | EmailField | PhoneField | DateField
    | ChoiceField | DropdownField | CheckboxesField | NameField | AddressField | FileField
    | ConsentField | FixedTextField,
    Field(discriminator="type"),
]
OPTION_TYPES = ("choice", "dropdown", "checkboxes")
PREFILL_TYPES: dict[str, str] = {"name": "name", "address": "address", "birth_date": "date",
                                 "email": "email", "phone": "phone"}


class Page(_Frozen):
    id: Slug
    title: Text
    fields: tuple[AnyField, ...] = ()
    condition: Condition | None = None


class Form(_Frozen):
    """One form. ``version`` and ``status`` change only through ``versions.publish``; a
    submission refers to (``id``, ``version``) of a published form."""

    id: Slug
    title: Text
    description: Text | None = None
    pages: tuple[Page, ...] = Field(min_length=1, max_length=100)
    retention_days: int = Field(ge=1, le=MAX_RETENTION_DAYS)
    identity: Identity = "anonymous"
    # the fee paid online at the end of the application (0: none); checked in form_problems
    # (``bad_fee``) so the builder gets one sentence, not pydantic's
    fee_yen: int = Field(default=0, strict=True,
                         json_schema_extra={"minimum": 0, "maximum": MAX_FEE_YEN})
    fee_note: Text | None = None  # what the fee is for, shown next to it
    version: int = Field(default=1, ge=1)
    status: Literal["draft", "published"] = "draft"

    @model_validator(mode="after")
    def _rules(self) -> Form:
        found = form_problems(self)
        if found:
            raise PydanticCustomError("form_rules", "form breaks {count} rule(s)",
                                      {"count": len(found), "problems": tuple(found)})
        return self

    def fields(self) -> Iterator[tuple[Page, AnyField]]:
        for page in self.pages:
            for fld in page.fields:
                yield page, fld

    def field(self, field_id: str) -> AnyField | None:
        return next((f for _, f in self.fields() if f.id == field_id), None)


AllOf.model_rebuild()
AnyOf.model_rebuild()


# --- refusals ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    en: str
    ja: str


REFUSALS: dict[str, Refusal] = {r.code: r for r in (
    Refusal("duplicate_id", "The id {id} is used twice", "ID「{id}」が重複しています"),
    Refusal("unknown_field", "The condition refers to {id}, which does not exist",
            "条件が存在しない項目「{id}」を参照しています"),
    Refusal("forward_reference", "The condition refers to {id}, which comes later; a condition "
            "may only use answers given before it", "条件が後にある項目「{id}」を参照しています。"
            "条件には、それより前の回答しか使えません"),
    Refusal("not_answerable", "The condition refers to {id}, which takes no answer",
            "条件が回答のない項目「{id}」を参照しています"),
    Refusal("bad_condition", "The condition on {id} does not fit the field: {why}",
            "「{id}」の条件が項目に合いません（{why}）"),
    Refusal("unknown_option", "The condition uses {value}, which is not an option of {id}",
            "条件の値「{value}」は「{id}」の選択肢にありません"),
    Refusal("no_options", "Add at least one option to {id}", "「{id}」に選択肢を追加してください"),
    Refusal("duplicate_option", "The option {value} appears twice in {id}",
            "「{id}」の選択肢「{value}」が重複しています"),
    Refusal("min_over_max", "The minimum of {id} is larger than its maximum",
            "「{id}」の最小値が最大値を超えています"),
    Refusal("prefill_mismatch", "{id} cannot be prefilled with {prefill}",
            "「{id}」には「{prefill}」を事前入力できません"),
    Refusal("unknown_type", "Unknown field type at {where}", "{where} の項目の種類が不明です"),
    Refusal("missing", "{where} is missing", "{where} がありません"),
    Refusal("unexpected", "{where} is not part of a form",
            "{where} はフォームの項目ではありません"),
    Refusal("out_of_range", "{where} is out of range", "{where} が範囲外です"),
    Refusal("bad_id", "{where} must be lower-case letters, digits or _ and start with a letter",
            "{where} は英小文字で始まる英小文字・数字・_ で指定してください"),
    Refusal("bad_value", "{where} is not valid", "{where} が正しくありません"),
    Refusal("bad_fee", "The fee must be a whole number of yen from 0 to 1,000,000",
            "手数料は0円から1,000,000円までの整数で入力してください"),
    Refusal("not_json", "The file is not JSON (UTF-8)", "ファイルが JSON（UTF-8）ではありません"),
    Refusal("not_export", "The file is not a form exported from madoguchi",
            "ファイルが madoguchi から書き出したフォームではありません"),
    Refusal("export_version", "The file was written by an unknown version of the export format",
            "ファイルの書き出し形式のバージョンに対応していません"),
)}


@dataclass(frozen=True, slots=True)
class Problem:
    """One refusal, located: ``where`` is a path such as ``pages[1].fields[0].condition``."""

    code: str
    where: str
    params: Mapping[str, str]

    @property
    def en(self) -> str:
        return REFUSALS[self.code].en.format(where=self.where, **self.params)

    @property
    def ja(self) -> str:
        return REFUSALS[self.code].ja.format(where=self.where, **self.params)


class FormInvalid(ValueError):
    """A definition that is not a valid form; ``problems`` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.code} at {p.where}" for p in problems))
        self.problems = tuple(problems)


def _conditions(cond: Condition) -> Iterator[Rule]:
    if isinstance(cond, Rule):
        yield cond
    else:
        for sub in cond.all if isinstance(cond, AllOf) else cond.any:
            yield from _conditions(sub)


def _rule_problem(rule: Rule, target: AnyField) -> tuple[str, dict[str, str]] | None:
    kind, op, value = target.type, rule.op, rule.value
    why = ""
    if op in ("equals", "not_equals") and not isinstance(value, str):
        why = "value must be one text"
    elif op == "in" and not isinstance(value, tuple):
        why = "value must be a list"
    elif op == "checked" and kind not in ("consent", "checkboxes"):
        why = "checked is for consent and checkboxes"
    elif op == "checked" and kind == "consent" and value is not None:
        why = "consent takes no value"
    elif op == "checked" and not (value is None or isinstance(value, str)):
        why = "value must be one option"
    elif op == "not_empty" and value is not None:
        why = "not_empty takes no value"
    if why:
        return "bad_condition", {"id": rule.field, "why": why}
    options = getattr(target, "options", None)
    if options is not None and value is not None:
        known = {o.value for o in options}
        for v in (value,) if isinstance(value, str) else value:
            if v not in known:
                return "unknown_option", {"id": rule.field, "value": v}
    return None


def form_problems(form: Form) -> list[Problem]:
    """Every rule the shape alone cannot say: unique ids, conditions only on earlier answers
    (so there can be no cycle), options present and unique, min ≤ max, prefill fits."""
    out: list[Problem] = []
    order: dict[str, AnyField] = {}  # the fields before the point being checked
    all_ids = {f.id for _, f in form.fields()}
    pages_seen: set[str] = set()
    if not 0 <= form.fee_yen <= MAX_FEE_YEN:
        out.append(Problem("bad_fee", "fee_yen", {}))

    def check(cond: Condition | None, where: str) -> None:
        for rule in _conditions(cond) if cond is not None else ():
            seen = order.get(rule.field)
            if seen is None:
                code = "forward_reference" if rule.field in all_ids else "unknown_field"
                out.append(Problem(code, where, {"id": rule.field}))
            elif seen.type == "fixed_text":
                out.append(Problem("not_answerable", where, {"id": rule.field}))
            elif (bad := _rule_problem(rule, seen)) is not None:
                out.append(Problem(bad[0], where, bad[1]))

    for p, page in enumerate(form.pages):
        if page.id in pages_seen:
            out.append(Problem("duplicate_id", f"pages[{p}].id", {"id": page.id}))
        pages_seen.add(page.id)
        check(page.condition, f"pages[{p}].condition")
        for f, fld in enumerate(page.fields):
            where = f"pages[{p}].fields[{f}]"
            check(fld.condition, f"{where}.condition")
            if fld.id in order:
                out.append(Problem("duplicate_id", f"{where}.id", {"id": fld.id}))
            else:
                order[fld.id] = fld
            out.extend(_field_problems(fld, where))
    return out


def _field_problems(fld: AnyField, where: str) -> Iterator[Problem]:
    ident = {"id": fld.id}
    if fld.type in OPTION_TYPES:
        options = getattr(fld, "options", ())
        if not options:
            yield Problem("no_options", f"{where}.options", ident)
        values = [o.value for o in options]
        for v in sorted({v for v in values if values.count(v) > 1}):
            yield Problem("duplicate_option", f"{where}.options", {"id": fld.id, "value": v})
    low, high = _bounds(fld)
    if low is not None and high is not None and low > high:
        yield Problem("min_over_max", where, ident)
    prefill = getattr(fld, "prefill", None)
    if prefill is not None and PREFILL_TYPES[prefill] != fld.type:
        yield Problem("prefill_mismatch", f"{where}.prefill", {"id": fld.id, "prefill": prefill})


def _bounds(fld: AnyField) -> tuple[Any, Any]:
    if isinstance(fld, TextField | LongTextField):
        return fld.min_length, fld.max_length
    if isinstance(fld, NumberField | DateField):
        return fld.min, fld.max
    if isinstance(fld, CheckboxesField):
        return fld.min_selected, fld.max_selected
    return None, None


def form_json_schema() -> dict[str, Any]:
    """The JSON schema of a form definition (docs/forms/form-schema.json is this, committed)."""
    schema = Form.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://madoguchi.example/schemas/form.json"
    return schema
