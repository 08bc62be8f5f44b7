"""Helpers shared by the builder's handlers (``builder``, ``builder_pages``): the texts, the
form of the path (None for another department's: a 404), redirects and posted inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.auth.guard import SESSION_KEY
from hub.auth.texts import pick_lang
from hub.forms import service
from hub.forms.context import FORMS, Forms
from hub.forms.pages import catalogue, render_staff

TEXTS = catalogue("builder")
PATH = "/admin/forms"
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "forms" / "form-schema.json"
MAX_IMPORT_BYTES = 2_000_000
STATIC = Path(__file__).resolve().parents[1] / "web" / "static"


def ctx_of(request: web.Request) -> Forms:
    return request.app[FORMS]


def actor(request: web.Request) -> str:
    return str(request[SESSION_KEY].staff_id)


async def form_row(request: web.Request) -> Any:
    """The form of the path if the session may see it, else None (then a 404)."""
    try:
        return await service.require(ctx_of(request), request.match_info["form_id"],
                                     request[SESSION_KEY].grants)
    except service.FormError:
        return None


def not_found(request: web.Request) -> web.Response:
    return render_staff(request, "builder_missing.html", TEXTS, 404)


def to(request: web.Request, form_id: str | None, where: str = "", anchor: str = "",
       **query: str) -> web.HTTPSeeOther:
    path = f"{PATH}/{form_id}{where}" if form_id else PATH
    tail = f"#{anchor}" if anchor else ""
    return web.HTTPSeeOther(f"{path}?{urlencode({**query, 'lang': pick_lang(request)})}{tail}")


async def posted_of(request: web.Request) -> dict[str, list[str]]:
    got = await request.post()
    return {k: [str(v) for v in got.getall(k)] for k in got}
