"""Proof of work against bots (A5), with no external service and no server-side storage.

The hub hands out ``{challenge, difficulty, expires}``; the challenge carries its own difficulty
and expiry and an HMAC over them, so any hub process holding the key can check it without a
database. The client finds a ``nonce`` such that ``sha256(challenge + ":" + nonce)`` starts with
``difficulty`` zero bits (a phone: well under a second; a bot issuing thousands: real CPU). A
challenge is accepted once: used ones are remembered until they expire (bounded memory; per
process, so with several hub web processes a replay could reach another one once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

MAX_CHALLENGE = 200
MAX_NONCE = 64


class PowError(Exception):
    """A proof that does not count; ``code`` and both texts are safe to show."""

    def __init__(self, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.code, self.message, self.message_ja = code, message, message_ja


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose only, so one leaked derived key exposes nothing else."""
    return hmac.new(secret, f"madoguchi/{purpose}".encode(), hashlib.sha256).digest()


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def solve(challenge: str, difficulty: int) -> str:
    """Find a nonce (tests and the load scripts; the browser does the same in JS)."""
    n = 0
    while True:
        nonce = str(n)
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if leading_zero_bits(digest) >= difficulty:
            return nonce
        n += 1


class ProofOfWork:
    def __init__(self, key: bytes, difficulty: int = 14, ttl_s: float = 120.0, *,
                 max_used: int = 200_000, clock: Callable[[], float] = time.time) -> None:
        if not 0 <= difficulty <= 32:
            raise ValueError("difficulty must be 0..32 bits")
        self._key = key
        self.difficulty = difficulty
        self.ttl_s = ttl_s
        self.max_used = max_used
        self.clock = clock
        self._used: OrderedDict[str, float] = OrderedDict()  # challenge -> expiry, oldest first

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self) -> dict[str, Any]:
        expires = int(self.clock() + self.ttl_s)
        body = f"{self.difficulty}.{expires}.{secrets.token_urlsafe(12)}"
        return {"challenge": f"{body}.{self._sign(body)}", "difficulty": self.difficulty,
                "expires": expires}

    def verify(self, challenge: str, nonce: str) -> None:
        """Accept the proof once, or raise ``PowError``."""
        if not (0 < len(challenge) <= MAX_CHALLENGE and 0 < len(nonce) <= MAX_NONCE):
            raise _bad()
        body, _, sig = challenge.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or not hmac.compare_digest(sig.encode(), self._sign(body).encode()):
            raise _bad()
        try:
            difficulty, expires = int(parts[0]), int(parts[1])
        except ValueError:
            raise _bad() from None
        now = self.clock()
        if expires < now:
            raise PowError("challenge_expired", "The anti-bot check expired; please try again",
                           "確認の有効期限が切れました。もう一度お試しください")
        self._forget(now)
        if challenge in self._used:
            raise PowError("challenge_used", "This anti-bot check was already used",
                           "この確認はすでに使われています。もう一度お試しください")
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if leading_zero_bits(digest) < difficulty:
            raise _bad()
        self._used[challenge] = float(expires)
        while len(self._used) > self.max_used:  # bounded: the oldest are forgotten first
            self._used.popitem(last=False)

    def _forget(self, now: float) -> None:
        while self._used:
            first, exp = next(iter(self._used.items()))
            if exp >= now:
                break
            del self._used[first]


def _bad() -> PowError:
    return PowError("challenge_failed", "The anti-bot check did not pass; please try again",
                    "自動操作の確認に失敗しました。もう一度お試しください")
