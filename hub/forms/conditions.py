"""Conditional display: which pages and fields a resident sees, given the answers so far.

Why answers of hidden fields are dropped (``keep_visible``): a resident who chose "yes", filled
in the details, then went back and chose "no" must not submit the details anyway. Because a
condition may only use answers given before it (``model.form_problems``), one pass in form order
decides everything, and a field hidden by a hidden field is hidden too: its controlling answer
has already been dropped when it is looked at.

Answers may be normalised values (``validate``) or raw form strings; they are compared as text:
a choice is its value, checkboxes are their ticked values, a consent is ``"true"`` when ticked,
a number or date is its ``str``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from hub.forms.model import AllOf, AnyField, AnyOf, Condition, Form, Page, Rule


def texts(answer: object) -> tuple[str, ...]:
    """An answer as the non-empty texts it consists of (empty tuple: not answered)."""
    if answer is None or answer is False:
        return ()
    if answer is True:
        return ("true",)
    if isinstance(answer, str):
        return (answer.strip(),) if answer.strip() else ()
    if isinstance(answer, int | Decimal | float | date):
        return (str(answer),)
    if isinstance(answer, Mapping):
        return tuple(t for v in answer.values() for t in texts(v))
    if isinstance(answer, Sequence):
        return tuple(t for v in answer for t in texts(v))
    return (str(answer),)  # an uploaded file reference: present


def holds(cond: Condition | None, answers: Mapping[str, Any]) -> bool:
    """Whether ``cond`` is true for ``answers``; no condition always holds."""
    if cond is None:
        return True
    if isinstance(cond, AllOf):
        return all(holds(c, answers) for c in cond.all)
    if isinstance(cond, AnyOf):
        return any(holds(c, answers) for c in cond.any)
    return _rule(cond, texts(_answer(answers, cond.field)))


def _answer(answers: Mapping[str, Any], field_id: str) -> object:
    """A field's answer: its value, or (raw input of a name or address) its parts."""
    if field_id in answers:
        return answers[field_id]
    return _own(answers, field_id)


def _rule(rule: Rule, given: tuple[str, ...]) -> bool:
    value = rule.value
    if rule.op == "equals":
        return value in given  # for checkboxes: that option is ticked
    if rule.op == "not_equals":
        return value not in given
    if rule.op == "in":
        return any(v in given for v in value or ())
    if rule.op == "checked":
        return bool(given) if value is None else value in given
    return bool(given)  # not_empty


def _own(answers: Mapping[str, Any], field_id: str) -> dict[str, Any]:
    """The answers that belong to a field: its id and its parts (``addr.postal``)."""
    prefix = field_id + "."
    return {k: v for k, v in answers.items() if k == field_id or k.startswith(prefix)}


def _walk(form: Form, answers: Mapping[str, Any]) -> tuple[list[Page], dict[str, Any]]:
    pages: list[Page] = []
    kept: dict[str, Any] = {}
    for page in form.pages:
        if not holds(page.condition, kept):
            continue
        pages.append(page)
        for fld in page.fields:
            if holds(fld.condition, kept):
                kept.update(_own(answers, fld.id))
    return pages, kept


def visible_pages(form: Form, answers: Mapping[str, Any]) -> list[Page]:
    """The pages to show, in order, given all answers so far."""
    return _walk(form, answers)[0]


def visible_fields(page: Page, answers: Mapping[str, Any]) -> list[AnyField]:
    """The fields of ``page`` to show. ``answers``: those of earlier pages as kept
    (``keep_visible``, or ``validate`` values) and those posted on this page; a field whose
    controlling field on this page is hidden is hidden too."""
    kept = dict(answers)
    for fld in page.fields:  # drop this page's own answers first, then add back the visible
        for key in _own(answers, fld.id):
            kept.pop(key, None)
    shown: list[AnyField] = []
    for fld in page.fields:
        if holds(fld.condition, kept):
            shown.append(fld)
            kept.update(_own(answers, fld.id))
    return shown


def keep_visible(form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
    """``answers`` without those of hidden fields and pages (and without unknown keys): what
    may be submitted."""
    return _walk(form, answers)[1]
