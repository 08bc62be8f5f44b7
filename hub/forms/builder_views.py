"""What the builder's pages show, built from a draft (no aiohttp; pure apart from rendering).

Why here: the handlers stay thin, and the rules of the pages (which earlier fields a condition
may use, where an error in the summary links to) are in one place.
"""

from __future__ import annotations

import re
from typing import Any

from hub.forms.builder_edit import Issue
from hub.forms.model import AnyField, Form

_FIELD_AT = re.compile(r"^pages\[(\d+)\]\.fields\[(\d+)\](?:\.(\w+))?")
_PAGE_AT = re.compile(r"^pages\[(\d+)\](?:\.(\w+))?")
# a model path's last part → the input of the field's edit page
_INPUT = {"options": "options", "condition": "cond_field", "label": "label_ja",
          "help": "help_ja", "text": "text_ja", "prefill": "prefill", "min": "min", "max": "max",
          "min_length": "min_length", "max_length": "max_length", "max_bytes": "max_mb",
          "allowed_types": "allowed", "max_files": "max_files", "min_selected": "min_selected",
          "max_selected": "max_selected", "display": "display", "furigana": "furigana"}
_SETTINGS = {"title": "title_ja", "description": "description_ja",
             "retention_days": "retention_days", "identity": "identity", "fee_yen": "fee_yen",
             "fee_note": "fee_note_ja"}


def anchor(draft: Form | None, where: str, on_field_page: bool = False) -> str:
    """The in-page link of a refusal: the field's input on its edit page, the field or page
    on the builder page, the setting's input on the settings page."""
    got = _FIELD_AT.match(where)
    if got and draft is not None:
        p, i, part = int(got[1]), int(got[2]), got[3]
        if on_field_page:
            return f"#f-{_INPUT.get(part or '', 'label_ja')}"
        if p < len(draft.pages) and i < len(draft.pages[p].fields):
            return f"#field-{draft.pages[p].fields[i].id}"
    page = _PAGE_AT.match(where)
    if page and draft is not None and int(page[1]) < len(draft.pages):
        return f"#page-{draft.pages[int(page[1])].id}"
    head = where.split(".")[0].split("[")[0]
    if head in _SETTINGS:
        return f"#f-{_SETTINGS[head]}"
    return f"#f-{where}" if re.fullmatch(r"[a-z_]+", where) else "#main"


def issues_view(issues: list[Issue] | tuple[Issue, ...], lang: str, draft: Form | None,
                on_field_page: bool = False) -> list[dict[str, str]]:
    return [{"code": i.code, "where": i.where, "text": i.text(lang),
             "href": anchor(draft, i.where, on_field_page)} for i in issues]


def earlier_fields(draft: Form, before_page: int, before_field: int | None = None
                   ) -> list[AnyField]:
    """Answerable fields a condition at this point may use (only earlier answers)."""
    out: list[AnyField] = []
    for p, page in enumerate(draft.pages):
        for i, fld in enumerate(page.fields):
            earlier = p < before_page or (p == before_page and before_field is not None
                                          and i < before_field)
            if earlier and fld.type != "fixed_text":
                out.append(fld)
    return out


def label_of(fld: Any, lang: str) -> str:
    text = getattr(fld, "label", None) or getattr(fld, "text", None)
    if text is None:
        return str(fld.id)
    return str(text.shown(lang))


def describe_condition(cond: Any, draft: Form, lang: str, ops: dict[str, str]) -> str:
    """A condition in words for the builder page (``q1 = yes``)."""
    if cond is None:
        return ""
    if hasattr(cond, "field"):
        target = draft.field(cond.field)
        name = label_of(target, lang) if target is not None else cond.field
        value = cond.value
        # the option's label staff wrote, not its code
        options = {o.value: o.label.shown(lang) for o in getattr(target, "options", ())}
        values = value if isinstance(value, tuple) else ((value,) if value else ())
        shown = ", ".join(str(options.get(v, v)) for v in values)
        return f"「{name}」 {ops.get(cond.op, cond.op)} {shown}".strip()
    parts = cond.all if hasattr(cond, "all") else cond.any
    joiner = (" かつ " if lang == "ja" else " and ") if hasattr(cond, "all") else (
        " または " if lang == "ja" else " or ")
    return "(" + joiner.join(describe_condition(c, draft, lang, ops) for c in parts) + ")"
