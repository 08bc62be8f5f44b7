"""The settings editor's pages: ``/admin/settings`` (sites), ``/admin/settings/{site}`` (edit,
check, publish), ``/admin/settings/{site}/versions`` (history, diff, rollback).

Thin handlers over ``form`` (fields <-> TOML), ``view`` (problems at fields, diff, preview) and
``service`` (version check, push, audit). Server-rendered forms: every step works without
JavaScript, by keyboard, on an office PC. The draft travels in the form (compressed), so moving
between parts, adding rows and checking never stores anything; only "publish" does.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from edge.config import ConfigError, Problem
from hub.auth.access import ANY_SITE
from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.staffpage import staff_page
from hub.auth.texts import LANGS, pick_lang
from hub.kit.i18n import load_catalogue
from hub.kit.runtime import runtime
from hub.siteconfig import service, ward
from hub.siteconfig.form import PART, PARTS, apply, read_form
from hub.siteconfig.view import (
    Placed,
    decode_draft,
    diff,
    encode_draft,
    field_id,
    field_names,
    load,
    message_ja,
    part_rows,
    place,
    preview,
)
from hub.store.store import now_utc
from hub.web.api import Route

_LOGGER = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PATH = "/admin/settings"
TEMPLATES = HERE / "templates"
TEXTS: dict[str, dict[str, Any]] = load_catalogue(HERE / "i18n", LANGS)
HEADERS = {"Cache-Control": "no-store"}


JST = _dt.timezone(_dt.timedelta(hours=9), "JST")


def settings_time(at: _dt.datetime) -> str:
    """A stored UTC time as Japan time, to the minute."""
    return at.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def _url(path: str, lang: str, **params: str | int | None) -> str:
    query = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode({**query, 'lang': lang})}"


def _render(request: web.Request, template: str, status: int = 200,
            **values: Any) -> web.Response:
    return staff_page(request, f"siteconfig/{template}", TEXTS, status, HEADERS,
                      settings_nav=True, **values)


def _site_name(text: str, lang: str, site: str) -> str:
    top = load(text).get("site")
    names = top.get("name") if isinstance(top, dict) else None
    if not isinstance(names, dict):
        return site
    return str(names.get(lang) or names.get("ja") or site)


def _may_edit(grants: tuple[tuple[str, str], ...], site: str) -> bool:
    return any(role == "admin" or (role == "ward_staff" and s in (ANY_SITE, site))
               for s, role in grants)


async def sites_page(request: web.Request) -> web.Response:
    """The sites this staff member may edit, with their live version."""
    rt = runtime(request)
    lang = pick_lang(request)
    grants = request[SESSION_KEY].grants
    rows = []
    async with rt.store.read() as tx:
        known = await tx.config_versions()
    for site, version in sorted(known.items()):
        if not _may_edit(grants, site):
            continue
        live = await rt.store.config(site)
        rows.append({"site": site, "name": _site_name(live[1] if live else "", lang, site),
                     "version": version, "edit": _url(f"{PATH}/{site}", lang),
                     "versions": _url(f"{PATH}/{site}/versions", lang)})
    return _render(request, "sites.html", rows=rows)


def _problem_view(p: Problem, placed: Placed, lang: str) -> dict[str, Any]:
    ja = message_ja(p.message)
    text = ja if lang == "ja" and ja else p.message
    return {"key": p.key, "text": text, "en": p.message if lang == "ja" and ja else "",
            "anchor": placed.anchors.get(id(p), "")}


async def _editor(request: web.Request, site: str, *, draft: str, base: int, part: str,
                  status: int = 200, add: bool = False, check: bool = False,
                  problems: list[Problem] | None = None, conflict: dict[str, Any] | None = None,
                  published: int | None = None, stale: bool = False) -> web.Response:
    rt = runtime(request)
    lang = pick_lang(request)
    live = await rt.store.config(site)
    live_version, live_text = live if live else (0, "")
    doc = load(draft)
    if problems is None:
        problems = service.problems(site, draft) if check else []
    names, rows = field_names(doc)
    placed = place(problems, names, rows)
    views = [_problem_view(p, placed, lang) for p in problems]
    by_part: dict[str, int] = {}
    for p in problems:
        by_part[str(p.loc[0]) if p.loc else ""] = by_part.get(str(p.loc[0]) if p.loc else "",
                                                               0) + 1
    chosen = PART.get(part, PARTS[0])
    return _render(
        request, "edit.html", status, site=site, base=base,
        site_name=_site_name(live_text, lang, site), live_version=live_version,
        draft=encode_draft(draft), part=chosen, parts=PARTS, by_part=by_part,
        rows=part_rows(chosen, doc, placed, add=add), placed=placed, problems=views,
        general=[v for v, p in zip(views, problems, strict=True) if p in placed.general],
        checked=check, changed=draft != live_text, published=published, stale=stale,
        diff=diff(live_text, draft) if check or conflict else [], conflict=conflict,
        preview=preview(doc, "ja") if check else None, field_id=field_id,
        msg=lambda p: _problem_view(p, placed, lang),
        action=_url(f"{PATH}/{site}", lang),
        versions_url=_url(f"{PATH}/{site}/versions", lang))


async def edit_page(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    live = await runtime(request).store.config(site)
    if live is None:
        raise web.HTTPNotFound(text=TEXTS[pick_lang(request)]["no_config"])
    published = request.query.get("published", "")
    return await _editor(request, site, draft=live[1], base=live[0],
                         part=request.query.get("part", "site"),
                         published=int(published) if published.isdigit() else None,
                         stale=request.query.get("stale") == "1")


def _fields(form: MultiDictProxy[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in form.items():
        if isinstance(value, str):
            out.setdefault(name, []).append(value)
    return out


async def edit_post(request: web.Request) -> web.StreamResponse:
    """One form, several buttons (``action``): ``part:<name>`` moves to another part, ``add``
    adds a row, ``check`` validates and shows the diff and preview, ``publish`` stores and
    pushes. Every one first writes the shown part's fields into the draft."""
    site = request.match_info["site"]
    rt = runtime(request)
    lang = pick_lang(request)
    form = _fields(await request.post())
    draft = decode_draft((form.get("draft") or [""])[-1])
    base_raw = (form.get("base_version") or [""])[-1]
    if draft is None or not base_raw.isdigit():
        raise web.HTTPSeeOther(_url(f"{PATH}/{site}", lang, stale="1"))
    base = int(base_raw)
    part = (form.get("part") or ["site"])[-1]
    draft = apply(draft, read_form(form))
    action = (form.get("action") or ["check"])[-1]
    if action.startswith("part:"):
        return await _editor(request, site, draft=draft, base=base, part=action[5:])
    if action == "add":
        return await _editor(request, site, draft=draft, base=base, part=part, add=True)
    if action != "publish":
        return await _editor(request, site, draft=draft, base=base, part=part, check=True)
    live = await rt.store.config(site)
    if live is not None and live[0] == base and live[1] == draft:  # nothing to publish
        return await _editor(request, site, draft=draft, base=base, part=part, check=True)
    current = request[SESSION_KEY]
    try:
        version = await service.publish(rt.store, rt.ingest, rt.settings, site, draft,
                                        base=base, actor=current.staff_id, ip=ip_of(request))
    except ConfigError as exc:
        return await _editor(request, site, draft=draft, base=base, part=part, status=422,
                             check=True, problems=exc.problems)
    except service.Conflict as exc:
        other = await rt.store.config(site, exc.live)
        older = await rt.store.config(site, exc.base)
        theirs = diff(older[1], other[1]) if older and other else []
        return await _editor(request, site, draft=draft, base=exc.live, part=part, status=409,
                             check=True, conflict={"base": exc.base, "live": exc.live,
                                                   "theirs": theirs})
    raise web.HTTPSeeOther(_url(f"{PATH}/{site}", lang, part=part, published=version))


