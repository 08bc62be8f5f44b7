"""Sealing and reading the module's personal fields: the one place that knows which column is
sealed and how (AES-256-GCM via ``hub.notify.crypto``, bound to the row and the field name, so a
value pasted into another row or column fails to open).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from hub.forms.context import Forms
from hub.notify.crypto import open_sealed, seal
from hub.webticket.pow import derive_key


def new_id() -> str:
    """Random ids (128 bits): they appear in URLs and file names, never guessable."""
    return secrets.token_urlsafe(16)


def new_form_id() -> str:
    """A form's id is also the ``Form.id`` slug of its definition: lower-case, starts with a
    letter (``f`` and 64 random bits in hex)."""
    return "f" + secrets.token_hex(8)


def token_hash(token: str) -> str:
    """Resume links and draft cookies are bearer tokens: only their hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def seal_field(ctx: Forms, row_id: str, name: str, value: str) -> str:
    return seal(ctx.hub.keys, ctx.hub.key_id, f"forms/{row_id}/{name}", value)


def open_field(ctx: Forms, row_id: str, name: str, sealed: str) -> str:
    return open_sealed(ctx.hub.keys, f"forms/{row_id}/{name}", sealed)


def seal_json(ctx: Forms, row_id: str, name: str, value: Any) -> str:
    return seal_field(ctx, row_id, name, json.dumps(value, ensure_ascii=False, default=str))


def open_json(ctx: Forms, row_id: str, name: str, sealed: str) -> Any:
    return json.loads(open_field(ctx, row_id, name, sealed))


def open_list(ctx: Forms, row_id: str, name: str, sealed: str) -> list[Any]:
    """A sealed JSON list column where ``""`` means none (``notify_staff``,
    ``webhook_secrets``: the builder writes nothing sealed until there is something)."""
    return list(open_json(ctx, row_id, name, sealed)) if sealed else []


def email_hmac(ctx: Forms, email: str) -> str:
    """A keyed hash of an address (lower-cased): "the same address" without a readable one."""
    key = derive_key(ctx.hub.key, "forms-email")
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def code_hmac(ctx: Forms, code_id: str, code: str) -> str:
    """A one-time code is stored as an HMAC bound to its row."""
    key = derive_key(ctx.hub.key, "forms-code")
    return hmac.new(key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()
