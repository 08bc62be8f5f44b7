"""How the residents' pages declare their routes (``resident``, ``profiles_pages``,
``resident_pay``): public, HTML, ``?lang=ja|en``; a POST takes a urlencoded form with the
``csrf`` token unless it names another body, and answers 303 on success.

Why one place: the access level and the shape of a resident's route are one decision; three
modules declaring it each would drift (one ``text/html`` spelled differently, one ``lang``
parameter forgotten).
"""

from __future__ import annotations

from typing import Any

from hub.web.api import Route, lang_param

LANG = lang_param(("ja", "en"))
HTML = "text/html"
FORM: dict[str, Any] = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}}}}


def page(path: str, summary: str, handler: Any) -> Route:
    """A resident's page (GET)."""
    return Route("GET", path, summary, handler, access="public", content_type=HTML,
                 query=(LANG,))


def action(path: str, summary: str, handler: Any, body: Any = None,
           then: str = "on to the next step") -> Route:
    """A resident's POST: ``body`` (default: the form with ``csrf``); ``then`` says where its
    303 goes."""
    return Route("POST", path, summary, handler, access="public", content_type=HTML,
                 body=body or FORM, query=(LANG,), also={303: then})
