"""``/admin/fleet`` (the sites at a glance, alerts, rules and recipients; administrators and
ward staff, each seeing the sites of their roles) and the hub's ``/metrics``.

Thin handlers: the rules are parsed by ``rules.parse_form``, stored and audited by
``service``; the page is server-rendered on the staff frame (hub/auth templates) with this
module's texts. Forms post back with the CSRF token the guard checks; a refused value
re-renders the page (400) with the message at its field, a saved one redirects (303).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from edge.devices.health import reason
from edge.web.metrics import CONTENT_TYPE, exposition, not_allowed
from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.texts import LANGS, pick_lang
from hub.auth.texts import TEXTS as AUTH_TEXTS
from hub.fleet import service
from hub.fleet.job import FLEET, FLEET_SETTINGS, METRICS_GATE, Fleet, SiteView
from hub.fleet.mail import JST
from hub.fleet.metrics import hub_families
from hub.fleet.rules import LIMITS, RULES, RuleError, Thresholds, parse_form
from hub.kit.i18n import load_catalogue
from hub.kit.runtime import runtime
from hub.web.api import Route

HERE = Path(__file__).resolve().parent
PATH = "/admin/fleet"
TEMPLATES = HERE / "templates"
TEXTS: dict[str, dict[str, Any]] = load_catalogue(HERE / "i18n", LANGS)
HEADERS = {"Cache-Control": "no-store"}
WARD_ROLES = ("admin", "ward_staff")


def scope(grants: tuple[tuple[str, str], ...]) -> set[str] | None:
    """The sites a session may see here; None: every site (an administrator, or ward staff
    granted at ``*``)."""
    sites: set[str] = set()
    for site, role in grants:
        if role == "admin" or (role == "ward_staff" and site == service.ALL_SITES):
            return None
        if role == "ward_staff":
            sites.add(site)
    return sites


async def _known_sites(request: web.Request) -> list[str]:
    store = runtime(request).store
    async with store.read() as tx:
        known = {r["site"] for r in await tx.sites()} | set(await tx.config_versions())
    return sorted(known)


def _fleet(request: web.Request) -> Fleet:
    """The running watcher, or (a web-only process) one made for this page: it reads the
    same store, without clock estimates."""
    if FLEET in request.app:
        return request.app[FLEET]
    return Fleet(runtime(request), request.app[FLEET_SETTINGS], None)


def _url(lang: str, **params: str) -> str:
    return f"{PATH}?{urlencode({**params, 'lang': lang})}"


def _site_row(v: SiteView, lang: str, t: dict[str, Any]) -> dict[str, Any]:
    problems = []
    for d in v.devices:
        if d["state"] != "ok":
            why = reason(d["reason"]) if d.get("reason") else None
            text = (why.ja if lang == "ja" else why.en) if why is not None else d["state"]
            problems.append({"device": d["device"], "kind": d["kind"], "state": d["state"],
                             "text": text})
    load1, cpus = v.host.get("load1"), v.host.get("cpus")
    clock = None
    if v.clock_offset_s is not None:
        n = abs(round(v.clock_offset_s, 1))
        clock = t["clock_ahead" if v.clock_offset_s > 0 else "clock_behind"].format(n=n)
    return {
        "site": v.site, "name": (v.name or {}).get(lang) or (v.name or {}).get("ja") or v.site,
        "online": v.online and v.heard, "open_now": v.open_now,
        "lag": None if v.lag_s is None else t["seconds"].format(n=v.lag_s),
        "outbox": v.outbox, "devices": len(v.devices), "problems": problems,
        "disk": v.host.get("disk_pct"), "mem": v.host.get("mem_pct"),
        "cpu": None if not isinstance(load1, int | float) else
        f"{load1:.2f}" + (f" / {cpus}" if isinstance(cpus, int) else ""),
        "clock": clock, "clock_bad": v.clock_offset_s is not None and abs(v.clock_offset_s) > 5,
    }


def _incident_row(inc: service.Incident, names: dict[str, str], lang: str,
                  t: dict[str, Any]) -> dict[str, Any]:
    return {"site": names.get(inc.site, inc.site), "rule": t["rule_labels"].get(inc.rule,
                                                                               inc.rule),
            "code": inc.rule, "subject": inc.subject or "—",
            "opened": inc.opened_at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S"),
            "closed": None if inc.closed_at is None else
            inc.closed_at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S"),
            "flapping": bool(inc.detail.get("flapping")),
            "mail": t["mail_states"].get(inc.close_mail or inc.open_mail, inc.open_mail)}


async def _render(request: web.Request, status: int = 200, *, form: dict[str, Any] | None = None,
                  error: RuleError | service.FleetError | None = None,
                  recipient_form: dict[str, str] | None = None) -> web.Response:
    current = request[SESSION_KEY]
    rt = runtime(request)
    lang = pick_lang(request)
    t = TEXTS[lang]
    allowed = scope(current.grants)
    sites = [s for s in await _known_sites(request) if allowed is None or s in allowed]
    views = [v for v in await _fleet(request).observe() if v.site in sites]
    names = {v.site: (v.name or {}).get(lang) or v.site for v in views}
    choices = ([service.ALL_SITES] if allowed is None else []) + sites
    selected = request.query.get("site", "")
    if form is not None:
        selected = str(form.get("site", selected))
    if selected not in choices:
        selected = choices[1] if len(choices) > 1 and allowed is None else \
            (choices[0] if choices else "")
    rules = await service.all_rules(rt.store)
    current_rules = service.rules_for(rules, selected) \
        if selected else Thresholds()
    values: dict[str, Any] = {"enabled": set(current_rules.enabled),
                              **{k: getattr(current_rules, k) for k in LIMITS}}
    if form is not None:
        values = {"enabled": {r for r in RULES if form.get(f"rule_{r}")},
                  **{k: str(form.get(k, ""))[:10] for k in LIMITS}}
    recips = [{"id": r.id, "address": service.mask(r.address), "lang": r.lang}
              for r in await service.recipients(rt.store, rt.settings, [selected])] \
        if selected else []
    incidents = await service.recent_incidents(rt.store, None if allowed is None else sites)
    html = rt.render(
        "fleet/fleet.html", lang=lang, t=AUTH_TEXTS[lang], f=TEXTS[lang], csrf=current.csrf,
        admin_nav=allowed is None and any(r == "admin" for _s, r in current.grants),
        rows=[_site_row(v, lang, t) for v in views],
        open_incidents=[_incident_row(i, names, lang, t) for i in incidents if i.closed_at is None],
        recent=[_incident_row(i, names, lang, t) for i in incidents if i.closed_at is not None],
        choices=[(s, t["default_site"] if s == service.ALL_SITES else
                  f"{names[s]} ({s})" if names.get(s, s) != s else s) for s in choices],
        selected=selected, rules=RULES, limits=LIMITS, values=values, recipients=recips,
        recipient_form=recipient_form or {"address": "", "lang": lang},
        error=error, saved=request.query.get("saved", ""))
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **HEADERS})


async def fleet_page(request: web.Request) -> web.Response:
    return await _render(request)


def _check_site(request: web.Request, site: str) -> None:
    allowed = scope(request[SESSION_KEY].grants)
    if site == service.ALL_SITES:
        if allowed is not None:
            raise service.FleetError("bad_site", "site")
        return
    if not site or (allowed is not None and site not in allowed):
        raise service.FleetError("bad_site", "site")


async def fleet_rules(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    form = {k: str(v) for k, v in (await request.post()).items()}
    site = form.get("site", "")
    lang = pick_lang(request)
    try:
        _check_site(request, site)
        if site != service.ALL_SITES and site not in await _known_sites(request):
            raise service.FleetError("bad_site", "site")
        new = parse_form(form)
    except (RuleError, service.FleetError) as exc:
        return await _render(request, 400, form=form, error=exc)
    rt = runtime(request)
    changes = await service.set_rules(rt.store, rt.settings, site, new, actor=current.staff_id,
                                      ip=ip_of(request))
    raise web.HTTPSeeOther(_url(lang, site=site, saved="rules" if changes else "unchanged")
                           + "#rules")


async def fleet_recipient_add(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    form = {k: str(v) for k, v in (await request.post()).items()}
    site, lang = form.get("site", ""), pick_lang(request)
    rt = runtime(request)
    try:
        _check_site(request, site)
        await service.add_recipient(rt.store, rt.settings, site, form.get("address", ""),
                                    form.get("lang", ""), actor=current.staff_id,
                                    ip=ip_of(request))
    except service.FleetError as exc:
        return await _render(request, 400, form=None, error=exc, recipient_form={
            "address": form.get("address", "")[:254], "lang": form.get("lang", lang)})
    raise web.HTTPSeeOther(_url(lang, site=site, saved="added") + "#recipients")


async def fleet_recipient_remove(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    form = {k: str(v) for k, v in (await request.post()).items()}
    site, lang = form.get("site", ""), pick_lang(request)
    allowed = scope(current.grants)
    rt = runtime(request)
    await service.remove_recipient(rt.store, rt.settings, form.get("id", ""), allowed,
                                   actor=current.staff_id, ip=ip_of(request))
    raise web.HTTPSeeOther(_url(lang, site=site, saved="removed") + "#recipients")


async def hub_metrics(request: web.Request) -> web.Response:
    """Prometheus text; the same gate as the edge's (``edge.web.metrics.MetricsAccess``):
    a bearer token or an allowed client address, else 403."""
    gate = request.app[METRICS_GATE]
    if not gate.allows(ip_of(request), request.headers.get("Authorization", "")):
        raise not_allowed()
    fleet = _fleet(request)
    views = await fleet.observe()
    rt = runtime(request)
    body = exposition(hub_families(views, rt.ingest, fleet if FLEET in request.app else None,
                                   await service.open_incidents(rt.store)))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, **HEADERS})


ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "Sites at a glance (online, sync lag, outbox, devices, disk, memory, "
          "CPU, clock), open and recent alerts, alert rules and recipients of the sites the "
          "caller's roles cover (?site= picks the site whose rules are edited)", fleet_page,
          access="ward_staff", content_type="text/html"),
    Route("POST", f"{PATH}/rules", "Set a site's alert rules (form {csrf, site, rule_<name>, "
          "offline_minutes, disk_pct, outbox_minutes, clock_s}); audited; 303 to the page or "
          "400 with the field at fault", fleet_rules, access="ward_staff",
          content_type="text/html"),
    Route("POST", f"{PATH}/recipients", "Add an alert e-mail recipient to a site (form {csrf, "
          "site, address, lang}); sealed at rest, audited without the address; 303 or 400",
          fleet_recipient_add, access="ward_staff", content_type="text/html"),
    Route("POST", f"{PATH}/recipients/remove", "Remove an alert recipient (form {csrf, id, "
          "site}); audited; 303 to the page", fleet_recipient_remove, access="ward_staff",
          content_type="text/html"),
    Route("GET", "/metrics", "Prometheus metrics: sites online, outbox, device health, ingest "
          "counters, open alerts. Only with the bearer token MADOGUCHI_METRICS_TOKEN or from "
          "MADOGUCHI_METRICS_ALLOW networks (else 403)", hub_metrics, access="public",
          content_type="text/plain"),
)
