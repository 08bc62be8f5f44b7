"""``/admin/stats`` (the report, its charts, the CSV export and the column-set editor) for
administrators, ward staff and statistics viewers, each seeing the sites of their grants.

Thin handlers: the form is read by ``forms``, the figures by ``report``, the page's pieces by
``page``; column sets are stored and audited by ``columns``, exports audited by ``export``
before the first byte. The column editor works without script: moving a column is a link that
carries the edited list in ``cols``; saving is a form post with the CSRF token. A refused value
shows the page again (400) with the message at its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.texts import LANGS, pick_lang
from hub.auth.texts import TEXTS as AUTH_TEXTS
from hub.kit.i18n import load_catalogue
from hub.kit.runtime import runtime
from hub.stats import columns, forms
from hub.stats import page as build
from hub.stats.export import csv_chunks, record_export
from hub.stats.periods import fiscal_year
from hub.stats.rollup import TZ
from hub.store.store import now_utc
from hub.web.api import CONFIGS, ApiError, Param, Route, lang_param
from hub.web.views import all_sites

HERE = Path(__file__).resolve().parent
PATH = "/admin/stats"
TEMPLATES = HERE / "templates"
TEXTS: dict[str, dict[str, Any]] = load_catalogue(HERE / "i18n", LANGS)
HEADERS = {"Cache-Control": "no-store"}
WARD_ROLES = ("admin", "ward_staff")
ALL = "*"


def scope_of(grants: tuple[tuple[str, str], ...]) -> set[str] | None:
    """The sites a session may see here; None: every site (an administrator, or a statistics
    role granted at ``*``)."""
    sites: set[str] = set()
    for site, role in grants:
        if role == "admin" or (role in ("ward_staff", "stats_viewer") and site == ALL):
            return None
        if role in ("ward_staff", "stats_viewer"):
            sites.add(site)
    return sites


def may_ward(grants: tuple[tuple[str, str], ...]) -> bool:
    """Ward column sets are saved and deleted by ward staff and administrators only."""
    return any(role in WARD_ROLES for _s, role in grants)


async def _sites(request: web.Request, lang: str) -> list[tuple[str, str]]:
    """(code, label) of every site the session may see, by code."""
    allowed = scope_of(request[SESSION_KEY].grants)
    out = []
    for s in await all_sites(runtime(request).store, request.app[CONFIGS]):
        code = str(s["site"])
        if allowed is None or code in allowed:
            names = s.get("name") or {}
            name = names.get(lang) or names.get("ja") or code
            out.append((code, name if name == code else f"{name}（{code}）" if lang == "ja"
                        else f"{name} ({code})"))
    return sorted(out)


def _form(request: web.Request) -> forms.Form:
    today = now_utc().astimezone(TZ).date()
    return forms.read(request.query, request.query.getall("site", []), today)


async def _saved_sets(request: web.Request) -> list[columns.ColumnSet]:
    return await columns.list_sets(runtime(request).store, request[SESSION_KEY].login)


async def _render(request: web.Request, form: forms.Form, status: int = 200, *,
                  error: forms.FieldError | columns.ColumnError | None = None,
                  name: str = "", owner: str = "me") -> web.Response:
    current = request[SESSION_KEY]
    rt = runtime(request)
    lang = pick_lang(request)
    s = TEXTS[lang]
    sites = await _sites(request, lang)
    sets = await _saved_sets(request)
    saved = {str(cs.id): cs.columns for cs in sets}
    values: dict[str, Any] = {"report": None, "charts": [], "summary": [], "web": []}
    draft: tuple[str, ...] = columns.DEFAULT_COLUMNS
    try:
        draft = forms.draft(form, saved)
    except forms.FieldError as exc:
        error, status = error or exc, 400
    add = request.query.get("add", "")
    if add:  # the editor's "add a column" (a form without script)
        draft = forms.moved(draft, f"add:{add}")
        form.cols = ",".join(draft)
    if error is None or error.field in ("cols", "name", "owner", "columns", "set"):
        try:
            scope = forms.scope(form, scope_of(current.grants), [c for c, _ in sites])
        except forms.FieldError as exc:
            error, status = exc, 400
        else:
            values = await build.report_values(rt.store, scope, draft, lang, s, dict(sites))
    html = rt.render(
        "stats/stats.html", lang=lang, t=AUTH_TEXTS[lang], s=s, csrf=current.csrf,
        admin_nav=scope_of(current.grants) is None and any(
            r == "admin" for _s, r in current.grants),
        form=form, error=error, sites=sites, groups=forms.GROUPS,
        kinds=("day", "week", "month", "fy", "range"), sets=sets, draft=draft,
        editor=build.editor(draft, form, lang), may_ward=may_ward(current.grants),
        name=name, owner=owner, saved=request.query.get("saved", ""),
        fy_now=fiscal_year(now_utc().astimezone(TZ).date()), **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **HEADERS})


async def stats_page(request: web.Request) -> web.Response:
    return await _render(request, _form(request))


def _wants_page(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


async def stats_export(request: web.Request) -> web.StreamResponse:
    """The report as CSV, streamed; the export is audited before the first byte. A refused
    form: the page with the message at its field for a browser, a JSON error otherwise."""
    current = request[SESSION_KEY]
    rt = runtime(request)
    form = _form(request)
    lang = pick_lang(request)
    try:
        sites = await _sites(request, lang)
        scope = forms.scope(form, scope_of(current.grants), [c for c, _ in sites])
        cols = forms.draft(form, {str(cs.id): cs.columns for cs in await _saved_sets(request)})
        encoding = forms.encoding(form)
        headers_lang = "en" if form.headers == "en" else "ja"
    except forms.FieldError as exc:
        if _wants_page(request):
            return await _render(request, form, 400, error=exc)
        text = TEXTS["en"]["errors"].get(exc.code, exc.code)
        raise ApiError(400, "bad_parameter", f"{exc.field}: {text}",
                       f"{exc.field}: {TEXTS['ja']['errors'].get(exc.code, exc.code)}") \
            from None
    await record_export(rt.store, rt.settings, scope, cols, encoding, actor=current.staff_id,
                        ip=ip_of(request))
    chunks = csv_chunks(rt.store, scope, cols, encoding=encoding, lang=headers_lang)
    first = await anext(chunks, b"")  # a failure before any byte is sent is a normal error
    charset = "shift_jis" if encoding == "cp932" else "utf-8"
    name = f"stats-{scope.period.kind}-{scope.period.start:%Y%m%d}-{scope.period.end:%Y%m%d}"
    response = web.StreamResponse(headers={
        "Content-Type": f"text/csv; charset={charset}",
        "Content-Disposition": f'attachment; filename="{name}.csv"',
        "X-Content-Type-Options": "nosniff", **HEADERS})
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    except (SQLAlchemyError, OSError):
        # headers are sent: cut the stream so the download fails visibly, not short
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def column_set_save(request: web.Request) -> web.StreamResponse:
    """Save the edited columns as a named set, for me or (ward staff, admin) for the ward."""
    current = request[SESSION_KEY]
    post = {k: str(v) for k, v in (await request.post()).items()}
    form = _form(request)
    form.cols = post.get("cols", "")[:4000]
    name, owner = post.get("name", "")[:200], post.get("owner", "me")
    rt = runtime(request)
    try:
        if owner not in ("me", "ward") or (owner == "ward" and not may_ward(current.grants)):
            raise columns.ColumnError("owner", "bad_owner")
        cols = columns.validate([c for c in form.cols.split(",") if c])
        saved = await columns.save_set(
            rt.store, rt.settings, owner=columns.WARD if owner == "ward" else current.login,
            name=name, columns=list(cols), actor=current.staff_id, login=current.login,
            ip=ip_of(request))
    except (columns.ColumnError, forms.FieldError) as exc:
        return await _render(request, form, 400, error=exc, name=name[:64], owner=owner)
    form.set, form.cols = str(saved.id), ""
    raise web.HTTPSeeOther(build.url(form, pick_lang(request), saved="saved") + "#columns")


async def column_set_delete(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    post = {k: str(v) for k, v in (await request.post()).items()}
    form = _form(request)
    raw = post.get("id", "")
    rt = runtime(request)
    done = raw.isascii() and raw.isdigit() and len(raw) < 10 and await columns.delete_set(
        rt.store, rt.settings, int(raw), login=current.login, may_ward=may_ward(current.grants),
        actor=current.staff_id, ip=ip_of(request))
    form.set, form.cols = "default", ""
    raise web.HTTPSeeOther(build.url(form, pick_lang(request),
                                     saved="deleted" if done else "not_deleted") + "#columns")


_QUERY = (
    lang_param(LANGS),
    Param("kind", "period kind", schema={"enum": ["day", "week", "month", "fy", "range"]}),
    Param("value", "the period: YYYY-MM-DD (day), YYYY-Www (week), YYYY-MM (month), YYYY "
          "(fiscal year from April 1)", schema={"type": "string"}),
    Param("start", "range: first day YYYY-MM-DD", schema={"type": "string"}),
    Param("end", "range: last day YYYY-MM-DD", schema={"type": "string"}),
    Param("site", "a site (repeatable; none: every site of the caller's grants)",
          schema={"type": "string"}),
    Param("group", "grouping", schema={"enum": list(forms.GROUPS)}),
    Param("by", "second grouping", schema={"type": "string"}),
    Param("service", "only this service", schema={"type": "string"}),
    Param("counter", "only this counter", schema={"type": "string"}),
    Param("staff", "only this staff member (login)", schema={"type": "string"}),
    Param("set", "column set id, or default", schema={"type": "string"}),
    Param("cols", "the edited columns, comma-separated keys", schema={"type": "string"}),
)
_FORM = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}, "name": {"type": "string", "maxLength": columns.MAX_NAME},
    "owner": {"enum": ["me", "ward"]}, "cols": {"type": "string"}, "id": {"type": "string"}}}}

ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "Statistics report of the caller's sites for a day, week, month, fiscal "
          "year or range, grouped as asked, with the same period last year, charts, the CSV "
          "export form and the column-set editor; 400 with the field at fault", stats_page,
          access="stats", content_type="text/html", query=_QUERY),
    Route("GET", f"{PATH}/export", "The report as CSV (columns of a saved set or ?cols=, "
          "?encoding=utf-8-sig|cp932, ?headers=ja|en), streamed; the export is audited",
          stats_export, access="stats", content_type="text/csv", query=(
              *_QUERY, Param("encoding", "utf-8-sig (UTF-8 with BOM) or cp932 (Shift_JIS)",
                             schema={"enum": ["utf-8-sig", "cp932"]}),
              Param("headers", "header language", schema={"enum": ["ja", "en"]}))),
    Route("POST", f"{PATH}/column-sets", "Save the edited columns as a named set (form {csrf, "
          "name, owner: me|ward, cols}); ward sets for ward staff and administrators; audited; "
          "303 to the page or 400 with the field at fault", column_set_save, access="stats",
          content_type="text/html", body=_FORM),
    Route("POST", f"{PATH}/column-sets/delete", "Delete one of my column sets, or a ward set "
          "(ward staff, administrators) (form {csrf, id}); audited; 303 to the page",
          column_set_delete, access="stats", content_type="text/html", body=_FORM),
)
