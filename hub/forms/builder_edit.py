"""The builder's changes to a draft, as pure functions (no aiohttp, no database).

Why pure: every change staff make goes through ``hub.forms.versions.edit`` (which checks the
whole form again), so an invalid draft can never be saved, and a property test can drive any
sequence of changes. Each function returns the new ``Form`` or raises ``EditRefused`` carrying
``Issue`` s (a stable code, a place, ja/en text); nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hub.forms import versions
from hub.forms.model import (
    AllOf,
    AnyOf,
    Condition,
    Form,
    FormInvalid,
    Rule,
)

FIELD_TYPES = ("text", "long_text", "number", "email", "phone", "date", "choice",
               "checkboxes", "dropdown", "name", "address", "file", "consent", "fixed_text")


@dataclass(frozen=True, slots=True)
class Issue:
    """One refusal shown in the builder's error summary; ``where`` is a model path
    (``pages[1].fields[0].condition``) or a builder input name."""

    code: str
    where: str
    ja: str
    en: str

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


class EditRefused(ValueError):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(f"{i.code} at {i.where}" for i in issues))
        self.issues = tuple(issues)


def refuse(code: str, where: str, ja: str, en: str) -> EditRefused:
    return EditRefused([Issue(code, where, ja, en)])


def _checked(draft: Form, pages: list[dict[str, Any]]) -> Form:
    """The draft with new pages, through the model's every check."""
    try:
        return versions.edit(draft, pages=pages)
    except FormInvalid as exc:
        raise EditRefused([Issue(p.code, p.where, p.ja, p.en) for p in exc.problems]) from None
    except versions.NotEditable:
        raise refuse("not_editable", "form", "公開済みの版は変更できません",
                     "A published version cannot be changed") from None


def _pages(draft: Form) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json", exclude_none=True) for p in draft.pages]


def _new_id(draft: Form, prefix: str) -> str:
    used = {p.id for p in draft.pages} | {f.id for _, f in draft.fields()}
    n = 1
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"


def locate(draft: Form, field_id: str) -> tuple[int, int]:
    """(page index, field index) of a field; ``EditRefused("no_field")`` if absent."""
    for p, page in enumerate(draft.pages):
        for i, fld in enumerate(page.fields):
            if fld.id == field_id:
                return p, i
    raise refuse("no_field", "field", "項目が見つかりません", "No such field")


def page_index(draft: Form, page_id: str) -> int:
    for p, page in enumerate(draft.pages):
        if page.id == page_id:
            return p
    raise refuse("no_page", "page", "ページが見つかりません", "No such page")


def rules_of(cond: Condition | None) -> Iterator[Rule]:
    if cond is None:
        return
    if isinstance(cond, Rule):
        yield cond
    else:
        for sub in cond.all if isinstance(cond, AllOf) else cond.any:
            yield from rules_of(sub)


def referring(draft: Form, field_ids: set[str]) -> list[str]:
    """Where a condition uses one of ``field_ids`` (page and field ids with the condition)."""
    out: list[str] = []
    for page in draft.pages:
        if any(r.field in field_ids for r in rules_of(page.condition)):
            out.append(page.id)
        for fld in page.fields:
            if any(r.field in field_ids for r in rules_of(fld.condition)):
                out.append(fld.id)
    return out


def default_field(kind: str, field_id: str) -> dict[str, Any]:
    """A new field of ``kind`` that is valid as it is (a choice gets one option to edit)."""
    if kind not in FIELD_TYPES:
        raise refuse("unknown_type", "type", "項目の種類を選んでください", "Choose a field type")
    if kind == "fixed_text":
        return {"type": kind, "id": field_id, "text": {"ja": "説明文", "en": "Guidance"}}
    out: dict[str, Any] = {"type": kind, "id": field_id,
                           "label": {"ja": "新しい項目", "en": "New field"}}
    if kind in ("choice", "checkboxes", "dropdown"):
        out["options"] = [{"value": "a", "label": {"ja": "選択肢1", "en": "Option 1"}}]
    if kind == "consent":
        out["text"] = {"ja": "上記の内容に同意します", "en": "I agree to the above"}
    return out


