"""Staff credentials pushed by the hub, so operators sign in at a counter while the hub is down.

The hub publishes, retained on ``{prefix}/sites/{site}/staff``, the staff allowed at this site:
login, argon2id password hash and roles here (``hub/auth/edge_push.py`` builds it). The edge keeps
the newest list in its database (``meta``), so a restarted edge still knows it, and verifies
passwords locally. Only hashes travel and rest here, never a password; a disabled or removed
account disappears with the next push (the list is replaced, never merged).

Why not TOTP at the counter: the panel is on a staff PC inside the office and counter roles need
no MFA at the hub either (hub/auth/README.md); administrators signing in at a counter get counter
rights only for that session.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge.protocol import MAX_STAFF as MAX_STAFF  # the list's limit, checked by StaffList
from edge.protocol import StaffList, WireError
from edge.store.store import EventStore
from edge.sync.pushed import PushedFollower, load_kept

_LOGGER = logging.getLogger(__name__)

META_STAFF = "sync.staff"
# roles (hub/auth/access.py) that may operate a counter, and those that are "site staff"
OPERATOR_ROLES = frozenset({"admin", "ward_staff", "counter_staff"})
SITE_STAFF_ROLES = frozenset({"admin", "ward_staff"})
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown logins against (equal time for "no such account"); made at the
    first sign-in, not at import: it costs 0.1 s of every edge start otherwise."""
    return _HASHER.hash("madoguchi-no-such-account")

RunDb = Callable[[Callable[[EventStore], None]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Credential:
    login: str
    hash: str  # argon2id, as stored at the hub
    roles: frozenset[str]


def parse_message(raw: dict[str, Any]) -> tuple[str, list[Credential]] | str:
    """``(version, credentials)`` of a ``staff`` message, or what is wrong with it (never the
    content: it holds hashes). The shape is ``edge.protocol.StaffList``: the hub builds the
    message with ``StaffMessage`` (the same fields plus ``v`` and ``site``, which the relay
    checks), and the copy kept in ``meta`` is the list alone."""
    try:
        msg = StaffList.from_raw(raw)
    except WireError as exc:
        return str(exc)
    return msg.version, [Credential(e.login, e.hash, frozenset(e.roles)) for e in msg.staff]


class StaffBook:
    """The staff allowed at this site, as last pushed by the hub."""

    def __init__(self, credentials: Iterable[Credential] = (), version: str = "") -> None:
        self._by_login = {c.login.casefold(): c for c in credentials}
        self.version = version

    def __len__(self) -> int:
        return len(self._by_login)

    def replace(self, credentials: Iterable[Credential], version: str) -> None:
        self._by_login = {c.login.casefold(): c for c in credentials}
        self.version = version

    def verify(self, login: str, password: str) -> Credential | None:
        """The credential when the password fits (blocking: argon2; call it off the loop)."""
        found = self._by_login.get(login.casefold())
        try:
            _HASHER.verify(found.hash if found else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return found

    @classmethod
    def load(cls, store: EventStore) -> StaffBook:
        """The list kept in the database (empty when the hub never pushed one)."""
        kept = load_kept(store, META_STAFF, parse_message, "staff list")
        return cls() if kept is None else cls(kept[1], kept[0])


def staff_follower(book: StaffBook) -> PushedFollower[Credential]:
    """Takes each pushed staff list (``edge/sync/pushed.py``)."""

    def keep(version: str, creds: list[Credential]) -> str:
        return json.dumps({"version": version, "staff": [
            {"login": c.login, "hash": c.hash, "roles": sorted(c.roles)} for c in creds]})

    return PushedFollower(book, parse=parse_message, keep=keep, meta_key=META_STAFF,
                          what="staff list")
