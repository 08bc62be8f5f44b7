"""A hub and one edge on the real mosquitto, in this process, for the web-ticket tests."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from conftest import free_port
from support import TZ
from sync_support import site_toml

from edge.app import Edge, SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.domain.clock import ManualClock
from hub.app import Hub, start_hub
from hub.settings import HubSettings
from hub.store.schema import web_tickets
from hub.webticket import WEBTICKETS
from hub.webticket.api import site_config
from hub.webticket.pow import leading_zero_bits, solve

WEB = 'web = { from = "08:30", to = "17:00", daily_cap = 8, checkin_required = true }\n'
FAST_ENV = {"MADOGUCHI_WEBTICKET_POW_BITS": "6", "MADOGUCHI_WEBTICKET_IP_BURST": "1000",
            "MADOGUCHI_WEBTICKET_CONTACT_BURST": "1000"}


def web_toml(site: str) -> str:
    """The sync tests' site with web tickets for B (8 a day, check-in required)."""
    return site_toml(site).replace("handling_minutes = 3\n", "handling_minutes = 3\n" + WEB, 1)


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)
    return value


@dataclass
class Rig:
    hub: Hub
    edge: Edge
    edge_url: str
    edge_runner: web.AppRunner
    site: str
    clock: ManualClock
    last_probe: Any = None

    @property
    def app(self) -> web.Application:
        return self.hub.runner.app

    async def online(self, want: bool = True) -> None:
        async def probe() -> bool:
            async with self.hub.store.read() as tx:
                row = await tx.site(self.site)
            assert self.hub.ingest is not None
            config = await site_config(self.hub.ingest, self.site)
            self.last_probe = (row and row["online"], config is not None)
            return bool(row and bool(row["online"]) == want and config)
        try:
            await until(probe, f"site {self.site} online={want} at the hub")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: (online, fold) = {self.last_probe}") from None

    def body(self, **over: Any) -> dict[str, Any]:
        """A valid request body with a solved challenge (``over`` replaces fields)."""
        ch = self.app[WEBTICKETS].pow.issue()
        body = {"site": self.site, "service": "B", "lang": "ja", "challenge": ch["challenge"],
                "nonce": solve(ch["challenge"], ch["difficulty"])}
        body.update(over)
        return {k: v for k, v in body.items() if v is not None}

    def wrong_nonce_body(self) -> dict[str, Any]:
        """A body whose nonce provably fails its challenge (a fixed wrong nonce solves a 6-bit
        puzzle one time in 64: the test that used one was flaky)."""
        ch = self.app[WEBTICKETS].pow.issue()
        n = 0
        while leading_zero_bits(hashlib.sha256(f"{ch['challenge']}:x{n}".encode()).digest()) \
                >= ch["difficulty"]:
            n += 1
        return {"site": self.site, "service": "B", "lang": "ja", "challenge": ch["challenge"],
                "nonce": f"x{n}"}

    async def rows(self) -> list[dict[str, Any]]:
        async with self.hub.store.read() as tx:
            return [dict(r._mapping) for r in await tx.conn.execute(web_tickets.select())]

    async def synced(self) -> None:
        target = self.edge.writer.state.seq

        async def probe() -> bool:
            return await self.hub.store.contiguous_seq(self.site) >= target
        await until(probe, f"hub has seq {target}")


@asynccontextmanager
async def rig(broker_url: str, tmp: Path, env: dict[str, str] | None = None,
              monkeypatch: Any = None) -> AsyncIterator[Rig]:
    for k, v in {**FAST_ENV, **(env or {})}.items():
        monkeypatch.setenv(k, v)
    site, prefix = f"wt-{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex}"
    settings = HubSettings(keys={"k1": bytes(range(32))}, key_id="k1", trust_proxy=True)
    hub = await start_hub(f"sqlite:///{tmp}/hub.db", f"{broker_url}?session_expiry=30", prefix,
                          port=0, settings=settings)
    toml = web_toml(site)
    await hub.set_config(site, toml, "test")
    # the edge's clock is today (the hub treats rows of past days as done), 10:00 site time
    clock = ManualClock(datetime.now(TZ).replace(hour=10, minute=0, second=0, microsecond=0))
    edge = build_edge(parse_site_config(toml), tmp / "edge.db", clock, durable=False,
                      sync=SyncOptions(broker_url, prefix=prefix))
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    r = Rig(hub, edge, f"http://127.0.0.1:{port}", runner, site, clock)
    try:
        await r.online()
        yield r
    finally:
        await runner.cleanup()
        await hub.stop()
