"""``/admin/forms/{id}/delete``: deleting a form that holds no application (a test form, a
form made by mistake, a closed one whose applications have all reached their retention end).

Why a confirm page and not a button that deletes at once: deleting cannot be undone, and the
page says what goes with the form (its versions, residents' unfinished drafts and their
attachments) or why it cannot go (still taking applications; applications kept). The rules are
in ``builder_store.delete_form``, checked again inside its transaction.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.auth.guard import ip_of
from hub.auth.texts import pick_lang
from hub.forms import builder_store as store
from hub.forms import service
from hub.forms.builder_common import TEXTS, actor, ctx_of, form_row, not_found, to
from hub.forms.builder_edit import EditRefused, Issue
from hub.forms.builder_views import issues_view
from hub.forms.pages import render_staff


async def _page(request: web.Request, row: Any, issues: list[Issue] | None = None,
                status: int = 200) -> web.Response:
    ctx = ctx_of(request)
    form_id = str(row.id)
    submissions, drafts = await store.deletion_facts(ctx, form_id)
    return render_staff(request, "builder_delete.html", TEXTS, status, form=row,
                        draft=service.draft_of(row), submissions=submissions, drafts=drafts,
                        errors=issues_view(issues or [], pick_lang(request), None))


async def confirm_get(request: web.Request) -> web.Response:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    return await _page(request, row)


async def delete_post(request: web.Request) -> web.StreamResponse:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    try:
        await store.delete_form(ctx_of(request), str(row.id), actor(request), ip_of(request))
    except EditRefused as exc:
        return await _page(request, row, list(exc.issues), 409)
    raise to(request, None, done="deleted")
