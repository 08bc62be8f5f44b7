"""The residents' 4-digit PINs at rest: argon2id over an HMAC keyed with the hub's secret.

Why the key does the work here, not argon2's cost: a 4-digit PIN has 10,000 values, so no
affordable hash cost stops someone holding the database from trying them all (10,000 x 20 ms is
minutes). What stops them is the HMAC key, derived from the hub's key and never in the database:
without it the stored value cannot be tested against any PIN. argon2id (argon2-cffi) then adds a
salt and a small cost (1 MiB, 1 pass, about 1 ms), small enough that 2,000 residents booking in
the same second at a release (``bench reservations``) are not queued behind hashing, as they
would be at the staff password cost (19 MiB x 2, ~20 ms each).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from hub.settings import HubSettings
from hub.webticket.pow import derive_key

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, hash_len=32, salt_len=16,
                        type=Type.ID)
_DUMMY = HASHER.hash("0" * 64)  # verified for an unknown reservation: the same time


def _keyed(settings: HubSettings, pin: str) -> str:
    key = derive_key(settings.key, "reservation-pin")
    return hmac.new(key, pin.encode("utf-8"), hashlib.sha256).hexdigest()


def _check(encoded: str, secret: str) -> bool:
    try:
        return HASHER.verify(encoded, secret)
    except (VerificationError, InvalidHashError):
        return False


async def hash_pin(settings: HubSettings, pin: str) -> str:
    return await asyncio.to_thread(HASHER.hash, _keyed(settings, pin))


async def check_pin(settings: HubSettings, encoded: str | None, pin: str) -> bool:
    """``encoded`` None: no such reservation; the dummy is checked so the answer takes as long."""
    ok = await asyncio.to_thread(_check, encoded or _DUMMY, _keyed(settings, pin))
    return ok and encoded is not None
