"""The admin audit viewer: ``/admin/audit`` (page), ``/admin/audit.csv`` (export) and
``/admin/audit/verify`` (walk the chain now), all for administrators only.

Thin handlers over ``viewer`` (filters, banner, verification) and ``search`` (pages, CSV).
The page extends the staff pages' template and navigation (``hub/auth/templates``), found by
the app's one Jinja environment, so it looks like the other admin pages; its texts are this
module's catalogue (``i18n/``, the kit's loader), the frame's are hub/auth's.

Everything that shows rows is audited: a page view as ``personal_data_viewed`` (audit rows
hold staff ids and client addresses), an export as ``export``, a verification as
``audit_verified``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from hub.audit.chain import Row
from hub.audit.search import export_csv, search
from hub.audit.service import (
    ACTIONS,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    AuditError,
    audit_key,
    retention_days,
    set_retention_days,
)
from hub.audit.viewer import (
    JST,
    PAGE_SIZE,
    Check,
    FilterError,
    Filters,
    check_now,
    detail_items,
    last_check,
    local_time,
    parse_filters,
    record_view,
    to_query,
)
from hub.auth import accounts
from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.texts import LANGS, pick_lang
from hub.auth.texts import TEXTS as AUTH_TEXTS
from hub.kit.i18n import load_catalogue
from hub.kit.runtime import runtime
from hub.store.store import now_utc
from hub.web.api import SETTINGS, STORE, ApiError, Route

_LOGGER = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PATH = "/admin/audit"
TEMPLATES = HERE / "templates"
TEXTS: dict[str, dict[str, Any]] = load_catalogue(HERE / "i18n", LANGS)
# as the staff pages (hub.auth.texts.page): no caching of a page of personal data; CSP and
# framing come from the kit's security headers
HEADERS = {"Cache-Control": "no-store"}
_FORM_FIELDS = ("from", "to", "actor", "action", "target")


def _url(path: str, lang: str, **params: str | int | None) -> str:
    query = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode({**query, 'lang': lang})}"


def _who(actor: str | None, logins: dict[str, str], anonymous: str) -> str:
    if actor is None:
        return anonymous
    return logins.get(actor, actor)


def _row_view(row: Row, logins: dict[str, str], texts: dict[str, Any],
              lang: str) -> dict[str, Any]:
    return {"id": row.id, "time": local_time(row.at), "actor": _who(row.actor, logins,
                                                                      texts["anonymous"]),
            "actor_id": row.actor or "", "action": row.action,
            "action_label": texts["actions"].get(row.action, row.action),
            "target": logins.get(row.target or "", row.target or "—"),
            "target_id": row.target or "", "ip": row.ip or "—",
            "detail": detail_items(row.detail, lang)}


def _banner(check: Check, logins: dict[str, str], texts: dict[str, Any],
            lang: str) -> dict[str, Any]:
    """The chain banner's state and sentences."""
    when = local_time(check.at) if check.at else ""
    who = _who(check.actor, logins, texts["anonymous"])
    message = check.message_ja if lang == "ja" else \
        (check.message_en[:1].upper() + check.message_en[1:] + ".").replace("..", ".")
    lines: list[str] = []
    if check.state == "none":
        lines.append(texts["chain_none"])
    elif check.state == "ok":
        lines.append(texts["chain_ok"].format(when=when, who=who, rows=check.rows,
                                              head=check.head_id))
        if check.newer:
            lines.append(texts["chain_newer"].format(newer=check.newer))
    elif check.state == "broken":
        lines.append(texts["chain_broken"].format(when=when, bad=check.bad_id))
        if message:
            lines.append(message)
    else:
        lines.append(texts["chain_forged"].format(run=check.run_id, bad=check.bad_id))
    return {"state": check.state, "lines": lines, "bad_id": check.bad_id,
            "kind": texts["kinds"].get(check.kind or "", check.kind or "")}


def _render(request: web.Request, status: int = 200, **values: Any) -> web.Response:
    lang = pick_lang(request)
    html = runtime(request).render(
        "audit/audit.html", lang=lang, t=AUTH_TEXTS[lang], a=TEXTS[lang], admin_nav=True, **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **HEADERS})


async def _logins(request: web.Request) -> dict[str, str]:
    """staff id -> login, to show and search accounts by login (ids are what rows hold)."""
    return {str(a["id"]): str(a["login"]) for a in await accounts.list_staff(request.app[STORE])}


