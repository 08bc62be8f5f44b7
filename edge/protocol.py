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
