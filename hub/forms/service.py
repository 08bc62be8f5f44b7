"""Forms themselves: who may see them and which version residents get (no aiohttp here).

A form moves ``draft → published → closed`` (and back to published by reopening). Staff always
edit the draft (``forms_forms.draft``); publishing freezes it as the next ``forms_versions`` row
(``hub.forms.versions.publish``), and residents get ``published_version``. A resident's draft
answers and a submission keep the version they were started on, so ``version_of`` loads any
version, never only the newest.

Department scope: a form belongs to one department; ``form_staff`` granted at that department
(or ``*``) and administrators see it. A form of another department is "not found", so ids
cannot be probed.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from hub.auth import access
from hub.forms.context import Forms
from hub.forms.model import Form
from hub.forms.single import one_statement
from hub.forms.tables import form_versions, forms
from hub.forms.versions import parse_form

STATUSES = ("draft", "published", "closed")
SUBMISSION_STATUSES = ("received", "in_review", "returned", "completed")


class FormError(Exception):
    """A refusal staff or residents can read: a stable ``code`` with Japanese and English."""

    def __init__(self, code: str, ja: str, en: str, field: str | None = None) -> None:
        super().__init__(en)
        self.code, self.ja, self.en, self.field = code, ja, en, field

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


NOT_FOUND = ("not_found", "フォームが見つかりません", "No such form")


def departments_of(grants: tuple[tuple[str, str], ...]) -> set[str] | None:
    """The departments a session may work for; None: all (an administrator, or ``*``)."""
    return access.departments_of(grants, "form_staff")


def may_see(grants: tuple[tuple[str, str], ...], department: str) -> bool:
    allowed = departments_of(grants)
    return allowed is None or department in allowed


async def get(ctx: Forms, form_id: str) -> Any:
    """The ``forms_forms`` row, or None."""
    async with one_statement(ctx.store) as conn:
        return (await conn.execute(select(forms).where(forms.c.id == form_id))).first()


async def require(ctx: Forms, form_id: str, grants: tuple[tuple[str, str], ...]) -> Any:
    """The form row if it exists and the session's departments include it; else
    ``FormError("not_found")`` (the same for "not yours")."""
    row = await get(ctx, form_id)
    if row is None or not may_see(grants, str(row.department)):
        raise FormError(*NOT_FOUND)
    return row


def draft_of(row: Any) -> Form:
    """The staff's working copy of a form row."""
    return parse_form(json.loads(row.draft))


VERSIONS_CACHED = 256


async def version_of(ctx: Forms, form_id: str, version: int) -> Form | None:
    """A published version, as it was published (None: no such version). Kept in the
    process once read: a published version is never changed (only deleted with its form)."""
    key = (form_id, version)
    cached = ctx.versions.get(key)
    if cached is not None:
        return cached
    async with one_statement(ctx.store) as conn:
        got = (await conn.execute(
            select(form_versions.c.definition).where(form_versions.c.form_id == form_id,
                                                     form_versions.c.version == version))
               ).first()
    if got is None:
        return None
    form = parse_form(json.loads(got[0]))
    if len(ctx.versions) >= VERSIONS_CACHED:
        ctx.versions.clear()
    ctx.versions[key] = form
    return form


async def published(ctx: Forms, form_id: str) -> tuple[Any, Form] | None:
    """What a resident starting now gets: the form row and its published version (None: no
    such form, or not open for answers)."""
    row = await get(ctx, form_id)
    if row is None or row.status != "published" or row.published_version is None:
        return None
    form = await version_of(ctx, form_id, int(row.published_version))
    return None if form is None else (row, form)
