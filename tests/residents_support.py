"""A small ward for the resident page tests: a real hub (SQLite, its own topic prefix on the
shared mosquitto) and the three sample sites as real edges (writer + sync client) syncing to it.

Sample sites open around the clock here (their ``hours`` replaced) so the tests do not depend
on the weekday or the hour they run at; edges get no devices (queues only).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from sync_support import clear_retained

from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import SystemClock
from edge.protocol import hub_status_topic, site_topic
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient
from edge.sync.relay import SyncSettings
from hub.app import Hub, start_hub
from hub.settings import HubSettings

SITES_DIR = Path(__file__).resolve().parent.parent / "sites"
SITES = ("nerima-main", "hikarigaoka", "oizumi")
ALL_WEEK = "hours = { " + ", ".join(
    f'{d} = ["00:00", "24:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + " }"
FAST = SyncSettings(resend_s=5.0, reconnect_min_s=1, reconnect_max_s=2,
                    status_min_interval_s=0.2, session_expiry_s=60)
WAIT_S = 20.0


def site_text(site: str) -> str:
    text = (SITES_DIR / f"{site}.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^hours = .*$", ALL_WEEK, text)
    text = re.sub(r"(?ms)^\[\[devices\]\].*?(?=^\[|\Z)", "", text)  # queues only
    text = re.sub(r"(?ms)^\[voice\].*\Z", "", text)
    # the wall clock: open on holidays and at the year end too (the calendar has its own tests)
    return text + "\n[calendar]\nnational_holidays = false\nyear_end = []\n"


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = WAIT_S,
                every: float = 0.05) -> Any:
    """Await ``probe()`` until truthy (returned) or fail after ``timeout`` (a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
        await asyncio.sleep(every)


@dataclass
class Ward:
    hub: Hub
    writers: dict[str, Writer]
    syncs: list[SyncClient]
    prefix: str
    broker_url: str
    http: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)  # "site:number" -> token

    @property
    def url(self) -> str:
        return self.hub.url

    async def run(self, site: str, cmd: c.Command) -> dict[str, Any]:
        out = await self.writers[site].execute(cmd)
        assert out.refused is None, out.refused
        return out.ticket or {}

    async def issue(self, site: str, service: str, n: int = 1) -> list[dict[str, Any]]:
        tickets = [await self.run(site, c.Issue(service)) for _ in range(n)]
        for t in tickets:
            tid = t["id"]
            self.tokens[f"{site}:{t['number']}"] = self.writers[site].read(
                lambda s, tid=tid: s.tickets[tid].token)
        return tickets

    def token(self, site: str, number: int) -> str:
        return self.tokens[f"{site}:{number}"]

    def hub_seq(self, site: str) -> int:
        assert self.hub.ingest is not None
        fold = self.hub.ingest.folds.get(site)
        return fold.seq if fold is not None and fold.state is not None else -1

    async def synced(self, *sites: str) -> None:
        """Until the hub has folded everything these edges wrote."""
        for site in sites or tuple(self.writers):
            edge_seq = self.writers[site].read(lambda s: s.seq)

            async def caught_up(site: str = site, seq: int = edge_seq) -> bool:
                return self.hub_seq(site) >= seq
            await until(caught_up, f"hub folds {site} up to seq {edge_seq}")

    async def settled(self) -> dict[str, Any]:
        """Until ``/api/status`` shows every edge's waiting counts and open counters."""
        from edge.domain.views import service_rows

        want = {(site, r["code"]): (r["waiting"], r["second_wait"], r["open_counters"])
                for site, wr in self.writers.items()
                for r in wr.read(lambda s: service_rows(s, s.last_at))}

        async def probe() -> dict[str, Any] | None:
            st = await self.status()
            got = {(s["site"], v["code"]): (v["waiting"], v["second_wait"], v["open_counters"])
                   for s in st["sites"] for v in s["services"]}
            return st if got == want else None
        result: dict[str, Any] = await until(probe, "the status snapshot matches the edges")
        return result

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        async with self.http.get(self.url + path, **kw) as r:
            body = await (r.json() if r.content_type == "application/json" else r.text())
            return r.status, r.headers, body

    async def status(self) -> dict[str, Any]:
        status, _h, body = await self.get("/api/status")
        assert status == 200, body
        result: dict[str, Any] = body
        return result


@contextlib.asynccontextmanager
async def ward(broker_url: str, tmp: Path, sites: tuple[str, ...] = SITES,
               open_counters: dict[str, tuple[str, ...]] | None = None) -> AsyncIterator[Ward]:
    """The hub and ``sites`` synced and folded, with ``open_counters`` opened per site."""
    prefix = f"test/{uuid.uuid4().hex}"
    hub = await start_hub(f"sqlite:///{tmp}/hub.db", f"{broker_url}?session_expiry=30", prefix,
                          port=0, settings=replace(HubSettings.from_env({}), trust_proxy=True,
                                                   main_site="hikarigaoka"))
    writers: dict[str, Writer] = {}
    syncs: list[SyncClient] = []
    try:
        assert hub.ingest is not None
        assert await hub.ingest.wait_connected(WAIT_S), "hub did not connect to the broker"
        for site in sites:
            text = site_text(site)
            await hub.set_config(site, text, "test")
            config = parse_site_config(text, site)
            writer = Writer(EventStore(tmp / f"{site}.db", site, durable=False), config,
                            SystemClock(config.timezone))
            writers[site] = writer
            sync = SyncClient(writer, config, broker_url, prefix=prefix, settings=FAST,
                              client_id=f"edge-{site}-{uuid.uuid4().hex[:6]}")
            await sync.start()
            syncs.append(sync)
        async with aiohttp.ClientSession() as http:
            w = Ward(hub, writers, syncs, prefix, broker_url, http)
            for site, counters in (open_counters or {}).items():
                for cid in counters:
                    await w.run(site, c.OpenCounter(cid))
            await w.synced()
            await w.settled()
            yield w
    finally:
        for s in syncs:
            await s.stop()
        for wr in writers.values():
            wr.close()
        await hub.stop()
        clear_retained(broker_url, [hub_status_topic(prefix)] + [
            site_topic(prefix, s, k) for s in sites for k in ("ack", "status", "config")])
