"""The form definition: every field type, and every refusal with its code (hub/forms/model.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.forms.model import REFUSALS, Form, FormInvalid, Rule, form_json_schema, form_problems
from hub.forms.versions import parse_form

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "forms" / "form-schema.json"


def T(ja: str, en: str = "") -> dict[str, str]:
    return {"ja": ja, "en": en}


def options(*values: str) -> list[dict[str, Any]]:
    return [{"value": v, "label": T(v, v)} for v in values]


def every_type() -> dict[str, Any]:
    """A form with one field of every type (the builder's palette)."""
    return {
        "id": "juminhyo", "title": T("住民票の写しの請求", "Request a residence certificate"),
        "description": T("請求者の情報を入力してください"), "retention_days": 1826,
        "identity": "email_code", "pages": [
            {"id": "who", "title": T("請求者", "Applicant"), "fields": [
                {"type": "fixed_text", "id": "intro", "text": T("**本人確認**が必要です")},
                {"type": "name", "id": "name", "label": T("氏名", "Name"), "prefill": "name"},
                {"type": "address", "id": "addr", "label": T("住所", "Address"),
                 "prefill": "address"},
                {"type": "date", "id": "dob", "label": T("生年月日", "Date of birth"),
                 "display": "wareki", "min": "1900-01-01", "prefill": "birth_date"},
                {"type": "email", "id": "mail", "label": T("メール", "Email"), "prefill": "email"},
                {"type": "phone", "id": "tel", "label": T("電話番号", "Phone"), "prefill": "phone",
                 "required": False},
            ]},
            {"id": "what", "title": T("請求内容"), "fields": [
                {"type": "choice", "id": "purpose", "label": T("使いみち"),
                 "options": options("work", "other")},
                {"type": "text", "id": "purpose_other", "label": T("その他の使いみち"),
                 "condition": {"field": "purpose", "op": "equals", "value": "other"}},
                {"type": "number", "id": "copies", "label": T("通数"), "min": 1, "max": 10,
                 "integer": True},
                {"type": "dropdown", "id": "office", "label": T("受取窓口"),
                 "options": options("honcho", "shisho")},
                {"type": "checkboxes", "id": "items", "label": T("記載事項"),
                 "options": options("honseki", "setainushi", "mynumber"), "max_selected": 2,
                 "required": False},
                {"type": "long_text", "id": "note", "label": T("備考"), "required": False},
                {"type": "file", "id": "idcard", "label": T("本人確認書類"), "max_files": 2},
                {"type": "consent", "id": "agree", "label": T("同意"),
                 "text": T("記載内容に誤りはありません", "The details are correct")},
            ]},
            {"id": "more", "title": T("追加"), "condition": {"all": [
                {"field": "items", "op": "checked", "value": "mynumber"},
                {"any": [{"field": "copies", "op": "in", "value": ["2", "3"]},
                         {"field": "note", "op": "not_empty"}]}]},
             "fields": [{"type": "text", "id": "reason", "label": T("理由")}]},
        ]}


def codes(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FormInvalid) as info:
        parse_form(data)
    return [p.code for p in info.value.problems]


def test_every_field_type_parses() -> None:
    form = parse_form(every_type())
    kinds = {f.type for _, f in form.fields()}
    assert kinds == {"text", "long_text", "number", "email", "phone", "date", "choice",
                     "checkboxes", "dropdown", "name", "address", "file", "consent", "fixed_text"}
    assert form.field("dob") is not None
    assert form.field("nope") is None
    assert form.status == "draft"
    assert form_problems(form) == []


def test_form_is_deeply_immutable() -> None:
    form = parse_form(every_type())
    with pytest.raises(ValidationError):
        form.title = form.title.model_copy()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        form.pages[0].title.ja = "x"  # type: ignore[misc]
    assert isinstance(form.pages, tuple)
    assert isinstance(form.pages[0].fields, tuple)


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    data = every_type()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "code"), [
    (["pages", 1, "fields", 0, "id"], "name", "duplicate_id"),
    (["pages", 1, "id"], "who", "duplicate_id"),
    (["pages", 1, "fields", 1, "condition"], {"field": "ghost", "op": "not_empty"},
     "unknown_field"),
    (["pages", 0, "fields", 1, "condition"], {"field": "mail", "op": "not_empty"},
     "forward_reference"),
    (["pages", 1, "fields", 1, "condition"], {"field": "purpose_other", "op": "not_empty"},
     "forward_reference"),  # itself
    (["pages", 0, "condition"], {"field": "name", "op": "not_empty"}, "forward_reference"),
    (["pages", 1, "fields", 1, "condition"], {"field": "intro", "op": "not_empty"},
     "not_answerable"),
    (["pages", 1, "fields", 0, "options"], [], "no_options"),
    (["pages", 1, "fields", 0, "options"], options("a", "a"), "duplicate_option"),
    (["pages", 1, "fields", 2, "min"], 11, "min_over_max"),
    (["pages", 1, "fields", 4, "min_selected"], 3, "min_over_max"),
    (["pages", 0, "fields", 3, "max"], "1899-12-31", "min_over_max"),
    (["pages", 0, "fields", 4, "prefill"], "phone", "prefill_mismatch"),
    (["pages", 1, "fields", 1, "condition"], {"field": "purpose", "op": "equals", "value": "x"},
     "unknown_option"),
    (["pages", 1, "fields", 1, "condition"], {"field": "purpose", "op": "checked"},
     "bad_condition"),
    (["pages", 1, "fields", 1, "condition"], {"field": "purpose", "op": "in", "value": "work"},
     "bad_condition"),
    (["pages", 1, "fields", 0, "type"], "radio", "unknown_type"),
    (["pages", 1, "fields", 0, "colour"], "red", "unexpected"),
    (["retention_days"], 1827, "out_of_range"),
    (["id"], "Juminhyo!", "bad_id"),
    (["pages"], [], "out_of_range"),
])
def test_refusals_have_stable_codes(path: list[Any], value: Any, code: str) -> None:
    found = codes(_with(path, value))
    assert code in found
    with pytest.raises(FormInvalid) as info:
        parse_form(_with(path, value))
    for problem in info.value.problems:  # every refusal has both texts, no placeholders left
        assert problem.code in REFUSALS
        assert problem.ja
        assert problem.en
        assert "{" not in problem.ja + problem.en


