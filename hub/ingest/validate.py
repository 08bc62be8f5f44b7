"""Checks on what sites publish, before anything is stored (contract: ``edge/protocol.py``).

Why strict here: a payload is stored for good and acked back, so anything odd is dropped with a
reason the operator can act on. Reasons never quote the payload's content (it may hold personal
data or be hostile): they name the field and the rule.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeGuard

from edge.protocol import ENVELOPE_VERSION, MAX_PAYLOAD, SYNC_VERSION, Envelope

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")  # as in the site TOML ([site] id)
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_SEQ = 2**53  # seqs stay exact as JSON numbers in every client (JavaScript too)
MAX_DEVICES = 256
_STATES = frozenset({"ok", "degraded", "offline", "error"})


class Invalid(Exception):
    """The payload is dropped; ``str()`` is the reason, safe to log."""


@dataclass(frozen=True, slots=True)
class Batch:
    replay: bool
    events: list[Envelope]  # sorted by seq, seqs unique


@dataclass(frozen=True, slots=True)
class Status:
    online: bool
    session: str | None
    config_version: int | None
    last_seq: int | None
    outbox: int | None
    devices: list[dict[str, Any]] | None  # None: not reported (e.g. the last will)
    payload: dict[str, Any]  # what is kept as the site's status (devices removed)


@dataclass(frozen=True, slots=True)
class Reply:
    command_id: str
    payload: dict[str, Any]


def _int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def load(payload: bytes, site: str) -> dict[str, Any]:
    """Size, JSON, ``v`` and ``site`` checks every site payload shares."""
    if len(payload) > MAX_PAYLOAD:
        raise Invalid(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Invalid("not JSON (UTF-8)") from None
    if not isinstance(doc, dict):
        raise Invalid("not a JSON object")
    if not _int(doc.get("v")) or doc["v"] != SYNC_VERSION:
        raise Invalid(f"v must be {SYNC_VERSION}")
    if doc.get("site") != site:
        raise Invalid("site in the payload differs from the topic")
    return doc


def _time(value: Any, where: str) -> None:
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{where} must be an ISO time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{where} is not an ISO time") from None
    if parsed.tzinfo is None:
        raise Invalid(f"{where} has no UTC offset")


def envelope(raw: Any, site: str, where: str) -> Envelope:
    if not isinstance(raw, dict):
        raise Invalid(f"{where} is not an object")
    if not _int(raw.get("v")) or raw["v"] != ENVELOPE_VERSION:
        raise Invalid(f"{where}.v must be {ENVELOPE_VERSION}")
    if raw.get("site") != site:
        raise Invalid(f"{where}.site differs from the topic")
    seq = raw.get("seq")
    if not _int(seq) or not 1 <= seq < MAX_SEQ:
        raise Invalid(f"{where}.seq must be a positive integer")
    if not isinstance(raw.get("id"), str) or not _ID.match(raw["id"]):
        raise Invalid(f"{where}.id must be an id string")
    _time(raw.get("at"), f"{where}.at")
    day = raw.get("day")
    if not isinstance(day, str) or not _DAY.match(day):
        raise Invalid(f"{where}.day must be YYYY-MM-DD")
    try:
        date.fromisoformat(day)
    except ValueError:
        raise Invalid(f"{where}.day is not a date") from None
    if not isinstance(raw.get("type"), str) or not _TYPE.match(raw["type"]):
        raise Invalid(f"{where}.type must be an event type name")
    if not isinstance(raw.get("data"), dict):
        raise Invalid(f"{where}.data must be an object")
    return Envelope.from_dict(raw)


def events_batch(payload: bytes, site: str) -> Batch:
    """``{v, site, replay, events: [...]}``; order inside the batch is not relied on."""
    doc = load(payload, site)
    replay = doc.get("replay", False)
    if not isinstance(replay, bool):
        raise Invalid("replay must be true or false")
    raw = doc.get("events")
    if not isinstance(raw, list):
        raise Invalid("events must be a list")
    envs = sorted((envelope(r, site, f"events[{i}]") for i, r in enumerate(raw)),
                  key=lambda e: e.seq)
    for a, b in itertools.pairwise(envs):
        if a.seq == b.seq:
            raise Invalid(f"seq {a.seq} appears twice in one batch")
    if len({e.id for e in envs}) != len(envs):
        raise Invalid("an event id appears twice in one batch")
    return Batch(replay, envs)


def _device(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid(f"{where} is not an object")
    out: dict[str, Any] = {}
    for key, limit, required in (("id", 64, True), ("kind", 16, True), ("reason", 64, False),
                                 ("since", 40, False)):
        value = raw.get(key)
        if value is None and not required:
            out[key] = None
        elif not isinstance(value, str) or not 0 < len(value) <= limit:
            raise Invalid(f"{where}.{key} must be a string of at most {limit} characters")
        else:
            out[key] = value
    if raw.get("state") not in _STATES:
        raise Invalid(f"{where}.state must be one of {', '.join(sorted(_STATES))}")
    return {"device": out["id"], "kind": out["kind"], "state": raw["state"],
            "reason": out["reason"], "since": out["since"]}


def status(payload: bytes, site: str) -> Status:
    """``{v, site, online, session, at, versions, last_seq, outbox, devices}`` or the will."""
    doc = load(payload, site)
    if not isinstance(doc.get("online"), bool):
        raise Invalid("online must be true or false")
    session = doc.get("session")
    if session is not None and (not isinstance(session, str) or not 0 < len(session) <= 64):
        raise Invalid("session must be a string of at most 64 characters")
    if doc.get("at") is not None:
        _time(doc["at"], "at")
    versions = doc.get("versions")
    if versions is not None and not isinstance(versions, dict):
        raise Invalid("versions must be an object")
    config_version = (versions or {}).get("config")
    if config_version is not None and (not _int(config_version) or config_version < 0):
        raise Invalid("versions.config must be a non-negative integer")
    numbers: dict[str, int | None] = {}
    for key in ("last_seq", "outbox"):
        value = doc.get(key)
        if value is not None and (not _int(value) or not 0 <= value < MAX_SEQ):
            raise Invalid(f"{key} must be a non-negative integer")
        numbers[key] = value
    raw_devices = doc.get("devices")
    devices: list[dict[str, Any]] | None = None
    if raw_devices is not None:
        if not isinstance(raw_devices, list) or len(raw_devices) > MAX_DEVICES:
            raise Invalid(f"devices must be a list of at most {MAX_DEVICES}")
        devices = [_device(d, f"devices[{i}]") for i, d in enumerate(raw_devices)]
        if len({d["device"] for d in devices}) != len(devices):
            raise Invalid("a device id appears twice")
    kept = {k: v for k, v in doc.items() if k != "devices"}
    return Status(doc["online"], session, config_version, numbers["last_seq"], numbers["outbox"],
                  devices, kept)


def reply(payload: bytes, site: str) -> Reply:
    """``{v, site, command_id, ok, data | error}``."""
    doc = load(payload, site)
    cid = doc.get("command_id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise Invalid("command_id must be an id string")
    if not isinstance(doc.get("ok"), bool):
        raise Invalid("ok must be true or false")
    return Reply(cid, doc)


def config_version(payload: bytes, site: str) -> int:
    """The version of a retained config message (the hub's own, seen coming back)."""
    doc = load(payload, site)
    version = doc.get("version")
    if not _int(version) or version < 1:
        raise Invalid("version must be a positive integer")
    return version


class DropLog:
    """Warns of dropped payloads (the reason, never the content), at most every ``every_s`` per
    site and kind, saying how many were dropped in between."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._warned: dict[tuple[str, str], tuple[float, int]] = {}

    def warn(self, site: str, kind: str, reason: str) -> None:
        key = (site, kind)
        now = time.monotonic()
        last, suppressed = self._warned.get(key, (0.0, 0))
        if now - last < self.every_s:
            self._warned[key] = (last, suppressed + 1)
            return
        self._warned[key] = (now, 0)
        more = f" ({suppressed} more dropped since the last warning)" if suppressed else ""
        logging.getLogger("hub.ingest.service").warning(
            "dropped %s message from site %s: %s%s", kind, site, reason, more)
