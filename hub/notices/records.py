"""Reading and sealing a notice's personal fields: one place that knows which column is sealed
and how, so no other part of the module touches ``hub.notify.crypto`` directly.

Every sealed value is bound to its row (``row_id``: the recipient's or the notice's id) and to a
field name, so a name pasted into the e-mail column of the same row fails to open too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from hub.notices.context import Notices
from hub.notify.crypto import open_sealed, seal
from hub.webticket.pow import derive_key


def new_id() -> str:
    """Random ids (128 bits): they appear in staff URLs and file names, never guessable."""
    return secrets.token_urlsafe(16)


def seal_field(ctx: Notices, row_id: str, name: str, value: str) -> str:
    return seal(ctx.hub.keys, ctx.hub.key_id, f"{row_id}/{name}", value)


def open_field(ctx: Notices, row_id: str, name: str, sealed: str) -> str:
    return open_sealed(ctx.hub.keys, f"{row_id}/{name}", sealed)


def email_hmac(ctx: Notices, email: str) -> str:
    """A keyed hash of an address (lower-cased), to find the same address twice without
    storing it readable; the key is derived from the hub's key for this purpose only."""
    key = derive_key(ctx.hub.key, "notice-email")
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Person:
    """A recipient's opened fields, for the moment they are needed (a mail, a staff view)."""

    id: str
    name: str
    email: str
    key: str
    data: dict[str, str]


def person(ctx: Notices, row: Any) -> Person:
    rid = str(row.id)
    data = json.loads(open_field(ctx, rid, "data", row.data))
    return Person(rid, open_field(ctx, rid, "name", row.name),
                  open_field(ctx, rid, "email", row.email),
                  open_field(ctx, rid, "key", row.match_key), data)


def test_addresses(ctx: Notices, notice: Any) -> list[str]:
    """The staff addresses a test-mode notice goes to: the notice's own, then the setting's."""
    own: list[str] = json.loads(open_field(ctx, str(notice.id), "test_addresses",
                                           notice.test_addresses))
    out = [a for a in own if a]
    out += [a for a in ctx.settings.test_addresses if a not in out]
    return out


def addresses(ctx: Notices, notice: Any, recipient: Any) -> list[str]:
    """Where a mail for ``recipient`` goes: its own address, or in test mode (N8) only the
    staff test addresses, never the resident's."""
    if notice.test_mode:
        return test_addresses(ctx, notice)
    return [open_field(ctx, str(recipient.id), "email", recipient.email)]
