"""Signed webhooks: each submission event of a form is POSTed to the ward's business system.

Why this shape: a business system must be able to trust a delivery (signature), act on it once
(idempotency key) and miss nothing while it is down (retries with backoff for about a day).

**Receiver contract** (give this to the ward's vendor). The format is Standard Webhooks
(https://www.standardwebhooks.com), so its libraries verify it unchanged:

* ``POST <url>``, ``Content-Type: application/json``; body ``{"type": "submission.received",
  "timestamp": "<ISO 8601>", "form_id": ..., "submission_id": ..., "data": {...}}``.
* ``Webhook-Id``: the idempotency key; the same on every retry of one event. Store the ids you
  have processed and answer 2xx to a repeat without acting again.
* ``Webhook-Timestamp``: Unix seconds of this attempt (new on each retry).
* ``Webhook-Signature``: ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``; several
  space-separated entries may appear. ``key`` is the base64-decoded part of the secret after
  ``whsec_``. Compare in constant time; refuse timestamps more than 5 minutes off (replays).
* Answer 2xx when accepted. 408, 429, 5xx, timeouts and connection errors are retried after
  ~30 s, 2 min, 10 min, 1 h, then every ~6 h, until 24 h after the event; any other status
  (including 3xx: redirects are never followed) is a permanent failure shown to staff.

``verify`` below is that check in Python. Secrets rotate: the hub signs with the first of the
form's secrets; a receiver passes all it currently accepts to ``verify``.

**Storage** (the SQL table comes later; ``MemoryDeliveries`` is the reference). A table
``forms_webhook_deliveries``: ``id`` text primary key, ``form_id``, ``submission_id``,
``event_type``, ``body`` (AES-GCM sealed: it carries answers), ``created_at``, ``attempts`` int,
``next_at`` (indexed with ``status``), ``status`` pending|delivered|failed, ``last_error`` code,
``delivered_at``. The row is inserted in the same transaction as the submission (an outbox), so a
crash never loses an event. ``claim_due`` must be safe with several hub processes: on PostgreSQL
it is ``CLAIM_SQL`` below (tested against a real server); SQLite has one writer, so there the
same statement without ``FOR UPDATE SKIP LOCKED`` is safe. The lease (``next_at`` pushed to
``now + lease``) means no lock is held during HTTP, and a process that dies mid-send leaves the
row due again after the lease. ``record`` is conditional (``WHERE id = :id AND attempts =
:attempts AND status = 'pending'``) so a late result from an expired lease cannot overwrite a
newer one.

Nothing here logs a payload, a URL or a secret: only delivery ids, form ids and status codes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_LOGGER = logging.getLogger(__name__)

HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE = (
    "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature")
SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
TOLERANCE_S = 300
TIMEOUT_S = 10.0
LEASE_S = 60.0  # longer than TIMEOUT_S, so a live attempt is never claimed twice
RETRY_DELAYS_S: tuple[float, ...] = (30.0, 120.0, 600.0, 3600.0, 6 * 3600.0)
GIVE_UP_AFTER_S = 24 * 3600.0
JITTER = 0.2  # each delay is scaled by a factor in [1 - JITTER, 1 + JITTER)
CLAIM_SQL = """\
UPDATE forms_webhook_deliveries SET attempts = attempts + 1, next_at = :lease_until
WHERE id IN (SELECT id FROM forms_webhook_deliveries
             WHERE status = 'pending' AND next_at <= :now
             ORDER BY next_at LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING *"""


# ---------------------------------------------------------------- signing

class WebhookRefused(Exception):
    """A delivery a receiver must refuse; ``code`` is stable (for logs and tests)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes (shown to staff once)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body`` (Standard Webhooks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, now: datetime, body: bytes) -> dict[str, str]:
    ts = int(now.timestamp())
    return {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: sign(secret, msg_id, ts, body),
            "Content-Type": "application/json"}


def verify(secret: str | Sequence[str], headers: Mapping[str, str], body: bytes, now: datetime,
           tolerance_s: int = TOLERANCE_S) -> str:
    """Check a delivery as a receiver must; returns its ``Webhook-Id`` or raises
    ``WebhookRefused`` (codes ``webhook_missing_headers``, ``webhook_bad_timestamp``,
    ``webhook_timestamp_too_old``, ``webhook_timestamp_in_future``, ``webhook_bad_signature``).
    ``secret``: one secret or every secret currently accepted (rotation)."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(HEADER_ID.lower(), "")
    ts_text = lower.get(HEADER_TIMESTAMP.lower(), "")
    sig_text = lower.get(HEADER_SIGNATURE.lower(), "")
    if not (msg_id and ts_text and sig_text):
        raise WebhookRefused("webhook_missing_headers")
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
        raise WebhookRefused("webhook_bad_timestamp")
    age = now.timestamp() - int(ts_text)
    if age > tolerance_s:
        raise WebhookRefused("webhook_timestamp_too_old")
    if age < -tolerance_s:
        raise WebhookRefused("webhook_timestamp_in_future")
    offered = [s.removeprefix("v1,").encode() for s in sig_text.split() if s.startswith("v1,")]
    accepted = [secret] if isinstance(secret, str) else list(secret)
    for candidate in accepted:
        expected = sign(candidate, msg_id, int(ts_text), body).removeprefix("v1,").encode()
        # every comparison runs, so timing says nothing about which one matched
        if any([hmac.compare_digest(expected, sig) for sig in offered]):
            return msg_id
    raise WebhookRefused("webhook_bad_signature")


# ---------------------------------------------------------------- URL policy (SSRF)

URL_INVALID = "webhook_url_invalid"
URL_SCHEME = "webhook_url_scheme"
URL_ADDRESS = "webhook_url_address"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


class UrlRefused(OSError):
    """A webhook URL or the address it resolves to is not allowed. An ``OSError`` so aiohttp
    passes it through as the cause of a connection error."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class UrlPolicy:
    """``allow_private``: a ward whose business system sits in its own network (LGWAN, 10.x)
    sets ``MADOGUCHI_FORMS_WEBHOOK_ALLOW_PRIVATE=1``; tests set it for 127.0.0.1. Without it
    only public addresses are reached, so a form's webhook cannot probe the hub's network.
    Link-local (cloud metadata at 169.254.169.254), multicast and reserved addresses are
    always refused."""

    allow_private: bool = False

    def check_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            _ = parts.port
        except ValueError:
            raise UrlRefused(URL_INVALID) from None
        if not host or parts.username or parts.password:
            raise UrlRefused(URL_INVALID)
        if parts.scheme == "http":
            if host not in _LOOPBACK_NAMES:
                raise UrlRefused(URL_SCHEME)
        elif parts.scheme != "https":
            raise UrlRefused(URL_SCHEME)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if host == "localhost" and not self.allow_private:
                raise UrlRefused(URL_ADDRESS) from None
            return  # a name: its addresses are checked by the resolver at connect time
        self.check_address(address)

    def check_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if (address.is_link_local or address.is_multicast or address.is_unspecified
                or address.is_reserved):
            raise UrlRefused(URL_ADDRESS)
        if not address.is_global and not self.allow_private:
            raise UrlRefused(URL_ADDRESS)


class _GuardedResolver(AbstractResolver):
    """Checks the addresses actually connected to (a name could resolve to 10.0.0.1, or change
    between a check and the connection: DNS rebinding)."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy, self._inner = policy, DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = []
        for r in results:
            try:
                self.policy.check_address(ipaddress.ip_address(r["host"]))
            except UrlRefused:
                continue
            allowed.append(r)
        if not allowed:
            raise UrlRefused(URL_ADDRESS)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


# ---------------------------------------------------------------- deliveries

class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    """One event for one form's webhook. ``body`` is serialised once, so every retry sends the
    same bytes; it holds answers, hence never in ``repr`` (tracebacks, logs)."""

    id: str
    form_id: str
    submission_id: str
    event_type: str
    body: bytes = field(repr=False)
    created_at: datetime
    next_at: datetime
    attempts: int = 0
    status: Status = Status.PENDING
    last_error: str | None = None
    delivered_at: datetime | None = None


def new_delivery(form_id: str, submission_id: str, event_type: str, payload: Mapping[str, Any],
                 now: datetime, delivery_id: str | None = None) -> Delivery:
    """``payload``: whatever the form's mapping produces (JSON-serialisable)."""
    msg_id = delivery_id or "msg_" + secrets.token_hex(16)
    body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "form_id": form_id,
                       "submission_id": submission_id, "data": payload},
                      ensure_ascii=False, separators=(",", ":")).encode()
    return Delivery(msg_id, form_id, submission_id, event_type, body, now, now)


