"""Live push over websockets: every committed change reaches every screen without a reload.

Commits are coalesced: one snapshot is built per loop turn however many commands landed, and a
slow client only ever gets the newest state (it never holds up the others). The state is the
truth; the events that come with it are hints (e.g. which call to announce).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import WSMsgType, web

from edge.domain.views import snapshot
from edge.protocol import Envelope
from edge.store.writer import Writer

_LOGGER = logging.getLogger(__name__)
PRIVATE_KEYS = frozenset({"token"})


def public_event(e: Envelope) -> dict[str, Any]:
    """An event as screens may see it: without the ticket token (the holder's secret)."""
    return {"seq": e.seq, "id": e.id, "at": e.at, "type": e.type,
            "data": {k: v for k, v in e.data.items() if k not in PRIVATE_KEYS}}


class _Client:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.latest: str | None = None
        self.ready = asyncio.Event()


class LiveHub:
    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.clients: set[_Client] = set()
        self._pending: list[Envelope] = []
        self._scheduled = False
        self.sent_messages = 0
        # more parts of the pushed state, e.g. "devices": the device health list
        self.extras: dict[str, Callable[[], Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def message(self, events: list[Envelope]) -> str:
        state = self.writer.read(lambda s: snapshot(s, self.writer.clock.now()))
        for key, part in self.extras.items():
            state[key] = part()
        return json.dumps({"type": "state", "events": [public_event(e) for e in events],
                           "state": state}, ensure_ascii=False)

    def on_commit(self, events: list[Envelope]) -> None:
        """Writer listener (runs on the loop): batch until the loop is free."""
        self._pending.extend(events)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def poke(self) -> None:
        """Push the state although nothing was committed (a device changed); thread-safe."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.on_commit, [])

    def _flush(self) -> None:
        self._scheduled = False
        events, self._pending = self._pending, []
        if not self.clients:
            return
        msg = self.message(events)
        for client in self.clients:
            client.latest = msg
            client.ready.set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        self._loop = asyncio.get_running_loop()
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        client = _Client(ws)
        client.latest = self.message([])
        client.ready.set()
        self.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "ping":
                    await ws.send_str('{"type":"pong"}')
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send_loop(self, client: _Client) -> None:
        while not client.ws.closed:
            await client.ready.wait()
            client.ready.clear()
            msg, client.latest = client.latest, None
            if msg is not None:
                try:
                    await client.ws.send_str(msg)
                    self.sent_messages += 1
                except ConnectionError:
                    return

    async def close_all(self) -> None:
        for client in list(self.clients):
            await client.ws.close()


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: close websockets on shutdown so the server stops promptly."""
    yield
    hub = app.get(LIVE)
    if hub is not None:
        await hub.close_all()


LIVE: web.AppKey[LiveHub] = web.AppKey("live", LiveHub)
