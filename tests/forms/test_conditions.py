"""Conditional display and dropping hidden answers (hub/forms/conditions.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.conditions import holds, keep_visible, texts, visible_fields, visible_pages
from hub.forms.model import AllOf, AnyOf, Form, Rule
from hub.forms.versions import parse_form

VALUES = ("a", "b", "c")


def T(ja: str) -> dict[str, str]:
    return {"ja": ja}


def choice(fid: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "choice", "id": fid, "label": T(fid),
                           "options": [{"value": v, "label": T(v)} for v in VALUES]}
    if condition:
        out["condition"] = condition
    return out


@st.composite
def rules(draw: st.DrawFn, before: int) -> dict[str, Any] | None:
    if before == 0 or draw(st.booleans()):
        return None
    target = f"f{draw(st.integers(0, before - 1))}"
    op = draw(st.sampled_from(["equals", "not_equals", "in", "not_empty"]))
    value: Any = None
    if op in ("equals", "not_equals"):
        value = draw(st.sampled_from(VALUES))
    elif op == "in":
        value = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3))
    rule = {"field": target, "op": op} | ({} if value is None else {"value": value})
    if draw(st.booleans()):
        return rule
    return {draw(st.sampled_from(["all", "any"])): [rule, {"field": target, "op": "not_empty"}]}


@st.composite
def chain_forms(draw: st.DrawFn) -> Form:
    """Choice fields f0..fn on a few pages, each field and page maybe conditional on an
    earlier field (the model allows no other kind)."""
    count = draw(st.integers(1, 8))
    cuts = sorted(set(draw(st.lists(st.integers(1, count), max_size=3))) | {count})
    pages, start = [], 0
    for p, end in enumerate(cuts):
        if end <= start:
            continue
        fields = [choice(f"f{i}", draw(rules(i))) for i in range(start, end)]
        page: dict[str, Any] = {"id": f"p{p}", "title": T("頁"), "fields": fields}
        if (cond := draw(rules(start))) is not None:
            page["condition"] = cond
        pages.append(page)
        start = end
    return parse_form({"id": "chain", "title": T("連鎖"), "retention_days": 7, "pages": pages})


answers_for = st.dictionaries(
    st.sampled_from([f"f{i}" for i in range(8)] + ["junk", "f1.part"]),
    st.sampled_from((*VALUES, "")), max_size=10)


@given(chain_forms(), answers_for)
def test_hidden_answers_never_returned(form: Form, answers: dict[str, Any]) -> None:
    kept = keep_visible(form, answers)
    # evaluating on the final result is the same as in order, since conditions look back only
    for page in form.pages:
        page_shown = holds(page.condition, kept)
        for fld in page.fields:
            shown = page_shown and holds(fld.condition, kept)
            assert (fld.id in kept) == (shown and fld.id in answers), fld.id
            if fld.id in kept:
                assert kept[fld.id] == answers[fld.id]
    assert "junk" not in kept
    assert keep_visible(form, kept) == kept  # nothing left to drop


@given(chain_forms(), answers_for)
def test_visible_pages_and_fields_agree_with_keep_visible(form: Form,
                                                          answers: dict[str, Any]) -> None:
    kept = keep_visible(form, answers)
    pages = visible_pages(form, answers)
    assert [p.id for p in pages] == [p.id for p in form.pages if holds(p.condition, kept)]
    shown = {f.id for p in pages for f in visible_fields(p, kept)}
    assert {key.split(".")[0] for key in kept} <= shown  # "f1.part" is a part of f1
    for page in pages:
        # what a page sees: kept answers of the other pages, everything posted on this one
        mine = {f.id for f in page.fields}
        seen = {k: v for k, v in kept.items() if k.split(".")[0] not in mine} | {
            k: v for k, v in answers.items() if k.split(".")[0] in mine}
        assert [f.id for f in visible_fields(page, seen)] == [
            f.id for f in page.fields if holds(f.condition, kept)]


def test_changed_answer_drops_stale_details() -> None:
    form = parse_form({"id": "move", "title": T("転居"), "retention_days": 30, "pages": [
        {"id": "p1", "title": T("1"), "fields": [
            choice("f0"),
            {"type": "address", "id": "old", "label": T("旧住所"),
             "condition": {"field": "f0", "op": "equals", "value": "a"}},
            choice("f1", {"field": "old", "op": "not_empty"})]},
        {"id": "p2", "title": T("2"), "condition": {"field": "f1", "op": "equals", "value": "b"},
         "fields": [choice("f2")]}]})
    details = {"old.postal": "1000001", "old.city": "千代田区"}
    first = {"f0": "a", **details, "f1": "b", "f2": "c"}
    assert keep_visible(form, first) == first
    changed = first | {"f0": "b"}
    # the address is hidden, so f1 (shown only with an address) and page 2 go too
    assert keep_visible(form, changed) == {"f0": "b"}
    assert [p.id for p in visible_pages(form, changed)] == ["p1"]
    assert [f.id for f in visible_fields(form.pages[0], changed)] == ["f0"]


@pytest.mark.parametrize(("answer", "want"), [
    (None, ()), ("", ()), ("  x ", ("x",)), (True, ("true",)), (False, ()),
    (3, ("3",)), (Decimal("2.5"), ("2.5",)), (date(2026, 12, 6), ("2026-12-06",)),
    (("a", "b"), ("a", "b")), ({"family": "山田", "given": ""}, ("山田",)), ([], ()),
])
def test_answers_as_texts(answer: object, want: tuple[str, ...]) -> None:
    assert texts(answer) == want


def test_operators() -> None:
    answers = {"c": ("x", "y"), "s": "a", "ok": True, "n": 2, "e": ""}
    assert holds(Rule(field="s", op="equals", value="a"), answers)
    assert not holds(Rule(field="s", op="not_equals", value="a"), answers)
    assert holds(Rule(field="c", op="checked", value="y"), answers)
    assert not holds(Rule(field="c", op="checked", value="z"), answers)
    assert holds(Rule(field="ok", op="checked"), answers)
    assert not holds(Rule(field="missing", op="checked"), answers)
    assert holds(Rule(field="n", op="in", value=("1", "2")), answers)
    assert not holds(Rule(field="e", op="not_empty"), answers)
    assert holds(Rule(field="missing", op="not_equals", value="a"), answers)
    yes, no = Rule(field="s", op="not_empty"), Rule(field="e", op="not_empty")
    assert holds(AnyOf(any=(no, yes)), answers)
    assert not holds(AllOf(all=(no, yes)), answers)
    assert holds(AllOf(all=(yes, AnyOf(any=(yes,)))), answers)
    assert holds(None, {})
