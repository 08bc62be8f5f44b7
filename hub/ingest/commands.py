"""Hub -> site commands and their replies (contract: ``edge/protocol.py``).

A command is ``{v, site, id, type, expires_at, data}`` on ``sites/{site}/commands`` (QoS 1, not
retained); the edge deduplicates by id, refuses expired ones and answers on ``replies`` with the
command's id. Only the site a command went to can answer it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from edge.protocol import SYNC_VERSION, dumps, site_topic, uuid7
from hub.ingest.mqtt import MqttLink
from hub.ingest.validate import Reply
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)

REPLAY_MAX_INTERVAL_S = 300.0
REPLAY_TTL_S = 60.0


class Commands:
    def __init__(self, link: MqttLink, prefix: str) -> None:
        self.link = link
        self.prefix = prefix
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}

    def send(self, site: str, type_: str, data: dict[str, Any], ttl_s: float,
             cid: str | None = None) -> str:
        """Publish a command without waiting; returns its id."""
        cid = cid or uuid7()
        expires = (now_utc() + timedelta(seconds=ttl_s)).isoformat(timespec="milliseconds")
        self.link.publish(site_topic(self.prefix, site, "commands"), dumps(
            {"v": SYNC_VERSION, "site": site, "id": cid, "type": type_, "expires_at": expires,
             "data": data}))
        return cid

    async def call(self, site: str, type_: str, data: dict[str, Any],
                   ttl_s: float) -> dict[str, Any] | None:
        """Send and wait for the reply payload; None if none came before the command expired."""
        cid = uuid7()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = (site, fut)
        try:
            self.send(site, type_, data, ttl_s, cid)
            return await asyncio.wait_for(fut, ttl_s)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(cid, None)

    def on_reply(self, site: str, reply: Reply) -> None:
        pending = self._pending.get(reply.command_id)
        if pending is None or pending[0] != site:
            _LOGGER.debug("site %s: reply to a command not awaited here", site)
            return
        if not pending[1].done():
            pending[1].set_result(reply.payload)

    def cancel_all(self) -> None:
        for _site, fut in self._pending.values():
            fut.cancel()


@dataclass
class _Replay:
    from_seq: int
    next_at: float
    interval: float


class ReplayAsks:
    """Replay requests for gaps: at most once per ``interval_s`` while the same gap stays,
    doubling up to 5 minutes if the edge cannot fill it."""

    def __init__(self, commands: Commands, interval_s: float) -> None:
        self.commands = commands
        self.interval_s = interval_s
        self._asked: dict[str, _Replay] = {}

    def ask(self, site: str, from_seq: int) -> bool:
        """Send a replay command unless one for this gap is recent; True if sent."""
        now = time.monotonic()
        prev = self._asked.get(site)
        if prev is not None and prev.from_seq == from_seq:
            if now < prev.next_at:
                return False
            interval = min(prev.interval * 2, REPLAY_MAX_INTERVAL_S)
        else:
            interval = self.interval_s
        self._asked[site] = _Replay(from_seq, now + interval, interval)
        _LOGGER.info("site %s: gap after seq %d; asking for a replay", site, from_seq - 1)
        self.commands.send(site, "replay", {"from_seq": from_seq}, REPLAY_TTL_S)
        return True

    def done(self, site: str) -> None:
        """The site has no gap any more."""
        self._asked.pop(site, None)
