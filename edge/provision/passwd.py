"""Mosquitto password file entries (``user:$7$iterations$salt$hash``), made in Python.

Why not shell out to ``mosquitto_passwd``: provisioning must work where only the hub's Python is
installed, and the plain password must never reach a command line or a temp file. The format is
mosquitto's PBKDF2-SHA512 one (salt 12 bytes, key 64 bytes, standard base64); the iteration count
defaults to mosquitto's own (101), which is enough because our passwords are 192 random bits, not
something a person chose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

__all__ = ["ITERATIONS", "hash_password", "parse_passwd", "render_passwd", "verify_password"]

ITERATIONS = 101  # mosquitto_passwd's default
_SALT_BYTES = 12
_KEY_BYTES = 64
_USER = re.compile(r"^[^:\s]{1,64}$")


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The ``$7$…`` hash mosquitto checks ``password`` against (a fresh random salt by default)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _KEY_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(encoded: str, password: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash; False for a mismatch or any other format."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        want = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(want))
    return hmac.compare_digest(got, want)


def parse_passwd(text: str) -> dict[str, str]:
    """``{user: hash}`` in file order; blank and ``#`` lines are dropped, later duplicates win."""
    users: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, _, encoded = line.partition(":")
        users[user] = encoded
    return users


def render_passwd(users: dict[str, str]) -> str:
    for user in users:
        if not _USER.match(user):
            raise ValueError(f"bad MQTT user name {user!r}")
    return "".join(f"{user}:{encoded}\n" for user, encoded in users.items())
