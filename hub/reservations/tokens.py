"""Short-lived signed page tokens, so the reservation ID never sits in a URL.

A token is ``base64url(json) . base64url(hmac)`` under a key derived from the hub's key for this
purpose only. ``ctx`` (15 minutes): the ID a resident entered, carried from the slot list to the
booking form. ``mine`` (15 minutes): a reservation opened with the right PIN, for change and
cancel without asking the PIN on every step.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
from typing import Any

from hub.webticket.pow import derive_key

LIFETIME = _dt.timedelta(minutes=15)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, kind: str, value: str, now: _dt.datetime) -> str:
    body = _b64(json.dumps({"k": kind, "v": value,
                            "e": int((now + LIFETIME).timestamp())}).encode())
    mac = hmac.new(derive_key(secret, "reservation-page"), body.encode(), hashlib.sha256)
    return f"{body}.{_b64(mac.digest()[:18])}"


def read(secret: bytes, kind: str, token: str, now: _dt.datetime) -> str | None:
    """The value, or None when forged, of another kind, or expired."""
    body, _, mac = token.partition(".")
    want = hmac.new(derive_key(secret, "reservation-page"), body.encode(), hashlib.sha256)
    try:
        if not hmac.compare_digest(_unb64(mac), want.digest()[:18]):
            return None
        data: Any = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("v"), str):
        return None
    if not isinstance(data.get("e"), int) or data["e"] < now.timestamp():
        return None
    return str(data["v"])