async def versions_page(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    rt = runtime(request)
    lang = pick_lang(request)
    history = await service.versions(rt.store, site)
    if not history:
        raise web.HTTPNotFound(text=TEXTS[lang]["no_config"])
    shown_raw = request.query.get("show", "")
    shown = int(shown_raw) if shown_raw.isdigit() else history[0].version
    logins = {str(a["id"]): str(a["login"])
              for a in await _accounts(request)}
    this = await rt.store.config(site, shown)
    before = await rt.store.config(site, shown - 1) if shown > 1 else None
    return _render(
        request, "versions.html", site=site, live=history[0].version, shown=shown,
        history=[{"v": h, "who": logins.get(h.actor or "", h.actor or ""),
                  "url": _url(f"{PATH}/{site}/versions", lang, show=h.version)}
                 for h in history],
        diff=diff(before[1], this[1]) if before and this else [], first=before is None,
        rollback_url=_url(f"{PATH}/{site}/rollback", lang),
        edit_url=_url(f"{PATH}/{site}", lang), message=request.query.get("m", ""))


async def _accounts(request: web.Request) -> list[dict[str, Any]]:
    from hub.auth import accounts

    return await accounts.list_staff(runtime(request).store)


async def rollback(request: web.Request) -> web.StreamResponse:
    """Publish an earlier version's text again as the next version (form {csrf, version,
    base_version}); the same version check as a publish."""
    site = request.match_info["site"]
    rt = runtime(request)
    lang = pick_lang(request)
    form = await request.post()
    target, base = str(form.get("version", "")), str(form.get("base_version", ""))
    old = await rt.store.config(site, int(target)) if target.isdigit() else None
    back = f"{PATH}/{site}/versions"
    if old is None or not base.isdigit():
        raise web.HTTPSeeOther(_url(back, lang, m="bad_version"))
    try:
        version = await service.publish(rt.store, rt.ingest, rt.settings, site, old[1],
                                        base=int(base), actor=request[SESSION_KEY].staff_id,
                                        ip=ip_of(request), rollback_of=int(target))
    except service.Conflict:
        raise web.HTTPSeeOther(_url(back, lang, m="conflict")) from None
    except ConfigError:
        raise web.HTTPSeeOther(_url(back, lang, m="invalid", show=target)) from None
    raise web.HTTPSeeOther(_url(back, lang, m="rolled_back", show=version))


WARD = "/admin/ward-calendar"


def _all_sites(grants: tuple[tuple[str, str], ...]) -> bool:
    return any(role == "admin" or (role == "ward_staff" and s == ANY_SITE) for s, role in grants)


async def _ward_page(request: web.Request, status: int = 200, *, text: str | None = None,
                     bad: list[str] | None = None,
                     results: list[ward.Outcome] | None = None) -> web.Response:
    rt = runtime(request)
    sites = await ward.current(rt.store, await ward.known_sites(rt.store))
    union = sorted({d for s in sites for d in s.closed})
    today = now_utc().astimezone(JST).date()
    return _render(
        request, "ward.html", status, sites=sites, union=union,
        differ=[s.site for s in sites if list(s.closed) != union],
        text=text if text is not None else "\n".join(d.isoformat() for d in union if d >= today),
        bad=bad or [], results=results, automatic=ward.automatic(today),
        action=_url(WARD, pick_lang(request)))


def _require_all_sites(request: web.Request) -> None:
    if not _all_sites(request[SESSION_KEY].grants):
        raise web.HTTPForbidden(text=TEXTS[pick_lang(request)]["ward_only"])


async def ward_calendar(request: web.Request) -> web.Response:
    _require_all_sites(request)
    return await _ward_page(request)


async def ward_calendar_post(request: web.Request) -> web.Response:
    """Set the ward's closed days of every site (form {csrf, days}); each site whose list
    differs gets a new version (audited); the page lists what happened per site."""
    _require_all_sites(request)
    rt = runtime(request)
    text = str((await request.post()).get("days", ""))[:5000]
    days, bad = ward.parse_days(text, now_utc().astimezone(JST).date())
    if bad:
        return await _ward_page(request, 422, text=text, bad=bad)
    sites = await ward.current(rt.store, await ward.known_sites(rt.store))
    results = await ward.apply_all(rt.store, rt.ingest, rt.settings, sites, days,
                                   actor=request[SESSION_KEY].staff_id, ip=ip_of(request))
    return await _ward_page(request, results=results)


ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "Settings editor: the sites this staff member may edit",
          sites_page, access="ward_staff", content_type="text/html"),
    Route("GET", WARD, "The ward's closed days of every site, and the automatic closures "
          "(national holidays, year end) of the next 12 months (staff for every site)",
          ward_calendar, access="ward_staff", content_type="text/html"),
    Route("POST", WARD, "Set the ward's closed days of every site (form {csrf, days}: one date "
          "per line); each site whose list differs gets a new version; audited",
          ward_calendar_post, access="ward_staff", content_type="text/html"),
    Route("GET", f"{PATH}/{{site}}", "Settings editor of one site (?part=site|services|"
          "counters|menus|notices|voice|calendar|devices)", edit_page, access="ward_staff",
          content_type="text/html"),
    Route("POST", f"{PATH}/{{site}}", "Editor form (csrf, draft, base_version, part, action="
          "part:<name>|add|check|publish, the part's fields named by config key); publish "
          "stores version base+1 or answers 409 with the draft kept; audited",
          edit_post, access="ward_staff", content_type="text/html"),
    Route("GET", f"{PATH}/{{site}}/versions", "Versions of a site's settings, who published "
          "each, and the diff of one (?show=N)", versions_page, access="ward_staff",
          content_type="text/html"),
    Route("POST", f"{PATH}/{{site}}/rollback", "Publish an earlier version again (form {csrf, "
          "version, base_version}); audited; 303 to the versions page", rollback,
          access="ward_staff", content_type="text/html"),
)