@dataclass(frozen=True)
class Endpoint:
    """A form's webhook: ``secrets[0]`` signs; older ones are kept only for receivers."""

    url: str = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    """One attempt: an HTTP ``status``, or an ``error`` code (timeout, connection, URL policy)."""

    status: int | None = None
    error: str | None = None

    @property
    def code(self) -> str:
        return self.error if self.error else f"http_{self.status}"


def classify(outcome: Outcome) -> Status | None:
    """``DELIVERED``, ``FAILED`` (permanent) or ``None`` (retry)."""
    if outcome.status is not None:
        if 200 <= outcome.status < 300:
            return Status.DELIVERED
        if outcome.status in (408, 429) or outcome.status >= 500:
            return None
        return Status.FAILED
    return None if outcome.error in ("timeout", "connection") else Status.FAILED


def retry_delay_s(attempts: int, rand: Callable[[], float]) -> float:
    """Delay after the ``attempts``-th failed attempt (1-based), jittered so that a receiver
    coming back up is not hit by every hub process at the same second."""
    nominal = RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S)) - 1]
    return nominal * (1 - JITTER + 2 * JITTER * rand())


def after_attempt(d: Delivery, outcome: Outcome, now: datetime,
                  rand: Callable[[], float]) -> Delivery:
    """The delivery after attempt number ``d.attempts`` ended with ``outcome`` (pure)."""
    verdict = classify(outcome)
    if verdict is Status.DELIVERED:
        return replace(d, status=Status.DELIVERED, delivered_at=now, last_error=None)
    if verdict is None:
        next_at = now + timedelta(seconds=retry_delay_s(d.attempts, rand))
        if next_at <= d.created_at + timedelta(seconds=GIVE_UP_AFTER_S):
            return replace(d, next_at=next_at, last_error=outcome.code)
    return replace(d, status=Status.FAILED, last_error=outcome.code)


