"""The phone page ``GET /w/{site}/{service}`` (W4): take a number online.

Server-rendered (Jinja2) so it shows the office, the service, its hours and whether the office
is reachable without any script; the proof of work itself needs JavaScript, which the page says
in Japanese and English when scripts are off. Texts: ``hub/web/i18n/webticket.{lang}.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from edge.domain.calendar import day
from edge.domain.model import LANGS
from hub.kit.i18n import load_catalogue, pick_lang
from hub.kit.runtime import runtime
from hub.store.store import now_utc
from hub.web.residents.access import count
from hub.webticket.api import SERVICE

WEB = Path(__file__).resolve().parent.parent / "web"
JS = WEB / "static" / "webticket.js"
LANG_NAMES = {"ja": "日本語", "en": "English", "zh": "中文", "ko": "한국어"}


TEXTS = load_catalogue(WEB / "i18n", LANGS, prefix="webticket.")


def _lang(request: web.Request) -> str:
    return pick_lang(request, TEXTS)


async def get_page(request: web.Request) -> web.Response:
    """The page for one service's web ticket; says up front when none can be taken today."""
    lang = _lang(request)
    t = TEXTS[lang]
    site, code = request.match_info["site"], request.match_info["service"]
    rt = runtime(request)
    config = await rt.live.config(site) if rt.live is not None else None
    svc = config.services.get(code) if config is not None and SERVICE.match(code) else None
    status, problem, online = 200, None, False
    if config is None or svc is None:
        status, problem = 404, "unknown"
    elif svc.web is None:
        status, problem = 404, "not_offered"
    else:
        count(request, "webticket", site)  # W8: known offices only (a URL names any)
        async with rt.store.read() as tx:
            row = await tx.site(site)
        online = bool(row and row["online"])
        local = now_utc().astimezone(ZoneInfo(config.timezone))
        if not day(config.calendar, config.hours, local.date()).open:
            problem = "closed"  # the ward's calendar: a holiday, the year end (the edge agrees)
        elif not online:
            problem = "offline"
    html = rt.render(
        "webticket.html", lang=lang, t=t, langs=LANG_NAMES.items(), problem=problem, online=online,
        site=site, service=code,
        site_name=config.name.get(lang) if config is not None else site,
        service_name=svc.name.get(lang) if svc is not None else code,
        rules=svc.web if svc is not None else None,
        texts_json=json.dumps({"errors": t["errors"], "working": t["working"],
                               "sending": t["sending"]}, ensure_ascii=False)
        .replace("</", "<\\/"))
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def get_js(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(JS, headers={"Cache-Control": "no-cache",
                                         "Content-Type": "text/javascript; charset=utf-8"})
