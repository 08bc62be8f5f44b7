"""Operator sessions: staff open a counter's panel with their own login ID and password, or
with the counter's PIN (the documented fallback, e.g. before the hub has pushed any account).

Staff credentials come from the hub (``edge/sync/staff.py``: argon2id hashes and roles of the
staff allowed at this site, retained on the broker and kept in the edge database), so a login
works while the hub is unreachable. The config holds only an scrypt hash of a PIN
(``madoguchi pin hash``). A correct login yields a random session token bound to that counter and
to the person, kept in memory (a restart asks again). Wrong attempts are rate-limited per counter
so that four digits or a password cannot be walked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

SESSION_S = 12 * 3600  # one working day
MAX_FAILS, FAIL_WINDOW_S = 5, 60.0
_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64): what goes into ``[[counters]] pin``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(("scrypt", str(_N), str(_R), str(_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def check_pin(pin: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True, slots=True)
class Operator:
    """Who holds a session: the counter it opened, and the staff member (None: by PIN)."""

    counter: str
    staff: str | None = None
    roles: frozenset[str] = frozenset()
    end: float = 0.0


@dataclass
class Sessions:
    """Live operator sessions and recent login failures, per counter."""

    sessions: dict[str, Operator] = field(default_factory=dict)  # token -> who
    fails: dict[str, list[float]] = field(default_factory=dict)

    def locked(self, counter: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        recent = [t for t in self.fails.get(counter, []) if now - t < FAIL_WINDOW_S]
        self.fails[counter] = recent
        return len(recent) >= MAX_FAILS

    def failed(self, counter: str) -> None:
        self.fails.setdefault(counter, []).append(time.monotonic())

    def open(self, counter: str, staff: str | None = None,
             roles: frozenset[str] = frozenset()) -> tuple[str, float]:
        token = secrets.token_urlsafe(24)
        end = time.time() + SESSION_S
        self.sessions[token] = Operator(counter, staff, roles, end)
        self.fails.pop(counter, None)
        return token, end

    def get(self, token: str) -> Operator | None:
        found = self.sessions.get(token)
        if found is None:
            return None
        if time.time() > found.end:
            del self.sessions[token]
            return None
        return found

    def counter_of(self, token: str) -> str | None:
        found = self.get(token)
        return None if found is None else found.counter

    def close(self, token: str) -> None:
        self.sessions.pop(token, None)
