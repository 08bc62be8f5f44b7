"""Web tickets (W4): the phone page, its JSON API, anti-bot proof of work, fairness rules.

``setup_webtickets(app, ingest)`` is the one call ``hub/web/app.py`` makes.
"""

from __future__ import annotations

from aiohttp import web

from edge.domain.model import LANGS
from hub.ingest import Ingest
from hub.web.api import INT, SETTINGS, STORE, STR, Route, add_routes, lang_param, obj
from hub.webticket.api import (
    SERVICE,
    SITE_ID,
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

__all__ = ["ROUTES", "WEBTICKETS", "setup_webtickets"]


def setup_webtickets(app: web.Application, ingest: Ingest | None,
                     options: Options | None = None) -> None:
    """Routes, per-process state and (with ``ingest``) the listener that marks rows done."""
    app[WEBTICKETS] = build(app[SETTINGS].key, options or Options.from_env())
    add_routes(app, ROUTES)
    if ingest is not None:
        ingest.listeners.append(listener(app[STORE], ingest))
