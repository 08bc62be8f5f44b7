"""Wire types shared by edge and hub: the event envelope and its ids.

Events are born at the edge, so this module lives here and the hub imports it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

ENVELOPE_VERSION = 1


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7): sortable ids without a central counter."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as stored, synced and replayed: ``{v, site, seq, id, at, day, type, data}``.

    ``seq`` is gap-free per site, ``at`` is the edge's local time with its offset and ``day`` the
    business day the event belongs to.
    """

    v: int
    site: str
    seq: int
    id: str
    at: str
    day: str
    type: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def data_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Envelope:
        return cls(
            v=int(raw["v"]),
            site=str(raw["site"]),
            seq=int(raw["seq"]),
            id=str(raw["id"]),
            at=str(raw["at"]),
            day=str(raw["day"]),
            type=str(raw["type"]),
            data=dict(raw["data"]),
        )


# --- MQTT sync (DESIGN.md "Sync"): topics and payloads, the contract between edge and hub ---

DEFAULT_PREFIX = "madoguchi/v1"
SYNC_VERSION = 1
MAX_PAYLOAD = 1_000_000  # bytes; larger messages are dropped and logged by either side

# topic kinds under {prefix}/sites/{site}/: who publishes, QoS 1 everywhere
EDGE_TOPICS = ("events", "status", "replies")  # edge -> hub (a site may publish only these)
# staff: the accounts that may sign in at the site's counters (edge/sync/staff.py)
HUB_TOPICS = ("ack", "config", "commands", "staff")  # hub -> edge
RETAINED = frozenset({"ack", "status", "config", "staff"})


def site_topic(prefix: str, site: str, kind: str) -> str:
    """``{prefix}/sites/{site}/{kind}``; kind in EDGE_TOPICS + HUB_TOPICS."""
    return f"{prefix}/sites/{site}/{kind}"


def hub_status_topic(prefix: str) -> str:
    return f"{prefix}/hub/status"


def parse_site_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(site, kind)`` of a site topic, or None for anything else."""
    head = f"{prefix}/sites/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in EDGE_TOPICS + HUB_TOPICS:
        return None
    return parts[0], parts[1]


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# Payload shapes (all JSON objects with "v": SYNC_VERSION and "site"):
#   events   {v, site, replay: bool, events: [Envelope.to_dict(), ...]}   seq ascending, no gaps
#            inside one batch; replay=true marks history re-sent on request (never re-announced)
#   ack      {v, site, seq, at}          highest contiguous seq the hub has stored (retained)
#   status   {v, site, online, session, at, versions: {software, config, schema}, last_seq,
#             outbox, devices: [health views]}; the last will is {v, site, online: false,
#             session, at: null} (retained)
#   config   {v, site, version, toml}    desired site configuration (retained; higher wins)
#   commands {v, site, id, type, expires_at, data}   type "issue" (web ticket: data = IssueBody
#             fields) or "replay" (data = {from_seq}); deduplicated by id, refused when expired
#   replies  {v, site, command_id, ok, data | error: {code, message, message_ja}}
#   hub/status {v, online, at} (retained; also the hub's last will with online false)
