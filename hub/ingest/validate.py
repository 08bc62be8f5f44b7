"""Checks on what sites publish, before anything is stored (contract: ``edge/protocol.py``).

Why strict here: a payload is stored for good and acked back, so anything odd is dropped with a
reason the operator can act on. Reasons never quote the payload's content (it may hold personal
data or be hostile): they name the field and the rule.

The shapes are the models in ``edge.protocol`` (the edge builds its payloads with the same
ones); this module adds what only the receiver knows: the topic's site, duplicates inside one
batch, and the size limit checked before parsing. Parsing and checking is one pass in
pydantic-core (``model_validate_json`` on the bytes): a 1000-event batch costs less than the
hand checks it replaced (json.loads plus a Python loop over every field).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar

from pydantic import TypeAdapter, ValidationError

from edge import protocol
from edge.protocol import MAX_DEVICES as MAX_DEVICES
from edge.protocol import MAX_PAYLOAD as MAX_PAYLOAD
from edge.protocol import MAX_SEQ as MAX_SEQ
from edge.protocol import SITE_ID as SITE_ID
from edge.protocol import SYNC_VERSION, Envelope, WireError

M = TypeVar("M", bound=protocol.SiteMessage)
_ENVELOPE: TypeAdapter[Envelope] = TypeAdapter(Envelope)
_ENVELOPE_RULES = {k.removeprefix("events[]."): rule
                   for k, rule in protocol.EventsBatch.RULES.items()
                   if k.startswith("events[].")}


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


def _size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD:
        raise Invalid(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")


def _message(model: type[M], payload: bytes, site: str) -> M:
    """Size, then the topic's model (JSON, ``v`` and every field in one pass), then ``site``."""
    _size(payload)
    try:
        msg = model.from_json(payload)
    except WireError as exc:
        raise Invalid(str(exc)) from None
    if msg.site != site:
        raise Invalid("site in the payload differs from the topic")
    return msg


def load(payload: bytes, site: str) -> dict[str, Any]:
    """Size, JSON, ``v`` and ``site`` checks every site payload shares (the models below do
    these and the rest; this is for a payload whose kind has no model yet)."""
    _size(payload)
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


def envelope(raw: Any, site: str, where: str) -> Envelope:
    """One event (already decoded) by the envelope's wire rules."""
    try:
        env = _ENVELOPE.validate_python(raw)
    except ValidationError as exc:
        if not exc.errors()[0]["loc"]:
            raise Invalid(f"{where} is not an object") from None
        raise Invalid(f"{where}.{protocol.problem(exc, _ENVELOPE_RULES)}") from None
    if env.site != site:
        raise Invalid(f"{where}.site differs from the topic")
    return env


def events_batch(payload: bytes, site: str) -> Batch:
    """``{v, site, replay, events: [...]}``; order inside the batch is not relied on."""
    msg = _message(protocol.EventsBatch, payload, site)
    for i, env in enumerate(msg.events):
        if env.site != site:
            raise Invalid(f"events[{i}].site differs from the topic")
    envs = sorted(msg.events, key=lambda e: e.seq)
    for a, b in itertools.pairwise(envs):
        if a.seq == b.seq:
            raise Invalid(f"seq {a.seq} appears twice in one batch")
    if len({e.id for e in envs}) != len(envs):
        raise Invalid("an event id appears twice in one batch")
    return Batch(msg.replay, envs)


def status(payload: bytes, site: str) -> Status:
    """``{v, site, online, session, at, versions, last_seq, outbox, devices}`` or the will."""
    msg = _message(protocol.Status, payload, site)
    devices: list[dict[str, Any]] | None = None
    if msg.devices is not None:
        devices = [{"device": d.id, "kind": d.kind, "state": d.state, "reason": d.reason,
                    "since": d.since} for d in msg.devices]
        if len({d["device"] for d in devices}) != len(devices):
            raise Invalid("a device id appears twice")
    kept = msg.model_dump(mode="json", exclude_unset=True, exclude={"devices"})
    config = msg.versions.config if msg.versions is not None else None
    return Status(msg.online, msg.session, config, msg.last_seq, msg.outbox, devices, kept)


def reply(payload: bytes, site: str) -> Reply:
    """``{v, site, command_id, ok, data | error}``."""
    msg = _message(protocol.Reply, payload, site)
    return Reply(msg.command_id, msg.model_dump(mode="json", exclude_unset=True))


def config_version(payload: bytes, site: str) -> int:
    """The version of a retained config message (the hub's own, seen coming back)."""
    return _message(protocol.ConfigMessage, payload, site).version


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
