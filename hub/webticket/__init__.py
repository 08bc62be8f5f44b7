"""Web tickets (W4): the phone page, its JSON API, anti-bot proof of work, fairness rules.

``setup_webtickets(app, ingest)`` is the one call ``hub/web/app.py`` makes.
"""

from __future__ import annotations

from aiohttp import web

from hub.ingest import Ingest
from hub.web.api import SETTINGS, STORE, Route, add_routes
from hub.webticket.api import WEBTICKETS, build, get_challenge, listener, post_web_ticket
from hub.webticket.page import get_js, get_page
from hub.webticket.rules import Options

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/web-tickets/challenge", "A proof-of-work challenge for taking a web "
          "ticket (W4): {challenge, difficulty, expires}", get_challenge, access="public"),
    Route("POST", "/api/web-tickets", "Take a web ticket: JSON {site, service, lang, contact?, "
          "challenge, nonce} -> 201 {number, service, site, token, url}", post_web_ticket,
          access="public"),
    Route("GET", "/w/{site}/{service}", "The phone page for taking a web ticket (?lang=)",
          get_page, access="public", content_type="text/html"),
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