def test_all_problems_reported_at_once() -> None:
    data = every_type()
    data["pages"][1]["fields"][0]["options"] = []
    data["pages"][1]["fields"][2]["min"] = 99
    # the condition on purpose_other now names an option that is gone: said too
    assert sorted(codes(data)) == ["min_over_max", "no_options", "unknown_option"]


def test_problem_texts_name_the_field() -> None:
    data = _with(["pages", 0, "fields", 1, "condition"], {"field": "mail", "op": "not_empty"})
    with pytest.raises(FormInvalid) as info:
        parse_form(data)
    (problem,) = info.value.problems
    assert problem.where == "pages[0].fields[1].condition"
    assert "「mail」" in problem.ja
    assert "mail" in problem.en


@given(st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=5))
def test_condition_only_on_earlier_fields(target: int, holder: int) -> None:
    """A chain of text fields across pages; a condition is refused exactly when it points at
    its own field or a later one (so no cycle can ever be built)."""
    fields = [{"type": "text", "id": f"f{i}", "label": T(f"項目{i}")} for i in range(6)]
    fields[holder]["condition"] = {"field": f"f{target}", "op": "not_empty"}
    pages = [{"id": f"p{i}", "title": T("頁"), "fields": fields[i:i + 2]} for i in (0, 2, 4)]
    data = {"id": "chain", "title": T("連鎖"), "retention_days": 30, "pages": pages}
    if target < holder:
        assert isinstance(parse_form(data), Form)
    else:
        assert codes(data) == ["forward_reference"]


def test_nested_conditions_checked() -> None:
    data = every_type()
    data["pages"][2]["condition"]["all"][1]["any"][1]["field"] = "reason"
    assert codes(data) == ["forward_reference"]


def test_rule_value_shapes() -> None:
    assert Rule(field="a", op="in", value=("x", "y")).value == ("x", "y")


def test_committed_schema_is_current() -> None:
    """docs/forms/form-schema.json is generated; regenerate it when the model changes:
    ``python -c 'from hub.forms.model import form_json_schema; ...'`` (see docs/forms/README)."""
    generated = json.loads(json.dumps(form_json_schema()))
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == generated


def test_schema_describes_every_field_type() -> None:
    schema = form_json_schema()
    union = schema["$defs"]["Page"]["properties"]["fields"]["items"]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == {
        f.type for _, f in parse_form(every_type()).fields()}
    assert schema["properties"]["retention_days"]["maximum"] == 1826


def test_parse_never_mutates_input() -> None:
    data = every_type()
    before = copy.deepcopy(data)
    parse_form(data)
    assert data == before