def add_page(draft: Form, title_ja: str = "", title_en: str = "") -> Form:
    pages = _pages(draft)
    new = _new_id(draft, "p")
    pages.append({"id": new, "title": {"ja": title_ja or f"{len(pages) + 1}ページ目",
                                       "en": title_en}, "fields": []})
    return _checked(draft, pages)


def add_field(draft: Form, page_id: str, kind: str) -> Form:
    p = page_index(draft, page_id)
    pages = _pages(draft)
    pages[p]["fields"] = [*pages[p].get("fields", []),
                          default_field(kind, _new_id(draft, "q"))]
    return _checked(draft, pages)


def replace_field(draft: Form, field_id: str, data: dict[str, Any]) -> Form:
    """The field with new settings (its id and type stay)."""
    p, i = locate(draft, field_id)
    pages = _pages(draft)
    old = pages[p]["fields"][i]
    pages[p]["fields"][i] = {**data, "id": old["id"], "type": old["type"]}
    return _checked(draft, pages)


def update_page(draft: Form, page_id: str, title: dict[str, str],
                condition: dict[str, Any] | None) -> Form:
    p = page_index(draft, page_id)
    pages = _pages(draft)
    pages[p]["title"] = title
    pages[p].pop("condition", None)
    if condition is not None:
        pages[p]["condition"] = condition
    return _checked(draft, pages)


def move_field(draft: Form, field_id: str, step: int) -> Form:
    """Up (-1) or down (+1): within the page, or across to the end / start of the next page."""
    p, i = locate(draft, field_id)
    pages = _pages(draft)
    fields = pages[p]["fields"]
    j = i + step
    if 0 <= j < len(fields):
        fields[i], fields[j] = fields[j], fields[i]
    elif 0 <= p + step < len(pages):
        moved = fields.pop(i)
        target = pages[p + step].setdefault("fields", [])
        if step < 0:
            target.append(moved)
        else:
            target.insert(0, moved)
    else:
        raise refuse("cannot_move", "field", "これ以上移動できません", "It cannot move further")
    return _checked(draft, pages)


def move_page(draft: Form, page_id: str, step: int) -> Form:
    p = page_index(draft, page_id)
    pages = _pages(draft)
    j = p + step
    if not 0 <= j < len(pages):
        raise refuse("cannot_move", "page", "これ以上移動できません", "It cannot move further")
    pages[p], pages[j] = pages[j], pages[p]
    return _checked(draft, pages)


def _still_used(draft: Form, ids: set[str], where: str) -> EditRefused | None:
    users = [u for u in referring(draft, ids) if u not in ids]
    if not users:
        return None
    names = "、".join(users)
    return refuse("referenced", where,
                  f"条件（{names}）がこの項目を参照しているため削除できません。先に条件を外してください",
                  f"Conditions ({', '.join(users)}) refer to it, so it cannot be deleted; "
                  "remove those conditions first")


def delete_field(draft: Form, field_id: str) -> Form:
    p, i = locate(draft, field_id)
    used = _still_used(draft, {field_id}, f"pages[{p}].fields[{i}]")
    if used is not None:
        raise used
    pages = _pages(draft)
    del pages[p]["fields"][i]
    return _checked(draft, pages)


def delete_page(draft: Form, page_id: str) -> Form:
    p = page_index(draft, page_id)
    if len(draft.pages) == 1:
        raise refuse("last_page", f"pages[{p}]", "最後の1ページは削除できません",
                      "The only page cannot be deleted")
    ids = {f.id for f in draft.pages[p].fields} | {page_id}
    used = _still_used(draft, ids, f"pages[{p}]")
    if used is not None:
        raise used
    pages = _pages(draft)
    del pages[p]
    return _checked(draft, pages)


def set_settings(draft: Form, changes: dict[str, Any]) -> Form:
    """Title, description, identity, retention: checked like every other change."""
    try:
        return versions.edit(draft, **changes)
    except FormInvalid as exc:
        raise EditRefused([Issue(p.code, p.where, p.ja, p.en) for p in exc.problems]) from None


__all__ = ["FIELD_TYPES", "AnyOf", "EditRefused", "Issue", "add_field", "add_page",
           "default_field", "delete_field", "delete_page", "locate", "move_field", "move_page",
           "page_index", "referring", "replace_field", "set_settings", "update_page"]
