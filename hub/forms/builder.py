"""``/admin/forms…``: the dashboard and the form builder for form staff of the form's department
and administrators (F1, F6). Server-rendered, complete without JavaScript: every change is a
POST that goes through the pure model (``builder_edit``), so an invalid draft is never saved;
a refusal comes back as the page with an error summary (status 400), never a stack trace. A
form of another department is a plain 404.

Handlers for the draft's pages and fields are in ``builder_pages``; this file has the
dashboard, settings, preview, the lifecycle (publish, close, copy, export, import; delete is
in ``builder_delete``) and
``ROUTES``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from jinja2 import TemplateNotFound

from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.staffpage import NO_STORE
from hub.auth.texts import pick_lang
from hub.forms import builder_delete as _delete
from hub.forms import builder_pages as _pages
from hub.forms import builder_store as store
from hub.forms import service
from hub.forms.builder_common import (
    MAX_IMPORT_BYTES,
    PATH,
    SCHEMA,
    STATIC,
    TEXTS,
    actor,
    ctx_of,
    form_row,
    not_found,
    posted_of,
    to,
)
from hub.forms.builder_edit import EditRefused, Issue, set_settings
from hub.forms.builder_pages import builder_page
from hub.forms.builder_post import Posted, one, text_of
from hub.forms.builder_views import issues_view
from hub.forms.context import Forms
from hub.forms.model import MAX_FEE_YEN, MAX_RETENTION_DAYS, REFUSALS
from hub.forms.pages import render_staff
from hub.forms.versions import NotEditable, export_form
from hub.forms.webhook import UrlPolicy, UrlRefused
from hub.kit.runtime import runtime
from hub.kit.uploads import UploadError, read_upload
from hub.web.api import ApiError, Param, Route, lang_param

# --- the dashboard, new form, import --------------------------------------------------------

async def list_page(request: web.Request, issues: list[Issue] | None = None,
                    status: int = 200, values: dict[str, str] | None = None) -> web.Response:
    grants = request[SESSION_KEY].grants
    allowed = service.departments_of(grants)
    rows = await store.listing(ctx_of(request), allowed)
    return render_staff(request, "builder_list.html", TEXTS, status, forms=rows,
                        departments=sorted(allowed) if allowed is not None else None,
                        errors=issues_view(issues or [], pick_lang(request), None),
                        values=values or {}, done=request.query.get("done", ""))


def _department(request: web.Request, posted: Posted) -> str:
    allowed = service.departments_of(request[SESSION_KEY].grants)
    chosen = one(posted, "department", 64)
    if not chosen:
        raise EditRefused([Issue("no_department", "department", "所属課を選んでください",
                                 "Choose a department")])
    if allowed is not None and chosen not in allowed:
        raise EditRefused([Issue("not_your_department", "department",
                                 "担当の所属課だけを選べます",
                                 "Choose one of your own departments")])
    return chosen


async def new_post(request: web.Request) -> web.StreamResponse:
    posted = await posted_of(request)
    try:
        form_id = await store.create(ctx_of(request), _department(request, posted),
                                     one(posted, "title_ja", 200), one(posted, "title_en", 200),
                                     actor(request), ip_of(request))
    except EditRefused as exc:
        return await list_page(request, list(exc.issues), 400,
                               {k: one(posted, k) for k in ("department", "title_ja",
                                                             "title_en")})
    raise to(request, form_id, done="created")


async def import_post(request: web.Request) -> web.StreamResponse:
    try:
        data, got = await read_upload(request, MAX_IMPORT_BYTES, ("department",))
    except UploadError as exc:
        return await list_page(request, [Issue(
            exc.code, "file", "ファイルを読めませんでした（2MBまで）",
            "The file could not be read (2 MB at most)")], 400)
    fields = {k: [v] for k, v in got.items()}
    try:
        department = _department(request, fields)
        form_id = await store.import_file(ctx_of(request), department, data, actor(request),
                                          ip_of(request))
    except EditRefused as exc:
        return await list_page(request, list(exc.issues), 400)
    raise to(request, form_id, done="imported")


async def schema(request: web.Request) -> web.Response:
    return web.Response(body=SCHEMA.read_bytes(), content_type="application/schema+json",
                        headers={"Content-Disposition": 'inline; filename="form-schema.json"'})


# --- settings -------------------------------------------------------------------------------

SETTING_KEYS = ("title_ja", "title_en", "description_ja", "description_en", "identity",
                "retention_days", "fee_yen", "fee_note_ja", "fee_note_en", "webhook_url",
                "notify")


async def settings_page(request: web.Request, row: Any = None, issues: list[Issue] | None = None,
                        status: int = 200, values: dict[str, str] | None = None,
                        secret: str = "") -> web.Response:
    row = row if row is not None else await form_row(request)
    if row is None:
        return not_found(request)
    ctx, draft = ctx_of(request), service.draft_of(row)
    url, notify, secrets = store.contacts(ctx, row)
    shown = values or {
        "title_ja": draft.title.ja, "title_en": draft.title.en,
        "description_ja": draft.description.ja if draft.description else "",
        "description_en": draft.description.en if draft.description else "",
        "identity": draft.identity, "retention_days": str(draft.retention_days),
        "fee_yen": str(draft.fee_yen),
        "fee_note_ja": draft.fee_note.ja if draft.fee_note else "",
        "fee_note_en": draft.fee_note.en if draft.fee_note else "",
        "webhook_url": url, "notify": "\n".join(notify)}
    return render_staff(request, "builder_settings.html", TEXTS, status, form=row, draft=draft,
                        values=shown, secrets=secrets, secret=secret,
                        max_days=MAX_RETENTION_DAYS, max_fee=MAX_FEE_YEN,
                        payments=ctx.payments is not None, done=request.query.get("done", ""),
                        errors=issues_view(issues or [], pick_lang(request), draft))


def _read_settings(ctx: Forms, posted: Posted) -> tuple[dict[str, Any], str, list[str]]:
    issues: list[Issue] = []
    changes: dict[str, Any] = {}
    for key, required in (("title", True), ("description", False), ("fee_note", False)):
        try:
            changes[key] = text_of(posted, key, required)
        except EditRefused as exc:
            issues.extend(exc.issues)
    changes["identity"] = one(posted, "identity", 20)
    days = one(posted, "retention_days", 10)
    if days.isdigit() and 1 <= int(days) <= MAX_RETENTION_DAYS:
        changes["retention_days"] = int(days)
    else:
        issues.append(Issue("bad_retention", "retention_days",
                            f"保存期間は1から{MAX_RETENTION_DAYS}日（最長5年）で入力してください",
                            f"Retention: 1 to {MAX_RETENTION_DAYS} days (5 years at most)"))
    fee = one(posted, "fee_yen", 12).replace(",", "").replace("円", "").strip() or "0"
    if fee.isdigit() and int(fee) <= MAX_FEE_YEN:
        changes["fee_yen"] = int(fee)
    else:
        refusal = REFUSALS["bad_fee"]
        issues.append(Issue("bad_fee", "fee_yen", refusal.ja, refusal.en))
    url = one(posted, "webhook_url", 2000)
    if url:
        try:
            UrlPolicy(ctx.settings.webhook_allow_private).check_url(url)
        except UrlRefused:
            issues.append(Issue("bad_webhook", "webhook_url",
                                "Webhook の URL は https で、内部のアドレス以外にしてください",
                                "The webhook URL must be https and not an internal address"))
    notify = [a.strip() for a in one(posted, "notify", 5000).replace(",", "\n").splitlines()
              if a.strip()]
    if any("@" not in a or " " in a or len(a) > 254 for a in notify):
        issues.append(Issue("bad_address", "notify", "通知先のメールアドレスを確認してください",
                            "Check the notification addresses"))
    if issues:
        raise EditRefused(issues)
    return changes, url, notify


async def settings_post(request: web.Request) -> web.StreamResponse:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    posted = await posted_of(request)
    ctx = ctx_of(request)
    fid = str(row.id)
    try:
        changes, url, notify = _read_settings(ctx, posted)
        await store.change(ctx, fid, "settings", lambda d: set_settings(d, changes),
                           actor(request), ip_of(request))
    except EditRefused as exc:
        return await settings_page(request, row, list(exc.issues), 400,
                                   {k: one(posted, k) for k in SETTING_KEYS})
    await store.save_delivery(ctx, fid, url, notify, actor(request), ip_of(request))
    raise to(request, fid, "/settings", done="saved")


async def secret_post(request: web.Request) -> web.StreamResponse:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    secret = await store.issue_secret(ctx_of(request), str(row.id), actor(request),
                                      ip_of(request))
    return await settings_page(request, await form_row(request), secret=secret)


# --- preview --------------------------------------------------------------------------------

async def preview(request: web.Request) -> web.Response:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    draft = service.draft_of(row)
    raw = request.query.get("page", "1")
    number = int(raw) if raw.isdigit() and 1 <= int(raw) <= len(draft.pages) else 1
    try:
        runtime(request).jinja.get_template("forms/fields.html")
        ready = True
    except TemplateNotFound:
        ready = False
    resident_css = (STATIC / "forms-resident.css").is_file()
    return render_staff(request, "builder_preview.html", TEXTS, form=row, draft=draft,
                        resident_css=resident_css,
                        number=number, page=draft.pages[number - 1], fields_ready=ready,
                        form_lang=(request.query.get("form_lang") if request.query.get(
                            "form_lang") in ("ja", "en") else pick_lang(request)))


# --- lifecycle ------------------------------------------------------------------------------

async def _lifecycle(request: web.Request, work: Any, done: str) -> web.StreamResponse:
    row = await form_row(request)
    if row is None:
        return not_found(request)
    try:
        got = await work(ctx_of(request), row, actor(request), ip_of(request))
    except EditRefused as exc:
        return await builder_page(request, await form_row(request), list(exc.issues), 409)
    except NotEditable:
        return await builder_page(request, row, [Issue(
            "not_editable", "form", "公開済みの版は変更できません",
            "A published version cannot be changed")], 409)
    raise to(request, got if isinstance(got, str) else str(row.id), done=done)


async def publish_post(request: web.Request) -> web.StreamResponse:
    return await _lifecycle(request, lambda c, r, a, i: store.publish(c, str(r.id), a, i),
                            "published")


async def close_post(request: web.Request) -> web.StreamResponse:
    return await _lifecycle(
        request, lambda c, r, a, i: store.set_status(c, str(r.id), "closed", a, i), "closed")


async def reopen_post(request: web.Request) -> web.StreamResponse:
    return await _lifecycle(
        request, lambda c, r, a, i: store.set_status(c, str(r.id), "published", a, i),
        "reopened")


async def copy_post(request: web.Request) -> web.StreamResponse:
    return await _lifecycle(request, store.copy, "copied")


async def export(request: web.Request) -> web.StreamResponse:
    """A JSON download, so its refusals are JSON errors too (``{"error": …}``)."""
    row = await form_row(request)
    missing = ApiError(404, "not_found", "No such form or version",
                       "フォームまたは版が見つかりません")
    if row is None:
        raise missing
    ctx = ctx_of(request)
    raw = request.query.get("version", "")
    form = await service.version_of(ctx, str(row.id), int(raw)) if raw.isdigit() else (
        service.draft_of(row))
    if form is None:
        raise missing
    await store.audit_export(ctx, str(row.id), int(raw) if raw.isdigit() else None,
                             actor(request), ip_of(request))
    body = json.dumps(export_form(form), ensure_ascii=False, indent=2)
    name = f"form-{row.id}" + (f"-v{raw}" if raw.isdigit() else "-draft") + ".json"
    return web.Response(text=body, content_type="application/json", charset="utf-8", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})


_LANG = lang_param(("ja", "en"))
_FORM = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}}}}
_UPLOAD = {"multipart/form-data": {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"}, "department": {"type": "string"}}}}
_ID = f"{PATH}/{{form_id}}"


def _get(path: str, summary: str, handler: Any, *query: Param,
         content_type: str = "text/html") -> Route:
    return Route("GET", path, summary, handler, access="forms", content_type=content_type,
                 query=(_LANG, *query))


def _post(path: str, summary: str, handler: Any, body: Any = None) -> Route:
    return Route("POST", path, summary, handler, access="forms", content_type="text/html",
                 body=body or _FORM, query=(_LANG,),
                 also={303: "done: back to the page"})


ROUTES: tuple[Route, ...] = (
    _get(PATH, "Dashboard: the forms of the caller's departments with status, published "
         "version, submissions by status and the last 30 days' views, starts and submissions",
         list_page),
    _get(f"{PATH}/schema.json", "The JSON Schema of a form definition "
         "(docs/forms/form-schema.json)", schema, content_type="application/schema+json"),
    _post(f"{PATH}/new", "Create a form (department, title_ja, title_en) with one empty page; "
          "audited form_created", new_post),
    _post(f"{PATH}/import", "Import an exported form (multipart: file, department; the CSRF "
          "token as ?csrf=) as a new draft; every problem listed, nothing saved on error; "
          "audited form_imported", import_post, _UPLOAD),
    _get(_ID, "The builder: the draft's pages and fields, versions, publish", _pages.page_get),
    _post(f"{_ID}/pages", "Add a page; audited form_changed", _pages.add_page_post),
    _post(f"{_ID}/pages/{{page_id}}", "Change a page's title and condition",
          _pages.page_post),
    _post(f"{_ID}/pages/{{page_id}}/move", "Move a page (dir=up|down)", _pages.page_move_post),
    _post(f"{_ID}/pages/{{page_id}}/delete", "Delete a page (refused while a condition uses "
          "it)", _pages.page_delete_post),
    _post(f"{_ID}/pages/{{page_id}}/fields", "Add a field of a type (type=text…fixed_text)",
          _pages.add_field_post),
    _get(f"{_ID}/fields/{{field_id}}", "A field's settings", _pages.field_get),
    _post(f"{_ID}/fields/{{field_id}}", "Change a field's settings", _pages.field_post),
    _post(f"{_ID}/fields/{{field_id}}/move", "Move a field (dir=up|down)",
          _pages.field_move_post),
    _post(f"{_ID}/fields/{{field_id}}/delete", "Delete a field (refused while a condition "
          "uses it)", _pages.field_delete_post),
    _get(f"{_ID}/settings", "The form's settings", settings_page),
    _post(f"{_ID}/settings", "Change title, description, identity, retention, webhook URL, "
          "staff notification addresses", settings_post),
    _post(f"{_ID}/secret", "Issue a new webhook signing secret (shown once); audited "
          "form_secret_created", secret_post),
    _get(f"{_ID}/preview", "The draft in a phone-sized frame", preview,
         Param("page", "page number from 1", schema={"type": "integer", "minimum": 1})),
    _post(f"{_ID}/publish", "Publish the draft as the next version; audited form_published",
          publish_post),
    _post(f"{_ID}/close", "Close a published form; audited form_closed", close_post),
    _post(f"{_ID}/reopen", "Reopen a closed form", reopen_post),
    _post(f"{_ID}/copy", "Copy the form as a new draft; audited form_copied", copy_post),
    _get(f"{_ID}/delete", "Confirm deleting the form: what goes with it, or why it cannot go",
         _delete.confirm_get),
    _post(f"{_ID}/delete", "Delete a form that is not taking applications and holds none "
          "(versions, residents' drafts and their files go too); 409 otherwise; audited "
          "form_deleted", _delete.delete_post),
    _get(f"{_ID}/export.json", "Download the draft (or ?version=n) as export JSON; audited "
         "form_exported", export, Param("version", "a published version",
                                        schema={"type": "integer", "minimum": 1}),
         content_type="application/json"),
)
