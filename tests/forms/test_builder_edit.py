"""The builder's pure changes (``hub.forms.builder_edit``): any sequence of adds, moves,
deletes and condition changes leaves a valid draft or refuses with a code, never anything
else; a refused change leaves the draft as it was."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.forms import builder_edit as edit
from hub.forms.builder_post import field_data, options_of
from hub.forms.builder_store import minimal_draft
from hub.forms.model import Form, form_problems
from hub.forms.versions import parse_form

OP = st.one_of(
    st.tuples(st.just("add_page")),
    st.tuples(st.just("add_field"), st.integers(0, 5), st.sampled_from(edit.FIELD_TYPES)),
    st.tuples(st.just("move_field"), st.integers(0, 30), st.sampled_from((-1, 1))),
    st.tuples(st.just("move_page"), st.integers(0, 5), st.sampled_from((-1, 1))),
    st.tuples(st.just("delete_field"), st.integers(0, 30)),
    st.tuples(st.just("delete_page"), st.integers(0, 5)),
    st.tuples(st.just("condition"), st.integers(0, 30), st.integers(0, 30),
              st.sampled_from(("equals", "not_equals", "in", "checked", "not_empty"))),
    st.tuples(st.just("page_condition"), st.integers(0, 5), st.integers(0, 30)),
)


def _field_ids(form: Form) -> list[str]:
    return [f.id for _, f in form.fields()] or ["nothing"]


def _apply(form: Form, op: tuple[Any, ...]) -> Form:
    kind = op[0]
    pages = [p.id for p in form.pages]
    ids = _field_ids(form)
    if kind == "add_page":
        return edit.add_page(form)
    if kind == "add_field":
        return edit.add_field(form, pages[int(op[1]) % len(pages)], str(op[2]))
    if kind == "move_field":
        return edit.move_field(form, ids[int(op[1]) % len(ids)], int(op[2]))
    if kind == "move_page":
        return edit.move_page(form, pages[int(op[1]) % len(pages)], int(op[2]))
    if kind == "delete_field":
        return edit.delete_field(form, ids[int(op[1]) % len(ids)])
    if kind == "delete_page":
        return edit.delete_page(form, pages[int(op[1]) % len(pages)])
    if kind == "condition":
        target = ids[int(op[1]) % len(ids)]
        on = ids[int(op[2]) % len(ids)]
        fld = form.field(target)
        if fld is None:
            raise edit.refuse("no_field", "field", "", "")
        data = fld.model_dump(mode="json", exclude_none=True)
        rule: dict[str, object] = {"field": on, "op": op[3]}
        if op[3] in ("equals", "not_equals"):
            rule["value"] = "a"
        elif op[3] == "in":
            rule["value"] = ["a"]
        data["condition"] = rule
        return edit.replace_field(form, target, data)
    pid = pages[int(op[1]) % len(pages)]
    page = form.pages[edit.page_index(form, pid)]
    on = ids[int(op[2]) % len(ids)]
    return edit.update_page(form, pid, page.title.model_dump(), {"field": on,
                                                                 "op": "not_empty"})


@settings(max_examples=150, deadline=None)
@given(st.lists(OP, max_size=25))
def test_any_sequence_keeps_the_draft_valid(ops: list[tuple[Any, ...]]) -> None:
    form = edit.add_page(minimal_draft("fx", "題", ""))
    for page, kind in (("p1", "choice"), ("p1", "consent"), ("p2", "checkboxes"),
                       ("p2", "text"), ("p2", "fixed_text")):
        form = edit.add_field(form, page, kind)
    for op in ops:
        before = form
        refused: edit.EditRefused | None = None
        try:
            form = _apply(form, op)
        except edit.EditRefused as exc:
            refused = exc
        if refused is not None:
            assert refused.issues
            assert all(i.code for i in refused.issues)
            assert form is before
            continue
        assert form_problems(form) == []
        assert parse_form(form.model_dump(mode="json")) == form  # stored and read back alike


def test_delete_refused_while_a_condition_refers() -> None:
    form = edit.add_field(minimal_draft("fx", "題", ""), "p1", "consent")
    form = edit.add_page(form)
    form = edit.update_page(form, "p2", {"ja": "次", "en": ""},
                            {"field": "q1", "op": "checked"})
    with pytest.raises(edit.EditRefused) as got:
        edit.delete_field(form, "q1")
    assert got.value.issues[0].code == "referenced"
    assert "p2" in got.value.issues[0].ja
    with pytest.raises(edit.EditRefused) as moved:
        edit.move_page(form, "p2", -1)
    assert moved.value.issues[0].code == "forward_reference"
    with pytest.raises(edit.EditRefused) as last:
        edit.delete_page(minimal_draft("fx", "題", ""), "p1")
    assert last.value.issues[0].code == "last_page"


def test_posted_settings() -> None:
    assert options_of("a|あ|A\n\nb|い") == [
        {"value": "a", "label": {"ja": "あ", "en": "A"}},
        {"value": "b", "label": {"ja": "い", "en": ""}}]
    with pytest.raises(edit.EditRefused) as bad:
        options_of("a|b|c|d")
    assert bad.value.issues[0].code == "bad_option"
    form = edit.add_field(minimal_draft("fx", "題", ""), "p1", "number")
    fld = form.pages[0].fields[0]
    with pytest.raises(edit.EditRefused) as nan:
        field_data(fld, {"label_ja": ["数"], "min": ["abc"]})
    assert nan.value.issues[0].where == "min"
    with pytest.raises(edit.EditRefused) as over:
        edit.replace_field(form, fld.id, field_data(fld, {"label_ja": ["数"], "min": ["5"],
                                                          "max": ["1"]}))
    assert over.value.issues[0].code == "min_over_max"


POSTED_KEYS = ("label_ja", "label_en", "help_ja", "options", "min", "max", "min_length",
               "max_length", "max_mb", "max_files", "min_selected", "max_selected", "display",
               "furigana", "prefill", "cond_field", "cond_op", "cond_value", "text_ja",
               "required", "integer", "allowed", "cond_field_2", "cond_op_2", "cond_value_2",
               "cond_field_3", "cond_op_3", "cond_join")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(edit.FIELD_TYPES),
       st.dictionaries(st.sampled_from(POSTED_KEYS),
                       st.lists(st.one_of(st.text(max_size=30), st.sampled_from(
                           ("1", "-3", "2.5", "pdf", "a|あ|A\nb|い", "q1", "in", "checked",
                            "wareki", "hiragana", "name", "2026-01-01"))), max_size=2),
                       max_size=12))
def test_any_posted_settings_save_or_refuse(kind: str, posted: dict[str, list[str]]) -> None:
    form = edit.add_field(edit.add_field(minimal_draft("fx", "題", ""), "p1", "choice"),
                          "p1", kind)
    fld = form.pages[0].fields[1]
    refused: edit.EditRefused | None = None
    try:
        new = edit.replace_field(form, fld.id, field_data(fld, posted))
    except edit.EditRefused as exc:
        refused = exc
    if refused is not None:
        assert refused.issues
        return
    assert form_problems(new) == []
    assert new.pages[0].fields[1].type == kind
