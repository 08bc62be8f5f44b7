"""Security headers on every hub response, set in one place (``on_response_prepare``).

Why a response-prepare signal and not a handler middleware: it also covers streams (SSE),
static files and error pages raised as exceptions, right before their headers are sent. A
handler may still set its own value of any of these (it is kept): e.g. ``Referrer-Policy:
no-referrer`` on a ticket page, whose URL is its holder's secret.

The policy allows scripts, styles and fonts from the hub itself only (no inline script or
style, so a template must link its CSS and JS), images also as ``data:`` (QR codes), forms
posting back to the hub, and no framing.
"""

from __future__ import annotations

from aiohttp import web

CSP = ("default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


async def security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def install(app: web.Application) -> None:
    app.on_response_prepare.append(security_headers)