async def audit_page(request: web.Request) -> web.Response:
    current = request[SESSION_KEY]
    store, settings, lang = request.app[STORE], request.app[SETTINGS], pick_lang(request)
    texts = TEXTS[lang]
    logins = await _logins(request)
    # the catalogue's order (sign-in, accounts, settings, exports, views, the trail itself)
    choices = [*texts["actions"].items(),
               *((code, code) for code in sorted(ACTIONS - texts["actions"].keys()))]
    common: dict[str, Any] = {
        "csrf": current.csrf, "logins": sorted(logins.values()), "actions": choices,
        "banner": _banner(await last_check(store, settings), logins, texts, lang),
        "retention": {"days": await retention_days(store), "min": MIN_RETENTION_DAYS,
                      "max": MAX_RETENTION_DAYS, "url": _url(f"{PATH}/retention", lang),
                      "saved": request.query.get("retention") == "saved",
                      "error": request.query.get("retention") == "out_of_range"}}
    try:
        filters = parse_filters(request.query)
    except FilterError as exc:
        form = {k: request.query.get(k, "")[:200] for k in _FORM_FIELDS}
        return _render(request, 400, error=exc.code, error_field=exc.field, form=form,
                       rows=[], pages={}, verify_url=_url(f"{PATH}/verify", lang),
                       export_url="", **common)
    query = to_query(filters, logins)
    rows = await search(store, query, limit=PAGE_SIZE + 1, before_id=filters.before,
                        after_id=filters.after)
    if filters.after is not None and len(rows) <= PAGE_SIZE:
        filters = Filters(filters.since, filters.until, filters.actor, filters.action,
                          filters.target)  # nothing newer than a page: show the newest page
        rows = await search(store, query, limit=PAGE_SIZE + 1)
    if filters.after is not None:
        more_newer, more_older, rows = True, True, rows[1:]
    else:
        more_newer, more_older, rows = filters.before is not None, len(rows) > PAGE_SIZE, \
            rows[:PAGE_SIZE]
    await record_view(store, request.app[SETTINGS], query, filters, rows,
                      actor=current.staff_id, ip=ip_of(request))
    params = filters.params()
    pages = {}
    if rows and more_newer:
        pages["newest"] = _url(PATH, lang, **params)
        pages["newer"] = _url(PATH, lang, **params, after=rows[0].id)
    if rows and more_older:
        pages["older"] = _url(PATH, lang, **params, before=rows[-1].id)
    summary = texts["page_of"].format(count=len(rows), first=rows[-1].id,
                                      last=rows[0].id) if rows else ""
    return _render(request, error=None, error_field=None, form=params,
                   rows=[_row_view(r, logins, texts, lang) for r in rows], pages=pages,
                   summary=summary, verify_url=_url(f"{PATH}/verify", lang, **params),
                   export_url=_url(f"{PATH}.csv", lang, **params), **common)


async def audit_verify(request: web.Request) -> web.StreamResponse:
    """Walk the chain now (POST, CSRF-checked by the guard), then back to the page (303), whose
    banner shows the run's recorded result."""
    current = request[SESSION_KEY]
    await check_now(request.app[STORE], request.app[SETTINGS], actor=current.staff_id,
                    ip=ip_of(request))
    try:
        params = parse_filters(request.query).params()
    except FilterError:
        params = {}
    raise web.HTTPSeeOther(_url(PATH, pick_lang(request), **params) + "#chain")


async def audit_retention(request: web.Request) -> web.StreamResponse:
    """Staff set how long the trail is kept (3-10 years; A3); the change is audited with the
    old and new values. 303 back to the page, which says saved or shows the allowed range."""
    current = request[SESSION_KEY]
    form = await request.post()
    lang = pick_lang(request)
    try:
        days = int(str(form.get("days", "")).strip())
        key, key_id = audit_key(request.app[SETTINGS])
        await set_retention_days(request.app[STORE], days, actor=current.staff_id,
                                 ip=ip_of(request), key=key, key_id=key_id)
    except (ValueError, AuditError):
        raise web.HTTPSeeOther(_url(PATH, lang, retention="out_of_range") + "#retention") \
            from None
    raise web.HTTPSeeOther(_url(PATH, lang, retention="saved") + "#retention")


async def audit_csv(request: web.Request) -> web.StreamResponse:
    """The filtered rows as CSV (oldest first, UTF-8 with BOM), streamed chunk by chunk; the
    export is recorded before the first row is read (``search.export_csv``)."""
    current = request[SESSION_KEY]
    try:
        filters = parse_filters(request.query)
    except FilterError as exc:  # a hand-made URL: the page's links carry checked filters
        raise ApiError(400, "bad_filter", f"{exc.field}: {TEXTS['en']['errors'][exc.code]}",
                       f"{exc.field}: {TEXTS['ja']['errors'][exc.code]}") from None
    store, settings = request.app[STORE], request.app[SETTINGS]
    key, key_id = audit_key(settings)
    chunks = export_csv(store, to_query(filters, await _logins(request)),
                        actor=current.staff_id, ip=ip_of(request), key=key, key_id=key_id)
    first = await anext(chunks)  # records the export: a failure here is a normal error page
    stamp = now_utc().astimezone(JST).strftime("%Y%m%d-%H%M%S")
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    await response.prepare(request)
    try:
        await response.write(first.encode("utf-8"))
        async for chunk in chunks:
            await response.write(chunk.encode("utf-8"))
    except (SQLAlchemyError, OSError):
        # headers are sent: no error page is possible; cut the stream so the download fails
        # visibly instead of ending as a silently short file
        _LOGGER.exception("audit export failed mid-stream")
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "Audit trail (administrators): rows newest first, filters ?from= ?to= "
          "(JST dates) ?actor= ?action= ?target=, keyset pages ?before= ?after=; viewing is "
          "audited", audit_page, access="admin", content_type="text/html"),
    Route("GET", f"{PATH}.csv", "The filtered audit rows as CSV (UTF-8 with BOM, oldest first); "
          "the export is audited", audit_csv, access="admin", content_type="text/csv"),
    Route("POST", f"{PATH}/verify", "Verify the whole chain now and record the result "
          "(form {csrf}); 303 to the page", audit_verify, access="admin",
          content_type="text/html"),
    Route("POST", f"{PATH}/retention", "Set how long the trail is kept, in days (form {csrf, "
          "days}: 1096-3653); audited; 303 to the page", audit_retention, access="admin",
          content_type="text/html"),
)
