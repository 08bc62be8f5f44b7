"""The builder page and its changes to pages and fields (handlers; rules in ``builder_edit``).

Each POST reads its inputs, runs one pure change inside ``builder_store.change`` (one
transaction with its ``form_changed`` audit row) and answers 303 to the builder page at the
changed place; a refusal renders the page again with the error summary and status 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from hub.auth.guard import ip_of
from hub.auth.texts import pick_lang
from hub.forms import builder_edit as edit
from hub.forms import builder_store as store
from hub.forms import service
from hub.forms.builder_common import TEXTS, actor, ctx_of, form_row, not_found, posted_of, to
from hub.forms.builder_edit import FIELD_TYPES, EditRefused, Issue
from hub.forms.builder_post import (
    OPS,
    PREFILLS,
    cond_values,
    condition_of,
    field_data,
    one,
    posted_values,
    text_of,
    values_of,
)
from hub.forms.builder_views import describe_condition, earlier_fields, issues_view, label_of
from hub.forms.model import Form
from hub.forms.pages import render_staff


async def builder_page(request: web.Request, row: Any, issues: list[Issue] | None = None,
                       status: int = 200) -> web.Response:
    if row is None:
        return not_found(request)
    ctx, lang = ctx_of(request), pick_lang(request)
    draft = service.draft_of(row)
    ops = TEXTS[lang]["ops"]
    pages = [{"page": page, "number": p + 1,
              "condition": describe_condition(page.condition, draft, lang, ops),
              "choices": earlier_fields(draft, p),
              "cur": cond_values(page.condition),
              "fields": [{"f": f, "label": label_of(f, lang),
                          "condition": describe_condition(f.condition, draft, lang, ops)}
                         for f in page.fields]}
             for p, page in enumerate(draft.pages)]
    return render_staff(request, "builder_form.html", TEXTS, status, form=row, draft=draft,
                        pages=pages, types=FIELD_TYPES, ops=OPS,
                        versions=await store.published_versions(ctx, str(row.id)),
                        errors=issues_view(issues or [], lang, draft),
                        done=request.query.get("done", ""))


async def page_get(request: web.Request) -> web.Response:
    return await builder_page(request, await form_row(request))


async def _change(request: web.Request, kind: str, work: Callable[[Form], Form],
                  anchor: Callable[[Form], str], **detail: str) -> web.StreamResponse:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    try:
        new = await store.change(ctx_of(request), str(row.id), kind, work, actor(request),
                                 ip_of(request), **detail)
    except EditRefused as exc:
        return await builder_page(request, row, list(exc.issues), 400)
    raise to(request, str(row.id), anchor=anchor(new), done="saved")


def _step(posted: dict[str, list[str]]) -> int:
    return -1 if one(posted, "dir") == "up" else 1


async def add_page_post(request: web.Request) -> web.StreamResponse:
    posted = await posted_of(request)
    return await _change(request, "add_page", lambda d: edit.add_page(
        d, one(posted, "title_ja", 200), one(posted, "title_en", 200)),
        lambda d: f"page-{d.pages[-1].id}")


async def page_post(request: web.Request) -> web.StreamResponse:
    posted = await posted_of(request)
    pid = request.match_info["page_id"]

    def work(d: Form) -> Form:
        page = d.pages[edit.page_index(d, pid)]
        title = text_of(posted, "title")
        assert title is not None
        return edit.update_page(d, pid, title, condition_of(posted, page.condition))
    return await _change(request, "page", work, lambda d: f"page-{pid}")


async def page_move_post(request: web.Request) -> web.StreamResponse:
    posted = await posted_of(request)
    pid = request.match_info["page_id"]
    return await _change(request, "move_page", lambda d: edit.move_page(d, pid, _step(posted)),
                         lambda d: f"page-{pid}")


async def page_delete_post(request: web.Request) -> web.StreamResponse:
    pid = request.match_info["page_id"]
    return await _change(request, "delete_page", lambda d: edit.delete_page(d, pid),
                         lambda d: "pages")


async def add_field_post(request: web.Request) -> web.StreamResponse:
    posted = await posted_of(request)
    pid, kind = request.match_info["page_id"], one(posted, "type", 20)
    return await _change(
        request, "add_field", lambda d: edit.add_field(d, pid, kind),
        lambda d: f"field-{d.pages[edit.page_index(d, pid)].fields[-1].id}",
        type=kind if kind in FIELD_TYPES else "?")


async def field_move_post(request: web.Request) -> web.StreamResponse:
    posted = await posted_of(request)
    fid = request.match_info["field_id"]
    return await _change(request, "move_field",
                         lambda d: edit.move_field(d, fid, _step(posted)),
                         lambda d: f"field-{fid}")


async def field_delete_post(request: web.Request) -> web.StreamResponse:
    fid = request.match_info["field_id"]
    return await _change(request, "delete_field", lambda d: edit.delete_field(d, fid),
                         lambda d: "pages")


# --- one field's settings -------------------------------------------------------------------

async def field_page(request: web.Request, row: Any, issues: list[Issue] | None = None,
                     status: int = 200, values: dict[str, Any] | None = None
                     ) -> web.Response:
    if row is None:
        return not_found(request)
    draft = service.draft_of(row)
    try:
        p, i = edit.locate(draft, request.match_info["field_id"])
    except EditRefused:
        return not_found(request)
    fld = draft.pages[p].fields[i]
    lang = pick_lang(request)
    return render_staff(request, "builder_field.html", TEXTS, status, form=row, draft=draft,
                        f=fld, page=draft.pages[p], values=values or values_of(fld),
                        choices=earlier_fields(draft, p, i), ops=OPS, prefills=PREFILLS,
                        label=label_of(fld, lang),
                        errors=issues_view(issues or [], lang, draft, on_field_page=True))


async def field_get(request: web.Request) -> web.Response:
    return await field_page(request, await form_row(request))


async def field_post(request: web.Request) -> web.StreamResponse:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    posted = await posted_of(request)
    fid = request.match_info["field_id"]

    def work(d: Form) -> Form:
        p, i = edit.locate(d, fid)
        return edit.replace_field(d, fid, field_data(d.pages[p].fields[i], posted))
    try:
        await store.change(ctx_of(request), str(row.id), "field", work, actor(request),
                           ip_of(request))
    except EditRefused as exc:
        return await field_page(request, row, list(exc.issues), 400, posted_values(posted))
    raise to(request, str(row.id), anchor=f"field-{fid}", done="saved")
