"""Access levels and roles: pure rules, no aiohttp, no database (hypothesis-tested).

Every hub route declares one ``Level``; ``allows`` says whether a caller with the given roles may
use it. Roles are granted per site (``"*"``: every site). A route whose path names a ``{site}``
is allowed only when the fitting role is granted at that site (or at ``"*"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Level = Literal["public", "ticket_token", "staff", "stats", "notices", "forms", "ward_staff",
                "admin"]
LEVELS: tuple[Level, ...] = ("public", "ticket_token", "staff", "stats", "notices", "forms",
                             "ward_staff", "admin")

# ``notice_staff`` and ``form_staff`` are granted per department, not per site: the grant's site
# slot holds the department code (``*``: every department); hub.notices and hub.forms check it
# against each notice or form (``departments_of``)
Role = Literal["admin", "ward_staff", "counter_staff", "stats_viewer", "notice_staff",
               "form_staff"]
ROLES: tuple[Role, ...] = ("admin", "ward_staff", "counter_staff", "stats_viewer",
                           "notice_staff", "form_staff")
DEPARTMENT_ROLES: frozenset[str] = frozenset({"notice_staff", "form_staff"})
ANY_SITE = "*"

# which roles each staff level lets in; public levels need no session at all
FITS: dict[Level, frozenset[str]] = {
    "public": frozenset(),
    "ticket_token": frozenset(),
    "staff": frozenset(ROLES),
    "stats": frozenset({"admin", "ward_staff", "stats_viewer"}),
    "notices": frozenset({"admin", "notice_staff"}),
    "forms": frozenset({"admin", "form_staff"}),
    "ward_staff": frozenset({"admin", "ward_staff"}),
    "admin": frozenset({"admin"}),
}
PRIVILEGED: frozenset[str] = frozenset({"admin"})  # roles that must use MFA


def is_public(level: Level) -> bool:
    """``ticket_token`` is public to the middleware: the token in the URL is the capability,
    checked by the handler that looks it up."""
    return level in ("public", "ticket_token")


def allows(level: Level, grants: Iterable[tuple[str, str]], site: str | None = None) -> bool:
    """May a caller holding ``grants`` ((site, role) pairs) use a route of ``level``?
    ``site``: the site the route's path names, if any."""
    if is_public(level):
        return True
    fit = FITS[level]
    for granted_site, role in grants:
        if role not in fit:
            continue
        if role == "admin" or site is None or granted_site in (ANY_SITE, site):
            return True
    return False


def needs_mfa(grants: Iterable[tuple[str, str]]) -> bool:
    return any(role in PRIVILEGED for _site, role in grants)


def departments_of(grants: Iterable[tuple[str, str]], role: str) -> set[str] | None:
    """The departments a session may work for with a department role (``notice_staff``,
    ``form_staff``); None: all (an administrator, or the role granted at ``*``)."""
    out: set[str] = set()
    for scope, granted in grants:
        if granted == "admin" or (granted == role and scope == ANY_SITE):
            return None
        if granted == role:
            out.add(scope)
    return out
