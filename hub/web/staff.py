"""The staff overview page: every site, online or not, lag, device health, config version.

Plain server-rendered HTML (Jinja2, the app's one environment) that refreshes itself: it works
without JavaScript on any office PC. Japanese by default, English with ``?lang=en`` or an
English browser. Declared to the app as a kit ``Module`` (``module()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from edge.devices.health import REASONS
from hub.kit.i18n import load_catalogue
from hub.kit.i18n import pick_lang as kit_pick_lang
from hub.kit.module import Module
from hub.kit.runtime import runtime
from hub.store.store import now_utc
from hub.web.api import CONFIGS, STORE, Route, lang_param
from hub.web.views import all_sites

TEMPLATES = Path(__file__).resolve().parent / "templates"
REFRESH_S = 15
LANGS = (("ja", "日本語"), ("en", "English"))

I18N = Path(__file__).resolve().parent / "i18n"
# texts in hub/web/i18n/staff.{ja,en}.json (the kit's loader); "{refresh_s}" filled in once
TEXTS: dict[str, dict[str, Any]] = {
    lang: {**t, "refresh": str(t["refresh"]).format(refresh_s=REFRESH_S)}
    for lang, t in load_catalogue(I18N, (code for code, _name in LANGS),
                                  prefix="staff.").items()}


def duration(seconds: int | None, lang: str) -> str:
    """12 s, 3 min, 2 h, 4 d: a lag at a glance."""
    if seconds is None:
        return "—"
    s, m, h, d = TEXTS[lang]["units"]
    if seconds < 120:
        return f"{seconds}{s}"
    if seconds < 7200:
        return f"{seconds // 60}{m}"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}{h}"
    return f"{seconds // 86400}{d}"


def pick_lang(request: web.Request) -> str:
    return kit_pick_lang(request, TEXTS)


async def staff_sites(request: web.Request) -> web.Response:
    lang = pick_lang(request)
    sites = await all_sites(request.app[STORE], request.app[CONFIGS])
    html = runtime(request).render(
        "staff_sites.html", lang=lang, t=TEXTS[lang], sites=sites, langs=LANGS,
        refresh_s=REFRESH_S,        now=now_utc().astimezone().isoformat(timespec="seconds"),
        reasons={code: getattr(r, lang) for code, r in REASONS.items()},
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang})


PAGES: tuple[Route, ...] = (
    Route("GET", "/staff/sites", "Staff overview of all sites (HTML, ?lang=ja|en)", staff_sites,
          access="staff", content_type="text/html", query=(lang_param(("ja", "en")),)),
)


def module() -> Module:
    """The staff overview (``staff_sites.html`` uses the ``duration`` filter)."""
    return Module("staff", PAGES, templates=TEMPLATES, filters={"duration": duration})