class DeliveryRepo(Protocol):
    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[Delivery]:
        """Pending deliveries with ``next_at <= now``, with ``attempts`` already counted up
        and ``next_at`` moved to ``now + lease_s`` (see the module docstring for the SQL)."""
        ...

    async def record(self, delivery: Delivery) -> bool:
        """Store a claimed delivery's new state unless another claim overtook it."""
        ...


SendFn = Callable[[Delivery, datetime], Awaitable[Outcome]]


class MemoryDeliveries:
    """The reference repository (tests, demo): the semantics the SQL one must keep."""

    def __init__(self) -> None:
        self.rows: dict[str, Delivery] = {}
        self._lock = asyncio.Lock()

    async def add(self, delivery: Delivery) -> None:
        async with self._lock:
            self.rows.setdefault(delivery.id, delivery)

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[Delivery]:
        async with self._lock:
            due = sorted((d for d in self.rows.values()
                          if d.status is Status.PENDING and d.next_at <= now),
                         key=lambda d: d.next_at)[:limit]
            claimed = [replace(d, attempts=d.attempts + 1,
                               next_at=now + timedelta(seconds=lease_s)) for d in due]
            self.rows.update((d.id, d) for d in claimed)
            return claimed

    async def record(self, delivery: Delivery) -> bool:
        async with self._lock:
            row = self.rows.get(delivery.id)
            if row is None or row.status is not Status.PENDING or row.attempts != delivery.attempts:
                return False
            self.rows[delivery.id] = delivery
            return True


async def deliver_due(repo: DeliveryRepo, send: SendFn, now: datetime, *,
                      rand: Callable[[], float] = random.random, limit: int = 20,
                      lease_s: float = LEASE_S) -> list[Delivery]:
    """One round: claim what is due, send it concurrently, record each result. Returns the
    deliveries as recorded. Called every few seconds by the forms module's background task."""
    claimed = await repo.claim_due(now, limit, lease_s)
    outcomes = await asyncio.gather(*(send(d, now) for d in claimed))
    done = []
    for d, outcome in zip(claimed, outcomes, strict=True):
        new = after_attempt(d, outcome, now, rand)
        if await repo.record(new):
            done.append(new)
        _LOGGER.info("webhook %s form %s attempt %d: %s -> %s", d.id, d.form_id, d.attempts,
                     outcome.code, new.status.value)
    return done


EndpointLookup = Callable[[str], Awaitable[Endpoint | None]]


class HttpSender:
    """POSTs signed deliveries with aiohttp. ``endpoints`` maps a form id to its webhook (None:
    removed since, a permanent failure). Use ``async with`` or call ``close()``."""

    def __init__(self, endpoints: EndpointLookup, policy: UrlPolicy | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.endpoints, self.policy = endpoints, policy or UrlPolicy()
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=_GuardedResolver(self.policy),
                                             use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    async def __call__(self, delivery: Delivery, now: datetime) -> Outcome:
        endpoint = await self.endpoints(delivery.form_id)
        if endpoint is None or not endpoint.secrets:
            return Outcome(error="webhook_no_endpoint")
        try:
            self.policy.check_url(endpoint.url)
            headers = signed_headers(endpoint.secrets[0], delivery.id, now, delivery.body)
            async with self._get_session().post(endpoint.url, data=delivery.body,
                                                headers=headers, allow_redirects=False) as resp:
                return Outcome(status=resp.status)
        except UrlRefused as exc:
            return Outcome(error=exc.code)
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            return Outcome(error=cause.code if isinstance(cause, UrlRefused) else "connection")
        except TimeoutError:
            return Outcome(error="timeout")
        except aiohttp.ClientError:
            return Outcome(error="connection")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpSender:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

