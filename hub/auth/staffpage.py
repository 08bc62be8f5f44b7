"""A staff page of any module, rendered the one way: in the staff member's language, with the
session's CSRF token, the auth module's shared texts as ``t`` (header, sign-out, errors), the
module's own catalogue as ``s``, and ``admin_nav`` for the administrators' link.

Why here: every staff module (forms, notices, site settings) rendered its pages with the same
ten lines; the frame's variables are the auth module's contract with ``staff_frame``
templates, so they are set in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hub.auth.guard import SESSION_KEY
from hub.auth.texts import TEXTS as AUTH_TEXTS
from hub.auth.texts import pick_lang
from hub.kit.runtime import runtime

NO_STORE = {"Cache-Control": "no-store"}


def staff_page(request: web.Request, template: str, texts: Mapping[str, Mapping[str, Any]],
               status: int = 200, headers: Mapping[str, str] = NO_STORE,
               **values: Any) -> web.Response:
    """``template`` (its module's folder included: ``forms/x.html``) for the signed-in staff
    member; ``texts``: the module's catalogue by language."""
    lang = pick_lang(request)
    current = request[SESSION_KEY]
    html = runtime(request).render(
        template, lang=lang, t=AUTH_TEXTS[lang], s=texts[lang], csrf=current.csrf,
        admin_nav=any(role == "admin" for _s, role in current.grants), **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **headers})
