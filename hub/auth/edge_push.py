"""The staff list each site needs to sign operators in while the hub is unreachable.

For every site: the active accounts holding a counter-capable role there (or at ``"*"``), with
their argon2id hash and those roles. Published retained on ``{prefix}/sites/{site}/staff``
(``edge/sync/staff.py`` takes it) by the ingest service's config loop whenever the list's digest
changes, so a new account, a role removed or an account disabled reaches the counters within
one poll. Only hashes leave the hub; TOTP secrets and recovery codes never do. Built with
``edge.protocol.StaffMessage`` (the edge reads it with the same fields): an account that does
not fit is left out with a warning, rather than the edge refusing the whole list.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from edge.protocol import StaffEntry, StaffMessage, problem
from hub.auth.tables import staff, staff_roles
from hub.store.store import Tx

_LOGGER = logging.getLogger(__name__)

# roles that may sign in at a counter (edge/sync/staff.py OPERATOR_ROLES)
COUNTER_ROLES = frozenset({"admin", "ward_staff", "counter_staff"})


async def site_lists(tx: Tx, sites: list[str]) -> dict[str, dict[str, Any]]:
    """Site id -> the ``staff`` message for it (``version`` is the content's digest)."""
    rows = (await tx.conn.execute(
        select(staff.c.login, staff.c.password_hash, staff_roles.c.site, staff_roles.c.role)
        .join(staff_roles, staff_roles.c.staff_id == staff.c.id)
        .where(staff.c.disabled.is_(False)))).all()
    out: dict[str, dict[str, Any]] = {}
    for site in sites:
        by_login: dict[str, tuple[str, set[str]]] = {}
        for login, hash_, granted, role in rows:
            if role in COUNTER_ROLES and (granted in ("*", site) or role == "admin"):
                by_login.setdefault(login, (hash_, set()))[1].add(role)
        entries: list[StaffEntry] = []
        for login, (h, roles) in sorted(by_login.items()):
            try:
                entries.append(StaffEntry(login=login, hash=h, roles=sorted(roles)))
            except ValidationError as exc:  # the edge would refuse the whole list for it
                _LOGGER.warning("staff list for site %s: an account left out: %s", site,
                                problem(exc))
        plain = [{"login": e.login, "hash": e.hash, "roles": e.roles} for e in entries]
        digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:32]
        try:
            message = StaffMessage(site=site, version=digest, staff=entries)
        except ValidationError as exc:  # a site id from before ids were checked
            _LOGGER.warning("no staff list for site %s: %s", site, problem(exc))
            continue
        out[site] = message.to_wire()
    return out
