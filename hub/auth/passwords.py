"""Password and recovery-code hashing: argon2id (argon2-cffi), off the event loop.

Cost: 19 MiB, 2 passes, 1 lane: OWASP's Password Storage Cheat Sheet minimum for argon2id (its
first-listed configuration). OWASP lists others as equal defence (46 MiB x 1 … 7 MiB x 5); timed
here, 46 MiB x 1 costs 2.3 times as much CPU per sign-in, and the cheapest, 7 MiB x 5, saves a
sixth of it for under half the memory, which is what makes argon2 costly on GPUs and ASICs. One
verification takes ~20 ms on one core of the 2-core development machine. The previous cost,
8 MiB x 1 pass (~4 ms), was below every OWASP configuration; such hashes still verify (each hash
carries its parameters), and ``service.login`` stores the password again at this cost at its
next successful sign-in (``needs_rehash``).

What a burst costs: argon2id is memory-hard work that no scheduling removes, so 50 staff signing
in at the same moment need 50 x 20 ms = 1 s of CPU, at least 0.5 s of waiting on two cores
(``madoguchi bench hub`` reports ``login_p99_ms`` beside this floor, ``login_argon2_floor_ms``).
The work runs in a pool of one thread per CPU (argon2-cffi releases the GIL), never on the event
loop, so the hub keeps serving everything else while a burst is hashed.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024
TIME_COST = 2
LANES = 1
HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=LANES,
                        hash_len=32, salt_len=16, type=Type.ID)
# one worker per CPU: more would only interleave the same work (every caller finishing later);
# capped so a big machine does not hold dozens of 19 MiB blocks at once
WORKERS = min(8, max(2, os.cpu_count() or 2))
_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="argon2")
# verified against when the login is unknown, so an unknown ID costs the same time as a known one
_DUMMY = HASHER.hash("madoguchi-no-such-account")


def describe() -> str:
    """The cost new hashes get, for reports (``bench hub``'s ``login_argon2``)."""
    return f"argon2id m={MEMORY_KIB} KiB t={TIME_COST} p={LANES}"


def hash_secret(secret: str) -> str:
    return HASHER.hash(secret)


def check(encoded: str, secret: str) -> bool:
    try:
        return HASHER.verify(encoded, secret)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """Was ``encoded`` made at another cost than the current one (e.g. the old 8 MiB x 1)?"""
    try:
        return HASHER.check_needs_rehash(encoded)
    except (InvalidHashError, ValueError):
        return False


async def hash_async(secret: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_POOL, hash_secret, secret)


async def check_async(encoded: str | None, secret: str) -> bool:
    """Verify in the worker pool; ``encoded`` None (unknown account) burns the same time."""
    ok = await asyncio.get_running_loop().run_in_executor(
        _POOL, check, encoded or _DUMMY, secret)
    return ok and encoded is not None
