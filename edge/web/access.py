"""Who may use which edge route: every route declares a level, the check is one function.

Levels (the edge's counterpart of ``hub/auth/access.py``):

- ``public``: what screens and residents read (state, ticket by token, health, the UI config).
- ``kiosk``: what a kiosk does (issue a plain ticket, check in). Allowed from the site's kiosk
  addresses (``[site] kiosk_addresses``; when none are set, from the site's LAN) or with any
  operator session.
- ``operator``: a counter's commands; a session opened at that counter.
- ``staff``: any operator session at this site (cancel by number, priority and reservation
  tickets, the kiosk menu switch).
- ``site_staff``: a session of a staff member with a ward role here (closing the day, today's
  statistics).

A site set to ``access = "open"`` (demos, a closed test bench) keeps the earlier rule: a counter
with a PIN needs its session, everything else is open. Deny by default: a route registered on
the app without a declared level stops the edge from starting (``check_declared``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from edge.domain.model import SiteConfig
from edge.sync.staff import SITE_STAFF_ROLES
from edge.web.auth import Operator, Sessions

Level = Literal["public", "kiosk", "operator", "staff", "site_staff"]
LEVELS: tuple[Level, ...] = ("public", "kiosk", "operator", "staff", "site_staff")


@dataclass(frozen=True, slots=True)
class Denied:
    """Why a request was refused: a stable code and texts (401: sign in; 403: not allowed)."""

    status: int
    code: str
    message: str
    message_ja: str


LOGIN_REQUIRED = Denied(401, "login_required", "Sign in at the counter panel first",
                        "先に窓口画面でログインしてください")
NOT_THIS_COUNTER = Denied(403, "other_counter", "Your session is for another counter",
                          "このログインは別の窓口のものです")
STAFF_ONLY = Denied(403, "staff_only", "Only a signed-in staff member may do this",
                    "この操作はログインした職員のみ行えます")
WARD_STAFF_ONLY = Denied(403, "ward_staff_only", "Only ward staff of this office may do this",
                         "この操作は区の職員のみ行えます")
NOT_A_KIOSK = Denied(403, "not_a_kiosk", "This device is not a kiosk of this office",
                     "この端末は発券機として登録されていません")


def bearer(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""


def _in_networks(remote: str | None, networks: tuple[str, ...]) -> bool:
    if remote is None:
        return False
    try:
        addr = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in networks)


def check(level: Level, config: SiteConfig, who: Operator | None, *,
          counter: str | None = None, remote: str | None = None) -> Denied | None:
    """None when allowed. ``who``: the caller's live session; ``counter``: the counter the
    path names; ``remote``: the caller's address (for kiosk addresses)."""
    if level == "public":
        return None
    if config.access == "open":
        return _open_rule(level, config, who, counter)
    if level == "kiosk":
        if who is not None or not config.kiosk_networks \
                or _in_networks(remote, config.kiosk_networks):
            return None
        return NOT_A_KIOSK
    if who is None:
        return LOGIN_REQUIRED
    if level == "operator":
        return None if counter is None or who.counter == counter else NOT_THIS_COUNTER
    if level == "staff":
        return None
    return None if who.roles & SITE_STAFF_ROLES else WARD_STAFF_ONLY


def _open_rule(level: Level, config: SiteConfig, who: Operator | None,
               counter: str | None) -> Denied | None:
    """``access = "open"``: counters with a PIN need their session; the menu switch needs any
    session when any counter has a PIN; nothing else is checked."""
    if level == "operator" and counter is not None:
        known = config.counters.get(counter)
        if known is None or known.pin_hash is None:
            return None  # unknown counters are refused by the domain with a clear 404
        return None if who is not None and who.counter == counter else LOGIN_REQUIRED
    if level == "staff" and any(k.pin_hash for k in config.counters.values()):
        return None if who is not None else LOGIN_REQUIRED
    return None


def caller(request: web.Request, sessions: Sessions) -> Operator | None:
    return sessions.get(bearer(request))


ACCESS: web.AppKey[dict[tuple[str, str], Level]] = web.AppKey("edge_access", dict)


def declare(app: web.Application, method: str, path: str, level: Level) -> None:
    """Record a route's level; routes added with ``app.router`` directly must call this."""
    if ACCESS not in app:
        app[ACCESS] = {}
    app[ACCESS][(method.upper(), path)] = level


def check_declared(app: web.Application) -> None:
    """Raise if a registered route has no level (called when the app is built)."""
    table = app.get(ACCESS, {})
    missing = sorted({f"{r.method} {r.resource.canonical}" for r in app.router.routes()
                      if r.resource is not None
                      and (("GET" if r.method.upper() == "HEAD" else r.method.upper()),
                           r.resource.canonical) not in table})
    if missing:
        raise RuntimeError("edge routes without an access level: " + ", ".join(missing))
