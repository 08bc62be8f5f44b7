"""The phone page ``GET /w/{site}/{service}`` (W4): take a number online.

Server-rendered (Jinja2) so it shows the office, the service, its hours and whether the office
is reachable without any script; the proof of work itself needs JavaScript, which the page says
in Japanese and English when scripts are off. Texts: ``hub/web/i18n/webticket.{lang}.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from edge.domain.model import LANGS
from hub.web.api import INGEST, STORE
from hub.web.residents.i18n import pick_lang
from hub.webticket.api import SERVICE, site_config

WEB = Path(__file__).resolve().parent.parent / "web"
JS = WEB / "static" / "webticket.js"
LANG_NAMES = {"ja": "日本語", "en": "English", "zh": "中文", "ko": "한국어"}


def _load_texts() -> dict[str, dict[str, Any]]:
    texts = {lang: json.loads((WEB / "i18n" / f"webticket.{lang}.json").read_text("utf-8"))
             for lang in LANGS}
    for lang, t in texts.items():  # a missing translation fails at start, not on a phone
        if set(t) != set(texts["ja"]) or set(t["errors"]) != set(texts["ja"]["errors"]):
            raise ValueError(f"i18n/webticket.{lang}.json: keys differ from the ja file")
    return texts


TEXTS = _load_texts()
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(WEB / "templates"),
                          autoescape=jinja2.select_autoescape(["html"]),
                          undefined=jinja2.StrictUndefined)


def _lang(request: web.Request) -> str:
    return pick_lang(request, TEXTS)


async def get_page(request: web.Request) -> web.Response:
    lang = _lang(request)
    t = TEXTS[lang]
    site, code = request.match_info["site"], request.match_info["service"]
    ingest = request.app[INGEST]
    config = await site_config(ingest, site) if ingest is not None else None
    svc = config.services.get(code) if config is not None and SERVICE.match(code) else None
    status, problem, online = 200, None, False
    if config is None or svc is None:
        status, problem = 404, "unknown"
    elif svc.web is None:
        status, problem = 404, "not_offered"
    else:
        async with request.app[STORE].read() as tx:
            row = await tx.site(site)
        online = bool(row and row["online"])
        if not online:
            problem = "offline"
    html = _ENV.get_template("webticket.html").render(
        lang=lang, t=t, langs=LANG_NAMES.items(), problem=problem, online=online,
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
