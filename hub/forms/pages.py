"""Rendering the module's pages: one helper for staff pages and one for residents' pages, each
with its own text catalogue (``i18n/<part>_<lang>.json``), so the parts keep their texts apart.

Staff pages are ja/en (the staff's choice); residents' pages are ja/en too, because a form's own
texts exist in ja and en only (a form author writes both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from hub.auth.staffpage import NO_STORE, staff_page
from hub.kit.i18n import load_catalogue
from hub.kit.runtime import runtime

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
LANGS = ("ja", "en")


def catalogue(part: str) -> dict[str, dict[str, Any]]:
    """``i18n/<part>_ja.json`` and ``_en.json``, compared key by key at load."""
    return load_catalogue(HERE / "i18n", LANGS, prefix=f"{part}_")


def render_staff(request: web.Request, template: str, texts: dict[str, dict[str, Any]],
                 status: int = 200, **values: Any) -> web.Response:
    """A staff page (``forms/<template>``): ``hub.auth.staffpage``, the part's texts as ``s``."""
    return staff_page(request, f"forms/{template}", texts, status, **values)


def render_resident(request: web.Request, template: str, texts: dict[str, dict[str, Any]],
                    lang: str, status: int = 200, **values: Any) -> web.Response:
    """A resident's page (``forms/<template>``); ``lang`` chosen by the caller (``?lang=``,
    the draft's language, then Accept-Language)."""
    html = runtime(request).render(f"forms/{template}", lang=lang, s=texts[lang], **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **NO_STORE})
