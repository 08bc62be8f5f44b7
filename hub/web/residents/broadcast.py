"""Server-sent events to many clients: everyone gets the same pre-encoded bytes.

Why a one-slot mailbox per client: a slow phone must never hold up the others or grow memory
without bound, so a newer snapshot simply replaces one it has not taken yet (it only ever needs
the newest). Heartbeat comments keep proxies from closing idle streams; a client that cannot
take a write within ``WRITE_TIMEOUT_S`` is dropped. The number of streams is bounded.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from edge.aio import wait_event

HEARTBEAT_S = 15.0
WRITE_TIMEOUT_S = 10.0
RETRY_MS = 3000


class Subscriber:
    __slots__ = ("pending", "wake")

    def __init__(self) -> None:
        self.pending: bytes | None = None
        self.wake = asyncio.Event()

    def offer(self, data: bytes) -> None:
        """Replace whatever was not sent yet: only the newest state matters."""
        self.pending = data
        self.wake.set()


class Broadcast:
    def __init__(self, max_clients: int = 20_000, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.max_clients = max_clients
        self.heartbeat_s = heartbeat_s
        self.subscribers: set[Subscriber] = set()
        self.closing = False

    @property
    def full(self) -> bool:
        return len(self.subscribers) >= self.max_clients

    def publish(self, data: bytes) -> None:
        for sub in self.subscribers:
            sub.offer(data)

    def close(self) -> None:
        """At shutdown: every stream ends now (the server then stops at once)."""
        self.closing = True
        for sub in self.subscribers:
            sub.wake.set()

    async def serve(self, request: web.Request, sub: Subscriber,
                    first: bytes | None) -> web.StreamResponse:
        """Stream to one client until it leaves, is too slow, or the hub stops."""
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no",
            "Referrer-Policy": "no-referrer"})
        await resp.prepare(request)
        self.subscribers.add(sub)
        try:
            await resp.write(b"retry: %d\n\n" % RETRY_MS + (first or b""))
            while not self.closing:
                await wait_event(sub.wake, self.heartbeat_s)
                sub.wake.clear()
                if self.closing:
                    break
                data, sub.pending = sub.pending, None
                await asyncio.wait_for(resp.write(data or b": hb\n\n"), WRITE_TIMEOUT_S)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.subscribers.discard(sub)
        return resp
