"""The edge's OpenAPI 3.1 document: ``ROUTES`` through the shared generator, plus the websocket."""

from __future__ import annotations

from typing import Any

from edge import __version__
from edge.httpkit import openapi as generate
from edge.web.api import ROUTES

WEBSOCKET: dict[str, Any] = {"get": {
    "summary": "WebSocket: the state on connect, then every committed change",
    "operationId": "ws", "responses": {"101": {"description": "switching protocols"}},
    "x-access": "public",
}}


def openapi() -> dict[str, Any]:
    return generate(ROUTES, title="madoguchi edge API", version=__version__,
                    extra_paths={"/api/ws": WEBSOCKET})
