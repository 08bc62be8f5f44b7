"""``/admin/forms/{form_id}/submissions…``: the staff's submissions of a form (form staff of the
form's department, administrators) — the list, one submission with its history and actions,
attachments, staff-entered applications (``staff_entry``), the export (``staff_export``) and
the form's API key for business systems.

Thin handlers: the rule is in ``review``, the queries in ``staff_query``, what an answer looks
like in ``staff_views``. The list shows no answers (not personal data, not audited); opening a
submission is (``form_submission_viewed``), and so is each download. A form of another
department is a plain 404, as is a submission of another form.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy import select, update

from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.service import audit, audit_in
from hub.auth.texts import pick_lang
from hub.forms import review, service, staff_pay, staff_query, staff_views
from hub.forms.context import FORMS, Forms
from hub.forms.exports import STATUS_TEXT
from hub.forms.pages import catalogue, render_staff
from hub.forms.records import open_field, open_json
from hub.forms.service import FormError
from hub.forms.tables import form_files, forms
from hub.web.api import Param, Route, lang_param

TEXTS = catalogue("staff")
BASE = "/admin/forms/{form_id}/submissions"
HEADERS = {"Cache-Control": "no-store"}
API_KEY_PREFIX = "mfk_"


def ctx_of(request: web.Request) -> Forms:
    return request.app[FORMS]


def actor_of(request: web.Request) -> str:
    return str(request[SESSION_KEY].login)


async def form_of(request: web.Request) -> Any:
    """The form of the path if the session may see it, else None (then a 404)."""
    try:
        return await service.require(ctx_of(request), request.match_info["form_id"],
                                     request[SESSION_KEY].grants)
    except FormError:
        return None


def missing(request: web.Request) -> web.Response:
    return render_staff(request, "staff_sub_missing.html", TEXTS, 404)


def path_of(form_id: str, *rest: str) -> str:
    return "/".join([BASE.format(form_id=form_id), *rest])


def statuses_of(lang: str) -> dict[str, str]:
    """The statuses' names, with the one of a submission whose fee is not paid yet."""
    return STATUS_TEXT[lang]


# --- the list -------------------------------------------------------------------------------

async def _list(request: web.Request, row: Any, status: int = 200,
                api_key: str | None = None) -> web.Response:
    filters = staff_query.Filters.parse(request.query)
    found = await staff_query.find(ctx_of(request), str(row.id), filters)
    lang = pick_lang(request)
    query = {k: v for k, v in (("status", filters.status), ("q", filters.q),
                               ("since", str(filters.since or "")),
                               ("until", str(filters.until or ""))) if v}
    return render_staff(
        request, "staff_sub_list.html", TEXTS, status, form=row, found=found, filters=filters,
        statuses=statuses_of(lang), base=path_of(str(row.id)), api_key=api_key,
        has_key=bool(row.api_key_hash), published=row.published_version is not None,
        prev_url=f"?{urlencode({**query, 'page': filters.page - 1, 'lang': lang})}",
        next_url=f"?{urlencode({**query, 'page': filters.page + 1, 'lang': lang})}")


async def list_page(request: web.Request) -> web.Response:
    row = await form_of(request)
    return missing(request) if row is None else await _list(request, row)


async def api_key_post(request: web.Request) -> web.Response:
    """A new API key for the form: shown once on the answering page (never in a URL or a
    redirect), only its SHA-256 kept; the previous key stops working at once."""
    row = await form_of(request)
    if row is None:
        return missing(request)
    ctx = ctx_of(request)
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    async with ctx.store.begin() as tx:
        await tx.conn.execute(update(forms).where(forms.c.id == row.id).values(
            api_key_hash=hashlib.sha256(key.encode()).hexdigest(), updated_at=ctx.clock()))
        await audit_in(tx, ctx.hub, actor=actor_of(request), action="form_secret_created",
                       target=str(row.id), ip=ip_of(request), detail={"kind": "api_key"})
    row = await service.get(ctx, str(row.id))
    return await _list(request, row, api_key=key)


# --- one submission -------------------------------------------------------------------------

async def _files(ctx: Forms, sid: str) -> list[dict[str, Any]]:
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(select(form_files).where(
            form_files.c.submission_id == sid).order_by(form_files.c.created_at))).all()
    return [{"id": str(r.id), "field": str(r.field), "size": int(r.size),
             "content_type": str(r.content_type),
             "filename": open_field(ctx, str(r.id), "filename", r.filename)} for r in rows]


async def detail_view(request: web.Request, row: Any, sub: Any, status: int = 200,
                      error: FormError | None = None, comment: str = "",
                      refund_amount: str = "") -> web.Response:
    """One submission's page (also after a refused action, with its error)."""
    ctx, lang = ctx_of(request), pick_lang(request)
    sid = str(sub.id)
    form = await service.version_of(ctx, str(row.id), int(sub.version))
    answers = open_json(ctx, sid, "answers", sub.answers) or {}
    files = await _files(ctx, sid)
    names: dict[str, list[str]] = {}
    for f in files:
        names.setdefault(f["field"], []).append(f["filename"])
    shown = staff_views.display(form, answers, lang, names) if form is not None else []
    await audit(ctx.store, ctx.hub, actor=actor_of(request), action="form_submission_viewed",
                target=str(row.id), ip=ip_of(request),
                detail={"submission": review.audit_tag(ctx, sid)})
    return render_staff(
        request, "staff_sub_detail.html", TEXTS, status, form=row, sub=sub, answers=shown,
        files=files, history=await review.history(ctx, sid), statuses=statuses_of(lang),
        base=path_of(str(row.id)), here=path_of(str(row.id), sid),
        submitted_at=sub.submitted_at.astimezone(staff_query.JST), jst=staff_query.JST,
        error=error.text(lang) if error else None, error_code=error.code if error else None,
        comment=comment, done=request.query.get("done", ""),
        pay=await staff_pay.payments_of(ctx, sid), refund_amount=refund_amount,
        actions=[a for a in ("start", "return", "complete") if sub.status in review.RULES[a]])


