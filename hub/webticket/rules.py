"""Hub-side fairness for web tickets (W4, A5): one active ticket per contact, rate limits.

The site enforces hours and the daily cap (it is authoritative and works offline); the hub
owns what the site never sees: contacts. A contact is kept only as an HMAC-SHA256 with a key
derived from the hub's secret (so a leaked table cannot be matched against a phone book
without the key), erased when the ticket is called, cancelled, finished or its day ends.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select, update

from hub.store import Tx
from hub.store.schema import web_tickets
from hub.store.store import now_utc
from hub.web.ratelimit import RateLimiter

MAX_CONTACT = 254
_EMAIL = re.compile(r"^[^@\s]{1,64}@[a-z0-9](?:[a-z0-9-]{0,62}\.)+[a-z]{2,63}$")
_PHONE = re.compile(r"^0\d{9,10}$")
LIVE = ("waiting", "held", "absent")  # a ticket still "active" for its contact


class ContactError(ValueError):
    """Not a phone number or e-mail address (the message never quotes the input)."""


def normalize_contact(raw: str) -> str:
    """One spelling per contact: e-mail lower-cased; phone digits only, +81 as 0, full-width
    digits folded (NFKC), so "090-1234-5678" and "+81 90 1234 5678" are the same person."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if "@" in text:
        email = text.lower()
        if len(email) <= MAX_CONTACT and _EMAIL.match(email):
            return "mail:" + email
        raise ContactError("not an e-mail address")
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("+81"):
        digits = "0" + digits[3:].lstrip("0")
    if _PHONE.match(digits):
        return "tel:" + digits
    raise ContactError("not a phone number")


def contact_hash(key: bytes, normalized: str) -> str:
    return hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Options:
    """Tunable limits (``MADOGUCHI_WEBTICKET_*``); defaults suit a ward office's phones."""

    pow_bits: int = 14  # a phone's crypto.subtle: roughly 0.3-1 s
    pow_ttl_s: float = 120.0
    command_ttl_s: float = 5.0  # how long to wait for the site's answer
    body_limit: int = 4096
    ip_rate_per_min: float = 2.0  # POST /api/web-tickets per address
    ip_burst: int = 6
    contact_rate_per_hour: float = 4.0  # attempts per contact, whatever their outcome
    contact_burst: int = 3
    challenge_rate_per_min: float = 30.0
    challenge_burst: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Options:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, default in cls().__dict__.items():
            raw = env.get(f"MADOGUCHI_WEBTICKET_{name.upper()}")
            if raw:
                values[name] = type(default)(raw)
        return cls(**values)


class Limits:
    """Token buckets per client address and per contact hash (never the contact itself)."""

    def __init__(self, opts: Options) -> None:
        self.ip = RateLimiter(opts.ip_rate_per_min / 60, opts.ip_burst)
        self.contact = RateLimiter(opts.contact_rate_per_hour / 3600, opts.contact_burst)
        self.challenge = RateLimiter(opts.challenge_rate_per_min / 60, opts.challenge_burst)


def site_today(timezone: str | None) -> str:
    try:
        tz = ZoneInfo(timezone or "Asia/Tokyo")
    except (ValueError, KeyError):
        tz = ZoneInfo("Asia/Tokyo")
    return now_utc().astimezone(tz).date().isoformat()  # the hub's clock (demo: --at)


async def active_rows(tx: Tx, chash: str) -> list[dict[str, Any]]:
    rows = await tx.conn.execute(select(web_tickets).where(and_(
        web_tickets.c.contact_hash == chash, web_tickets.c.state == "active")))
    return [dict(r._mapping) for r in rows]


async def mark_done(tx: Tx, site: str, ids: Iterable[str] = (), *,
                    day: str | None = None, before: str | None = None) -> int:
    """Rows done and their contact erased: by ticket id, of one day, or of days before one."""
    cond = [web_tickets.c.site == site, web_tickets.c.state == "active"]
    ids = list(ids)
    if ids:
        cond.append(web_tickets.c.id.in_(ids))
    elif day is not None:
        cond.append(web_tickets.c.day == day)
    elif before is not None:
        cond.append(web_tickets.c.day < before)
    else:
        return 0
    res = await tx.conn.execute(update(web_tickets).where(and_(*cond))
                                .values(state="done", contact_hash=None))
    return int(res.rowcount or 0)
