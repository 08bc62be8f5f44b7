"""Versions, copies, export and import of forms.

Why versions: a resident who opened a form must finish the form they started, even if staff
publish a changed one meanwhile (F1). So a published form is never edited: ``publish`` returns
a frozen copy with its number, staff edit a new draft (``next_draft``), and a submission records
``(form id, version)`` plus ``digest`` of the exact definition it was answered against; the
store keeps every published version as long as a submission refers to it.

Why export/import: a ward must be able to move its forms to another system (003 §10). The
export is plain JSON with a format name and version; import accepts only that, and refuses
anything else with problems in ja and en (``FormInvalid``), never a stack trace.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError

from hub.forms.model import Form, FormInvalid, Problem

EXPORT_FORMAT = "madoguchi-form"
EXPORT_VERSION = 1


_PYDANTIC: dict[str, str] = {
    "missing": "missing", "extra_forbidden": "unexpected", "union_tag_invalid": "unknown_type",
    "union_tag_not_found": "unknown_type", "string_pattern_mismatch": "bad_id",
    "greater_than_equal": "out_of_range", "less_than_equal": "out_of_range",
    "too_short": "out_of_range", "too_long": "out_of_range",
    "string_too_short": "missing", "string_too_long": "out_of_range",
}


_TYPE_PARTS = frozenset({"str", "int", "float", "date", "bool", "none"})


def _path(loc: tuple[int | str, ...]) -> str:
    """``pages[0].fields[1].label.ja``: pydantic also puts union members and discriminator
    tags into the path (``Rule``, ``str``, ``text``); they mean nothing to staff, so drop them."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in _TYPE_PARTS or part[:1].isupper() or "[" in part:
            continue
        elif not (i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] == "fields"):
            parts.append(f".{part}")
    return "".join(parts).lstrip(".") or "form"


def problems_of(exc: ValidationError) -> list[Problem]:
    """Our problems for pydantic's errors; its own messages are not used (some quote input)."""
    out: list[Problem] = []
    errors = exc.errors(include_url=False, include_input=False)
    deeper = {e["loc"][:n] for e in errors for n in range(len(e["loc"]))}
    for err in errors:
        if err["type"] == "too_short" and err["loc"] in deeper:
            continue  # pydantic counts items after dropping the bad ones: not a problem of its own
        ctx = err.get("ctx") or {}
        if err["type"] == "form_rules":
            out.extend(ctx["problems"])
        else:
            code = _PYDANTIC.get(err["type"], "bad_value")
            problem = Problem(code, _path(tuple(err["loc"])), {})
            if problem not in out:  # one per place, not one per union member
                out.append(problem)
    return out


def parse_form(data: object) -> Form:
    """A ``Form`` from JSON-like data, or ``FormInvalid`` with every problem found."""
    try:
        return Form.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid(problems_of(exc)) from None


class NotEditable(ValueError):
    """A published form was about to change; edit a draft made by ``next_draft`` instead."""


def export_form(form: Form) -> dict[str, Any]:
    """The form as JSON-ready data, every setting written out (defaults too), so another
    system needs nothing but this file and docs/forms/form-schema.json."""
    return {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
            "form": form.model_dump(mode="json")}


def _refuse(code: str, where: str) -> FormInvalid:
    return FormInvalid([Problem(code, where, {})])


def import_form(data: object) -> Form:
    """A form from ``export_form`` data (or its JSON text). The result is a draft: a form
    published elsewhere is published here again by staff, under this system's versions."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise _refuse("not_json", "file") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise _refuse("not_export", "file")
    if data.get("format_version") != EXPORT_VERSION:
        raise _refuse("export_version", "format_version")
    body = data.get("form")
    if not isinstance(body, dict):
        raise _refuse("missing", "form")
    return parse_form({**body, "status": "draft"})


def copy_form(form: Form, new_id: str) -> Form:
    """A new draft with another id (a starting point for a similar procedure)."""
    return _replace(form, id=new_id, version=1, status="draft")


def publish(draft: Form, version: int) -> Form:
    """``draft`` as published version ``version`` (immutable, like every ``Form``).

    The caller passes the next number for this form id (one more than the latest published);
    publishing a form that is already published is refused."""
    if draft.status == "published":
        raise NotEditable(f"form {draft.id} version {draft.version} is already published")
    return _replace(draft, version=version, status="published")


def next_draft(published: Form) -> Form:
    """A draft to edit after ``published``; its number is the one it will probably get."""
    return _replace(published, version=published.version + 1, status="draft")


def edit(draft: Form, **changes: Any) -> Form:
    """``draft`` with ``changes`` applied and checked again; ``NotEditable`` when published."""
    if draft.status == "published":
        raise NotEditable(f"form {draft.id} version {draft.version} is published")
    if "status" in changes or "version" in changes:
        raise NotEditable("status and version change only by publish")
    return _replace(draft, **changes)


def digest(form: Form) -> str:
    """SHA-256 of the canonical JSON of ``form``: stored with each submission, it proves which
    definition the answers belong to."""
    text = json.dumps(form.model_dump(mode="json"), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def submission_ref(form: Form) -> dict[str, Any]:
    """What a submission stores to refer to its form: ``{"form", "version", "digest"}``."""
    if form.status != "published":
        raise NotEditable("only published forms take submissions")
    return {"form": form.id, "version": form.version, "digest": digest(form)}


def _replace(form: Form, **changes: Any) -> Form:
    # model_copy(update=...) skips validation; a round trip through the checks does not
    data = form.model_dump() | changes
    try:
        return Form.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid(problems_of(exc)) from None

