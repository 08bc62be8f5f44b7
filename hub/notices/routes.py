"""``/admin/notices…``: the staff pages of online notices (N1–N8) for notice staff of the
notice's department and administrators — the list, the settings form, the notice page as
numbered steps (list, PDF and match report, signature, ready, send, then the live table), the
live stream (SSE) and the per-notice CSV export.

Thin handlers: the rules are in ``service``/``prepare``/``sending``, what the pages show in
``staff_views``. Every refusal is shown on the page in the staff's language (each problem with
its line or page), never a stack trace; a notice of another department is a plain 404. Uploads
are streamed (the form names its CSRF token in the action URL, as the reservations import does).
Reading the recipient table is reading personal data: each page view is audited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.auth.guard import SESSION_KEY, current_session, ip_of
from hub.auth.service import audit
from hub.auth.staffpage import staff_page
from hub.auth.texts import LANGS, pick_lang
from hub.kit.i18n import load_catalogue
from hub.notices import prepare, sending, service
from hub.notices import staff_views as views
from hub.notices.context import NOTICES, Notices
from hub.notices.records import open_field
from hub.notices.service import FieldErrors, NoticeError
from hub.web.api import Param, Route, lang_param

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
TEXTS: dict[str, dict[str, Any]] = load_catalogue(HERE / "i18n", LANGS)
PATH = "/admin/notices"
HEADERS = {"Cache-Control": "no-store"}
DEFAULT_PATTERN = r"通知番号[:：]\s*([A-Za-z0-9-]+)"


def _ctx(request: web.Request) -> Notices:
    return request.app[NOTICES]


def _grants(request: web.Request) -> tuple[tuple[str, str], ...]:
    return request[SESSION_KEY].grants


def render(request: web.Request, template: str, status: int = 200,
           **values: Any) -> web.Response:
    return staff_page(request, f"notices/{template}", TEXTS, status, HEADERS, **values)


def not_found(request: web.Request) -> web.Response:
    return render(request, "staff_missing.html", 404)


async def _notice(request: web.Request) -> Any:
    """The notice of the path if the session may see it, else None (then a 404)."""
    try:
        return await service.require(_ctx(request), request.match_info["notice_id"],
                                     _grants(request))
    except NoticeError:
        return None


def _to(notice_id: str | None, request: web.Request, **query: str) -> web.HTTPSeeOther:
    path = f"{PATH}/{notice_id}" if notice_id else PATH
    return web.HTTPSeeOther(f"{path}?{urlencode({**query, 'lang': pick_lang(request)})}")


# --- the list -------------------------------------------------------------------------------

async def list_page(request: web.Request) -> web.Response:
    got = await service.listing(_ctx(request), service.departments_of(_grants(request)))
    return render(request, "staff_list.html", notices=got)


# --- settings -------------------------------------------------------------------------------

FORM_FIELDS = ("department", "title", "description", "message_ja", "message_en", "auth",
               "remind_after_days", "remind_max", "retention_days", "test_mode",
               "test_addresses")


def _form_of(ctx: Notices, row: Any) -> dict[str, str]:
    tests = json.loads(open_field(ctx, str(row.id), "test_addresses", row.test_addresses))
    return {"department": str(row.department), "title": str(row.title),
            "description": str(row.description), "message_ja": str(row.message_ja),
            "message_en": str(row.message_en), "auth": str(row.auth),
            "remind_after_days": "" if row.remind_after_days is None
            else str(row.remind_after_days), "remind_max": str(row.remind_max),
            "retention_days": str(row.retention_days), "test_mode": "1" if row.test_mode else "",
            "test_addresses": "\n".join(tests)}


def _settings(request: web.Request, form: dict[str, str], notice: Any = None,
              errors: list[NoticeError] | None = None, status: int = 200) -> web.Response:
    allowed = service.departments_of(_grants(request))
    lang = pick_lang(request)
    return render(request, "staff_settings.html", status, notice=notice, form=form,
                  departments=sorted(allowed) if allowed is not None else None,
                  errors=[{"field": e.field or "", "text": e.text(lang)} for e in errors or []])


async def new_page(request: web.Request) -> web.Response:
    allowed = service.departments_of(_grants(request))
    first = sorted(allowed)[0] if allowed else ""
    return _settings(request, {**dict.fromkeys(FORM_FIELDS, ""), "department": first,
                               "auth": "code", "remind_max": "1", "retention_days": "365"})


async def _read_settings(request: web.Request) -> tuple[dict[str, str], Any]:
    posted = await request.post()
    form = {k: str(posted.get(k, ""))[:21000] for k in FORM_FIELDS}  # every key: the template
    try:
        fields = service.read_fields(form)
    except FieldErrors as exc:
        return form, exc.errors
    allowed = service.departments_of(_grants(request))
    if allowed is not None and fields.department not in allowed:
        return form, [NoticeError("not_your_department", "担当の所属課だけを選べます",
                                  "Choose one of your own departments", "department")]
    return form, fields


async def new_post(request: web.Request) -> web.StreamResponse:
    form, got = await _read_settings(request)
    if isinstance(got, list):
        return _settings(request, form, errors=got, status=400)
    current = request[SESSION_KEY]
    notice_id = await service.create(_ctx(request), got, current.staff_id, ip_of(request))
    raise _to(notice_id, request, done="created")


async def settings_page(request: web.Request) -> web.Response:
    notice = await _notice(request)
    if notice is None:
        return not_found(request)
    return _settings(request, _form_of(_ctx(request), notice), notice)


async def settings_post(request: web.Request) -> web.StreamResponse:
    notice = await _notice(request)
    if notice is None:
        return not_found(request)
    form, got = await _read_settings(request)
    if isinstance(got, list):
        return _settings(request, form, notice, got, 400)
    try:
        await service.update_fields(_ctx(request), str(notice.id), got,
                                    request[SESSION_KEY].staff_id, ip_of(request))
    except NoticeError as exc:
        return _settings(request, form, notice, [exc], 409)
    raise _to(str(notice.id), request, done="saved")


# --- the notice page ------------------------------------------------------------------------

async def _page(request: web.Request, notice: Any, status: int = 200,
                error: NoticeError | None = None) -> web.Response:
    ctx, lang = _ctx(request), pick_lang(request)
    nid = str(notice.id)
    which = request.query.get("filter", "all")
    which = which if which in views.FILTERS else "all"
    rows = await views.table_rows(ctx, nid, which)
    current = request[SESSION_KEY]
    await audit(ctx.store, ctx.hub, actor=current.staff_id, action="notice_viewed", target=nid,
                ip=ip_of(request), detail={"filter": which, "rows": len(rows)})
    report = await prepare.report(ctx, nid)
    job = views.job_of(ctx, nid)
    return render(
        request, "staff_notice.html", status, notice=notice, rows=rows, filter=which,
        figures=await service.figures(ctx, nid), report=report, job=job,
        unmatched_parts=views.key_report(report.unmatched_parts),
        refresh=bool(job and job["running"]) or notice.status == "sending",
        error=error.text(lang) if error else None, error_code=error.code if error else None,
        problems=views.problems_of(error, lang) if error else [],
        done=request.query.get("done", ""), count=request.query.get("n", ""),
        pattern=DEFAULT_PATTERN, live_url=f"{PATH}/{nid}/live")


async def notice_page(request: web.Request) -> web.Response:
    notice = await _notice(request)
    if notice is None:
        return not_found(request)
    return await _page(request, notice)


async def _act(request: web.Request, work: Any, done: str, **query: str) -> web.StreamResponse:
    """Run one step on the notice; the page again with the refusal, or a 303 to the page."""
    notice = await _notice(request)
    if notice is None:
        return not_found(request)
    try:
        extra = await work(_ctx(request), str(notice.id), request[SESSION_KEY].staff_id,
                           ip_of(request))
    except NoticeError as exc:
        notice = await service.get(_ctx(request), str(notice.id))
        return await _page(request, notice, 409 if exc.code in (
            "wrong_status", "not_draft", "job_running") else 400, exc)
    raise _to(str(notice.id), request, done=done, **query, **(extra or {}))


async def recipients_post(request: web.Request) -> web.StreamResponse:
    async def work(ctx: Notices, nid: str, actor: str, ip: str) -> dict[str, str]:
        data, fields = await views.read_upload(request, prepare.MAX_LIST_BYTES, ("key_column",))
        n = await prepare.import_recipients(ctx, nid, data, fields.get("key_column") or None,
                                            actor, ip)
        return {"n": str(n)}
    return await _act(request, work, "imported")


async def pdf_post(request: web.Request) -> web.StreamResponse:
    async def work(ctx: Notices, nid: str, actor: str, ip: str) -> None:
        data, f = await views.read_upload(request, prepare.MAX_PDF_BYTES,
                                          ("mode", "pattern", "pages"))
        pages = f.get("pages", "")
        if f.get("mode") == "pages" and not (pages.isdigit() and 1 <= int(pages) <= 1000):
            raise NoticeError("bad_pages", "ページ数は1から1000の整数で入力してください",
                              "Pages per resident: a whole number from 1 to 1000", "pages")
        await prepare.attach_pdf(ctx, nid, data, f.get("mode", ""),
                                 f.get("pattern") or DEFAULT_PATTERN,
                                 int(pages) if pages.isdigit() else 0, actor, ip)
    return await _act(request, work, "pdf")


async def sign_post(request: web.Request) -> web.StreamResponse:
    async def work(ctx: Notices, nid: str, actor: str, ip: str) -> None:
        views.start_job(ctx, nid, "signing", lambda: prepare.sign_all(ctx, nid, actor, ip))
    return await _act(request, work, "sign_started")


async def ready_post(request: web.Request) -> web.StreamResponse:
    return await _act(request, prepare.mark_ready, "ready")


async def reopen_post(request: web.Request) -> web.StreamResponse:
    return await _act(request, prepare.reopen, "reopened")


async def send_post(request: web.Request) -> web.StreamResponse:
    posted = await request.post()

    async def work(ctx: Notices, nid: str, actor: str, ip: str) -> None:
        if str(posted.get("confirm", "")) != "1":
            raise NoticeError("confirm", "送信前に確認欄にチェックを入れてください",
                              "Tick the confirmation box before sending", "confirm")
        notice = await service.get(ctx, nid)
        if notice is None or notice.status != "ready":
            raise NoticeError("wrong_status", "送信準備完了の通知だけを送信できます",
                              "Only a notice that is ready can be sent")
        views.start_job(ctx, nid, "sending", lambda: sending.send_all(ctx, nid, actor, ip))
    return await _act(request, work, "send_started")


async def recontact_post(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    chosen = [str(v)[:64] for v in posted.getall("recipient", [])][:10000]

    async def work(ctx: Notices, nid: str, actor: str, ip: str) -> dict[str, str]:
        if str(posted.get("all", "")) != "1" and not chosen:
            raise NoticeError("none_chosen", "再連絡する送付先を選んでください",
                              "Choose the recipients to contact again")
        n = await sending.recontact(ctx, nid, actor, ip,
                                    None if str(posted.get("all", "")) == "1" else chosen)
        return {"n": str(n)}
    return await _act(request, work, "recontacted")


async def close_post(request: web.Request) -> web.StreamResponse:
    async def work(ctx: Notices, nid: str, actor: str, ip: str) -> None:
        await service.set_status(ctx, nid, ("ready", "sent"), "closed", actor, ip,
                                 closed_at=ctx.clock())
    return await _act(request, work, "closed")


# --- live and export ------------------------------------------------------------------------

async def live(request: web.Request) -> web.StreamResponse:
    """``event: status`` on every change of the notice or its job (``staff_views.stream``)."""
    notice = await _notice(request)
    if notice is None:
        return not_found(request)

    async def signed_in() -> bool:
        return await current_session(request) is not None

    return await views.stream(request, _ctx(request), str(notice.id), signed_in)


async def export(request: web.Request) -> web.StreamResponse:
    notice = await _notice(request)
    if notice is None:
        return not_found(request)
    ctx, lang = _ctx(request), pick_lang(request)
    encoding = "cp932" if request.query.get("encoding") == "cp932" else "utf-8-sig"
    data, count = await views.export_csv(ctx, str(notice.id), lang, encoding,
                                         TEXTS[lang]["statuses"])
    await audit(ctx.store, ctx.hub, actor=request[SESSION_KEY].staff_id, action="notice_exported",
                target=str(notice.id), ip=ip_of(request),
                detail={"encoding": encoding, "rows": count})
    charset = "shift_jis" if encoding == "cp932" else "utf-8"
    return web.Response(body=data, headers={
        "Content-Type": f"text/csv; charset={charset}", **HEADERS,
        "Content-Disposition": f'attachment; filename="notice-{notice.id}.csv"'})


_LANG = lang_param(LANGS)
_FORM = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}}}}
_UPLOAD = {"multipart/form-data": {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"}}}}


def _post(path: str, summary: str, handler: Any, body: Any = None) -> Route:
    return Route("POST", f"{PATH}/{{notice_id}}/{path}", summary, handler, access="notices",
                 content_type="text/html", body=body or _FORM, query=(_LANG,),
                 also={303: "done: back to the notice page"})


ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "The notices of the caller's departments with their status and "
          "figures", list_page, access="notices", content_type="text/html", query=(_LANG,)),
    Route("GET", f"{PATH}/new", "The form for a new notice", new_page, access="notices",
          content_type="text/html", query=(_LANG,)),
    Route("POST", f"{PATH}/new", "Create a notice (form: department, title, description, "
          "message_ja, message_en, auth, remind_after_days, remind_max, retention_days, "
          "test_mode, test_addresses); 400 with every bad field; audited", new_post,
          access="notices", content_type="text/html", body=_FORM, query=(_LANG,),
          also={303: "created: to the notice page"}),
    Route("GET", f"{PATH}/{{notice_id}}", "A notice as numbered steps, its match report, "
          "figures and recipient table (?filter=all|opened|unopened|bounced); audited as a "
          "view of personal data", notice_page, access="notices", content_type="text/html",
          query=(_LANG, Param("filter", "rows shown", schema={"enum": list(
              views.FILTERS)}))),
    Route("GET", f"{PATH}/{{notice_id}}/settings", "The notice's settings form",
          settings_page, access="notices", content_type="text/html", query=(_LANG,)),
    Route("POST", f"{PATH}/{{notice_id}}/settings", "Change a draft's settings (the new "
          "notice's form); 400 with every bad field; audited", settings_post, access="notices",
          content_type="text/html", body=_FORM, query=(_LANG,),
          also={303: "saved: to the notice page"}),
    Route("GET", f"{PATH}/{{notice_id}}/live", "Server-Sent Events: `event: status` with "
          "{status, figures, job, rows: [{id, status, smtp_code, sent_at, opened_at, contacts, "
          "downloads}]} on every change; no names or addresses", live, access="notices",
          content_type="text/event-stream", query=()),
    Route("GET", f"{PATH}/{{notice_id}}/export.csv", "The notice's recipients and their "
          "status as CSV (?encoding=utf-8-sig|cp932); audited", export, access="notices",
          content_type="text/csv", query=(_LANG, Param(
              "encoding", "utf-8-sig (UTF-8 with BOM) or cp932", schema={
                  "enum": ["utf-8-sig", "cp932"]}))),
    _post("recipients", "Import the recipient list (multipart {file: CSV or xlsx, key_column}; "
          "the CSRF token in the URL: ?csrf=); all or nothing, every bad line listed",
          recipients_post, _UPLOAD),
    _post("pdf", "Attach the notice PDF (multipart {file, mode: single|key|pages, pattern, "
          "pages}; ?csrf= in the URL); split and matched, the match report shown", pdf_post,
          _UPLOAD),
    _post("sign", "Sign every PDF of the draft (a background job; progress on the page and "
          "in the live stream)", sign_post),
    _post("ready", "Draft → ready when every recipient has what it needs", ready_post),
    _post("reopen", "Ready → draft", reopen_post),
    _post("send", "Send the notice to every recipient (form {csrf, confirm=1}; a background "
          "job)", send_post),
    _post("recontact", "Contact the unopened again (form {csrf, all=1} or {csrf, recipient…})",
          recontact_post),
    _post("close", "Close the notice: no more mails", close_post),
)
