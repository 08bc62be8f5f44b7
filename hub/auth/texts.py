"""The auth module's texts (i18n/ja.json, i18n/en.json, read by the kit's catalogue loader),
the language of a request and its page and error page (rendered by the app's one Jinja
environment; the security headers come from the kit's middleware, ``hub.kit.headers``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from hub.kit import i18n
from hub.kit.runtime import runtime

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
LANGS = ("ja", "en")
TEXTS: dict[str, dict[str, Any]] = i18n.load_catalogue(HERE / "i18n", LANGS)


def pick_lang(request: web.Request) -> str:
    return i18n.pick_lang(request, TEXTS)


def page(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    lang = values.pop("lang", None) or pick_lang(request)
    html = runtime(request).render(f"auth/{template}", lang=lang, t=TEXTS[lang], **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, "Cache-Control": "no-store"})


def render_error(request: web.Request, status: int, code: str, lang: str) -> web.Response:
    return page(request, "error.html", status=status, lang=lang, code=code, status_code=status)
