"""Web tickets (W4): the phone page, its JSON API, anti-bot proof of work, fairness rules.

``module()`` declares it to ``hub/web/app.py`` (the kit's one shape). See README.md.
"""

from __future__ import annotations

from aiohttp import web

from edge.domain.model import LANGS
from hub.kit.live import SITE_ID
from hub.kit.module import Module
from hub.kit.runtime import Runtime
from hub.web.api import INT, STR, Route, lang_param, obj
from hub.webticket.api import (
    SERVICE,
    WEBTICKETS,
    build,
    get_challenge,
    listener,
    post_web_ticket,
)
from hub.webticket.page import get_js, get_page
from hub.webticket.pow import MAX_CHALLENGE, MAX_NONCE
from hub.webticket.rules import Options

# the request as post_web_ticket checks it (hub.webticket.api._fields), for the document
TAKE = {**obj({"site": {"type": "string", "pattern": SITE_ID.pattern, "maxLength": 41},
               "service": {"type": "string", "pattern": SERVICE.pattern, "maxLength": 4},
               "challenge": {"type": "string", "minLength": 1, "maxLength": MAX_CHALLENGE},
               "nonce": {"type": "string", "minLength": 1, "maxLength": MAX_NONCE}},
              {"lang": {"enum": list(LANGS)},
               "contact": {"type": ["string", "null"], "maxLength": 254}}),
        "additionalProperties": False}
TAKEN = obj({"number": INT, "service": STR, "site": STR, "day": STR, "token": STR, "url": STR})
CHALLENGE = obj({"challenge": STR, "difficulty": INT, "expires": INT})

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/web-tickets/challenge", "A proof-of-work challenge for taking a web "
          "ticket (W4): {challenge, difficulty, expires}", get_challenge, access="public",
          response=CHALLENGE),
    Route("POST", "/api/web-tickets", "Take a web ticket: JSON {site, service, lang, contact?, "
          "challenge, nonce} -> 201 {number, service, site, token, url}", post_web_ticket,
          access="public", body={"application/json": TAKE}, response=TAKEN, status=201),
    Route("GET", "/w/{site}/{service}", "The phone page for taking a web ticket (?lang=)",
          get_page, access="public", content_type="text/html", query=(lang_param(LANGS),)),
    Route("GET", "/w/assets/webticket.js", "Script of the web ticket page", get_js,
          access="public", content_type="text/javascript"),
)

__all__ = ["ROUTES", "WEBTICKETS", "module"]


def module(options: Options | None = None) -> Module:
    """``/w/{site}/{service}`` and ``/api/web-tickets``; ``options`` (tests): instead of the
    environment's."""

    def setup(app: web.Application, rt: Runtime) -> None:
        """Per-process state and (with live sites) the listener that marks rows done."""
        app[WEBTICKETS] = build(rt.settings.key, options or Options.from_env())
        if rt.live is not None:
            rt.live.listen(listener(rt.store, rt.live))

    return Module("webticket", ROUTES, setup=setup)
