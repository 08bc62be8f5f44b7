"""The auth module's texts (i18n/ja.json, i18n/en.json), its Jinja environment and error page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

HERE = Path(__file__).resolve().parent
LANGS = ("ja", "en")
TEXTS: dict[str, dict[str, Any]] = {
    lang: json.loads((HERE / "i18n" / f"{lang}.json").read_text("utf-8")) for lang in LANGS}

ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(["html"]),
                         undefined=jinja2.StrictUndefined)


def pick_lang(request: web.Request) -> str:
    asked = request.query.get("lang")
    if asked in TEXTS:
        return asked
    first = request.headers.get("Accept-Language", "").lower().split(",")[0].strip()
    return "en" if first.startswith("en") else "ja"


def page(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    lang = values.pop("lang", None) or pick_lang(request)
    html = ENV.get_template(f"auth/{template}").render(lang=lang, t=TEXTS[lang], **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, "Cache-Control": "no-store",
                                 "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'self'; "
                                 "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                 "frame-ancestors 'none'"})


def render_error(request: web.Request, status: int, code: str, lang: str) -> web.Response:
    return page(request, "error.html", status=status, lang=lang, code=code, status_code=status)
