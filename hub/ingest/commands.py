"""Hub -> site commands and their replies (contract: ``edge/protocol.py``).

A command is ``{v, site, id, type, expires_at, data}`` on ``sites/{site}/commands`` (QoS 1, not
retained); the edge deduplicates by id, refuses expired ones and answers on ``replies`` with the
command's id. Only the site a command went to can answer it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from edge.protocol import SYNC_VERSION, dumps, site_topic, uuid7
from hub.ingest.mqtt import MqttLink
from hub.ingest.validate import Reply
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)


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