async def submission_of(request: web.Request) -> tuple[Any, Any] | None:
    """The form and the submission of the path if the session may see them."""
    row = await form_of(request)
    if row is None:
        return None
    sub = await staff_query.one(ctx_of(request), str(row.id), request.match_info["sid"])
    return None if sub is None else (row, sub)


async def detail_page(request: web.Request) -> web.Response:
    got = await submission_of(request)
    return missing(request) if got is None else await detail_view(request, *got)


def _action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        got = await submission_of(request)
        if got is None:
            return missing(request)
        row, sub = got
        ctx = ctx_of(request)
        comment = str((await request.post()).get("comment", ""))
        try:
            done = await review.change(ctx, row, str(sub.id), name, comment,
                                       actor_of(request), ip_of(request))
        except FormError as exc:
            fresh = await staff_query.one(ctx, str(row.id), str(sub.id))
            code = 400 if exc.code == "comment_required" else 409
            return await detail_view(request, row, fresh or sub, code, exc, comment)
        mails = review.mails_for(ctx, str(row.id), done)
        if mails:
            await ctx.mailer.send_batch(mails)
        raise web.HTTPSeeOther(f"{path_of(str(row.id), str(sub.id))}?"
                               f"{urlencode({'done': name, 'lang': pick_lang(request)})}")
    return handler


async def download(request: web.Request) -> web.StreamResponse:
    """An attachment's exact bytes as stored, never shown inline: ``attachment``, the sniffed
    type and ``nosniff`` (a file a resident uploaded must not run in the staff's browser)."""
    got = await submission_of(request)
    if got is None:
        return missing(request)
    row, sub = got
    ctx = ctx_of(request)
    async with ctx.store.read() as tx:
        f = (await tx.conn.execute(select(form_files).where(
            form_files.c.id == request.match_info["file_id"],
            form_files.c.submission_id == sub.id))).first()
    if f is None:
        return missing(request)
    data = await ctx.intake.read(str(f.id))
    name = open_field(ctx, str(f.id), "filename", f.filename)
    await audit(ctx.store, ctx.hub, actor=actor_of(request), action="form_file_downloaded",
                target=str(row.id), ip=ip_of(request),
                detail={"submission": review.audit_tag(ctx, str(sub.id)), "size": len(data)})
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return web.Response(body=data, headers={
        **HEADERS, "Content-Type": str(f.content_type), "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(name, safe='')}"})


# --- routes ---------------------------------------------------------------------------------

LANG = lang_param(("ja", "en"))
FORM_BODY = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}, "comment": {"type": "string"}}}}
_LIST_QUERY = (LANG, Param("status", "only this status", schema={"enum": list(
    staff_query.STATUSES)}), Param("since", "received on or after (YYYY-MM-DD, JST)"),
    Param("until", "received on or before (YYYY-MM-DD, JST)"),
    Param("q", "a reference number (F-2026-…) or a text found in the answers"),
    Param("page", "page number, 50 a page"))


def _post(path: str, summary: str, handler: Any) -> Route:
    return Route("POST", path, summary, handler, access="forms", content_type="text/html",
                 body=FORM_BODY, query=(LANG,), also={303: "done: back to the submission"})


def _routes() -> tuple[Route, ...]:
    from hub.forms import staff_entry, staff_export

    one = f"{BASE}/{{sid}}"
    return (
        Route("GET", BASE, "A form's submissions (reference, received, status, channel, last "
              "change; no answers), filtered and searched", list_page, access="forms",
              content_type="text/html", query=_LIST_QUERY),
        Route("POST", f"{BASE}/api-key", "Issue the form's API key (shown once; the previous "
              "one stops working); audited", api_key_post, access="forms",
              content_type="text/html", body=FORM_BODY, query=(LANG,)),
        *staff_export.ROUTES, *staff_entry.ROUTES,
        Route("GET", one, "One submission: answers labelled by its version, attachments, "
              "history and actions; audited as a view of personal data", detail_page,
              access="forms", content_type="text/html", query=(LANG,)),
        _post(f"{one}/start", "received → in_review; audited, webhook event",
              _action("start")),
        _post(f"{one}/return", "→ returned with a required comment to the resident (mailed); "
              "audited, webhook event", _action("return")),
        _post(f"{one}/complete", "→ completed (optional comment to the resident; mailed); "
              "audited, webhook event", _action("complete")),
        _post(f"{one}/comment", "An internal comment (not shown to the resident)",
              _action("comment")),
        Route("GET", f"{one}/files/{{file_id}}", "An attachment's exact bytes (attachment, "
              "sniffed type, nosniff); audited", download, access="forms",
              content_type="application/octet-stream", query=()),
    )


ROUTES: tuple[Route, ...] = _routes()
