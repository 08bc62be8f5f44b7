"""``madoguchi bench sync``: edge event -> hub API latency, backlog replay, hub ingest rate.

Set-up (``sync_rig``), all on 127.0.0.1: a private mosquitto started for the run
(``set_tcp_nodelay true``, no persistence, unlimited queue: the shared broker's settings are not
ours to rely on), the hub in a process of its own on PostgreSQL in a schema made for the run and
dropped afterwards, every site's configuration stored in the hub first so that it folds queues
as it would in production. The simulated sites (this process) and the hub run on separate halves
of the CPUs (``cpus``): in production they are separate machines.

* latency: 20 simulated sites, each a real ``Writer`` (SQLite file, ``durable=False``: twenty
  sites' fsyncs on this one disk would measure the disk, and ``bench edge`` measures the durable
  commit) with a real ``SyncClient``, in this process, each executing ~50 commands/s (issue,
  call, finish: one event each) open-loop. Latency = the moment a ``GET /api/sites`` response
  (polled every 50 ms) first shows the event's seq as stored, minus the event's own ``at``: an
  upper bound, by up to one poll interval plus the request. Two points on the way split it:
  ``event_to_broker`` (a subscriber of this process saw the batch leave the broker: edge commit
  and relay, including its wait for the hub's ack window) and ``event_to_hub_received`` (the
  hub's ``received_at``: its transaction began; so including the hub's queue).
* backlog: one site's 20,000 events written while offline, then a real ``SyncClient`` starts;
  the time until the hub's ack covers the last one and the outbox is empty.
* ingest: 20 sites' logs (a real writer's events, re-identified per site) published by one light
  publisher paced like the edge (its window of 200-event batches ahead of each site's ack); the
  rate at which the hub's acks advance, overall and over the slowest 5 s.
* ward (last): every site of ``sites/ward/`` (``--ward FOLDER``), each with its own config
  (stored in the hub only now, so that the runs above see the hub as before), all producing
  events at once at a rush rate with a margin (``bench.ward``); the same latency
  measure as the first run, its figures named ``ward18_*`` (``ward18_sites``: how many).

Figures include everything else running on the machine: ``load_average_1m`` says how busy it was.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from edge.bench.judge import judge
from edge.bench.load import BenchError, kiosk_plan
from edge.bench.sync_rig import Infra, Publisher, Tap, min_window_rate
from edge.bench.ward import WARD_SITE_RATE, default_folder, step_plan, ward_tomls
from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import SystemClock
from edge.domain.model import SiteConfig
from edge.protocol import dumps, uuid7
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, SyncSettings

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGETS: dict[str, float] = {"event_to_hub_api_p99_ms": 500.0, "backlog_20k_acked_s": 30.0,
                             "hub_ingest_events_per_s": 2000.0,
                             "ward18_event_to_hub_api_p99_ms": 500.0}
_AT_LEAST = frozenset({"hub_ingest_events_per_s"})
SITES = 20
SITE_RATE = 50.0  # events per second per site
BATCH = 200  # events per batch, as the edge relay
POLL_S = 0.05  # between two polls of the hub API (each also costs the hub: it serves the API)


@dataclass(frozen=True)
class Plan:
    latency_s: float
    backlog: int
    ingest_per_site: int

    @classmethod
    def of(cls, quick: bool) -> Plan:
        return cls(5.0, 5_000, 500) if quick else cls(30.0, 20_000, 6_000)


def _pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * q / 100) - 1))]


def _site_toml(template: str, site: str) -> str:
    """The template site's TOML with another ``[site] id``, open every day: the benches run on
    the wall clock and must not stop on a holiday (the calendar has its own tests)."""
    own = re.escape(parse_site_config(template).site)
    text = re.sub(rf'^id\s*=\s*"{own}"', f'id = "{site}"', template, count=1, flags=re.M)
    if not re.search(r"(?m)^\[calendar\]", text):
        text += "\n[calendar]\nnational_holidays = false\nyear_end = []\n"
    return text


# --- (a) edge event -> visible in the hub's API --------------------------------------------------

@dataclass
class SimSite:
    site: str
    writer: Writer
    sync: SyncClient
    counters: list[tuple[str, str]]  # (counter, service it serves first)
    events: list[tuple[int, float]] = field(default_factory=list)  # (seq, at as epoch s)
    seen: int = 0  # index into events of the first one not yet visible

    async def step(self, i: int) -> None:
        cid, svc = self.counters[(i // 3) % len(self.counters)]
        cmd: c.Command = (c.Issue(svc), c.CallNext(cid), c.Finish(cid))[i % 3]
        out = await self.writer.execute(cmd)
        self.events += [(e.seq, datetime.fromisoformat(e.at).timestamp()) for e in out.events]


def _first_kiosk_counters(cfg: SiteConfig) -> list[tuple[str, str]]:
    """The sample site's counters that serve a kiosk service first (the 20-site run)."""
    _services, counters = kiosk_plan(cfg)
    return list(counters.items())


async def _sim_sites(infra: Infra, workdir: Path, tomls: dict[str, str],
                     plan: Callable[[SiteConfig], list[tuple[str, str]]]) -> list[SimSite]:
    """A writer and a sync client per site; ``plan``: the (counter, service) pairs it steps."""
    out = []
    for site, toml in tomls.items():
        cfg = parse_site_config(toml)
        counters = plan(cfg)
        writer = Writer(EventStore(workdir / f"{site}.db", site, durable=False), cfg,
                        SystemClock(cfg.timezone))
        sync = SyncClient(writer, cfg, infra.mqtt, prefix=infra.prefix,
                          client_id=f"bench-{site}", settings=SyncSettings(session_expiry_s=60))
        await sync.start()
        for cid, _svc in counters:
            await writer.execute(c.OpenCounter(cid))
        out.append(SimSite(site, writer, sync, counters))
    return out


async def _caught_up(visible: Callable[[], Awaitable[dict[str, int]]],
                     sims: list[SimSite]) -> None:
    """Warm-up: every site connected, its config received, its first events shown."""
    deadline = time.monotonic() + 30
    while True:
        shown = await visible()
        if all(s.writer.store.last_seq() <= shown.get(s.site, 0) for s in sims):
            return
        if time.monotonic() > deadline:
            raise BenchError("the simulated sites did not reach the hub")
        await asyncio.sleep(0.1)


async def _staff_session(infra: Infra) -> dict[str, str]:
    """A signed-in staff session (``/api/sites`` needs one since issue 12): a throwaway
    ward-staff account in the bench's own database."""
    import secrets

    from hub.auth import service
    from hub.auth.guard import COOKIE
    from hub.settings import HubSettings
    from hub.store import HubStore

    store = await HubStore.open(infra.pg_url, schema=infra.schema, upgrade=False)
    try:
        login, password = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        await service.create_staff(store, login, password, grants=[("*", "ward_staff")])
        result = await service.login(store, HubSettings.from_env(), login, password,
                                     "127.0.0.1")
    finally:
        await store.close()
    assert result.sid is not None
    return {COOKIE: result.sid}


async def _received_latencies(infra: Infra, sims: list[SimSite]) -> list[float]:
    """``received_at - at`` of the measured events: the part before the hub's transaction
    (edge commit, relay, broker, the hub's queue), from the hub's own rows."""
    from sqlalchemy import select

    from hub.store import HubStore
    from hub.store.schema import events

    store = await HubStore.open(infra.pg_url, schema=infra.schema, upgrade=False)
    out: list[float] = []
    try:
        async with store.read() as tx:
            for s in sims:
                at = dict(s.events)
                rows = await tx.conn.execute(
                    select(events.c.seq, events.c.received_at).where(
                        events.c.site == s.site, events.c.seq >= min(at, default=0)))
                out += [r.received_at.timestamp() - at[r.seq] for r in rows if r.seq in at]
    finally:
        await store.close()
    return sorted(out)


async def latency_figures(infra: Infra, workdir: Path, template: str,
                          sites: list[str], seconds: float) -> dict[str, Any]:
    """The 20-site run: copies of the sample site at ``SITE_RATE`` each."""
    tomls = {site: _site_toml(template, site) for site in sites}
    raw = await _latency(infra, workdir, tomls, _first_kiosk_counters, seconds, SITE_RATE)
    return {"latency_sites": raw["sites"], "latency_events": raw["events"],
            "latency_offered_events_per_s": raw["offered_events_per_s"],
            **{k: v for k, v in raw.items() if k.endswith("_ms")}}


async def ward_figures(infra: Infra, workdir: Path, tomls: dict[str, str],
                       seconds: float) -> dict[str, Any]:
    """The ward run (``bench.ward``): every ward site with its own config, all at once at
    ``WARD_SITE_RATE``; its figures named ``ward18_*``."""
    # stored only now, so that the runs before see the hub as they did before this run existed;
    # the hub folds each site with its stored config from its first event on (it publishes the
    # same version back within its 10 s config poll, which the sites then ignore)
    await infra.store_configs(tomls)
    raw = await _latency(infra, workdir, tomls, step_plan, seconds, WARD_SITE_RATE)
    keep = ("event_to_hub_api_p50_ms", "event_to_hub_api_p99_ms", "event_to_hub_api_max_ms",
            "event_to_broker_p99_ms", "event_to_hub_received_p99_ms", "hub_api_poll_mean_ms")
    return {"ward18_sites": raw["sites"], "ward18_sites_producing": raw["producing"],
            "ward18_site_rate_events_per_s": WARD_SITE_RATE, "ward18_events": raw["events"],
            "ward18_offered_events_per_s": raw["offered_events_per_s"],
            **{f"ward18_{k}": raw[k] for k in keep}}


async def _latency(infra: Infra, workdir: Path, tomls: dict[str, str],
                   plan: Callable[[SiteConfig], list[tuple[str, str]]], seconds: float,
                   rate: float) -> dict[str, Any]:
    """Every site of ``tomls`` producing ``rate`` events/s at once; event -> hub API latency
    (see the module doc)."""
    sims = await _sim_sites(infra, workdir, tomls, plan)
    tap = await asyncio.to_thread(Tap, infra)
    latencies: list[float] = []
    polls: list[float] = []
    running = True

    async def drive(sim: SimSite) -> None:
        start, i = time.monotonic(), 0
        while running and sim.counters:  # a site with no kiosk service makes no events
            await sim.step(i)
            i += 1
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                         cookies=await _staff_session(infra)) as http:
            async def visible() -> dict[str, int]:
                t0 = time.monotonic()
                async with http.get(f"{infra.hub}/api/sites") as r:
                    body = await r.json()
                polls.append(time.monotonic() - t0)
                return {s["site"]: s["last_seq"] for s in body["sites"]}

            await _caught_up(visible, sims)
            for s in sims:
                s.events.clear()
            polls.clear()
            drivers = [asyncio.create_task(drive(s)) for s in sims]
            t_start = time.monotonic()
            while time.monotonic() < t_start + seconds + 30:
                if running and time.monotonic() - t_start >= seconds:
                    running = False
                    await asyncio.gather(*drivers)
                shown = await visible()
                now = time.time()
                for s in sims:
                    top = shown.get(s.site, 0)
                    while s.seen < len(s.events) and s.events[s.seen][0] <= top:
                        latencies.append(now - s.events[s.seen][1])
                        s.seen += 1
                if not running and all(s.seen == len(s.events) for s in sims):
                    break
                await asyncio.sleep(POLL_S)
    finally:
        running = False
        tap.close()
        for s in sims:
            await s.sync.stop()
            s.writer.close()
    total = sum(len(s.events) for s in sims)
    at_broker = sorted(tap.first[(s.site, seq)] - at for s in sims for seq, at in s.events
                       if (s.site, seq) in tap.first)
    if len(latencies) < total:
        raise BenchError(f"only {len(latencies)} of {total} events became visible at the hub")
    latencies.sort()
    received = await _received_latencies(infra, sims)
    return {"sites": len(sims), "producing": sum(1 for s in sims if s.counters),
            "events": total, "offered_events_per_s": round(total / seconds, 1),
            "event_to_hub_api_p50_ms": round(_pct(latencies, 50) * 1000, 1),
            "event_to_hub_api_p99_ms": round(_pct(latencies, 99) * 1000, 1),
            "event_to_hub_api_max_ms": round(latencies[-1] * 1000, 1),
            "event_to_broker_p50_ms": round(_pct(at_broker, 50) * 1000, 1),
            "event_to_broker_p99_ms": round(_pct(at_broker, 99) * 1000, 1),
            "event_to_hub_received_p50_ms": round(_pct(received, 50) * 1000, 1),
            "event_to_hub_received_p99_ms": round(_pct(received, 99) * 1000, 1),
            "hub_api_poll_mean_ms": round(sum(polls) / max(1, len(polls)) * 1000, 1)}


# --- (b) a backlog replayed ----------------------------------------------------------------------

def _offline_log(writer: Writer, n: int, counters: list[tuple[str, str]]) -> None:
    """``n`` events as a day offline makes them: counters opening and closing, tickets issued,
    called and finished."""
    cid, svc = counters[0]
    i = 0
    while writer.store.last_seq() < n:
        step = i % 8
        if step < 4:
            writer.execute_sync(c.OpenCounter(cid) if step % 2 == 0 else c.CloseCounter(cid))
        else:
            writer.execute_sync((c.OpenCounter(cid), c.Issue(svc), c.CallNext(cid),
                                 c.Finish(cid))[step - 4])
        i += 1


async def backlog_figures(infra: Infra, workdir: Path, template: str, site: str,
                          n: int) -> dict[str, Any]:
    cfg = parse_site_config(_site_toml(template, site))
    writer = Writer(EventStore(workdir / f"{site}.db", site, durable=False), cfg,
                    SystemClock(cfg.timezone))
    try:
        _services, counters = kiosk_plan(cfg)
        await asyncio.to_thread(_offline_log, writer, n, list(counters.items()))
        last = writer.store.last_seq()
        sync = SyncClient(writer, cfg, infra.mqtt, prefix=infra.prefix, client_id=f"bench-{site}",
                          settings=SyncSettings(session_expiry_s=60))
        t0 = time.monotonic()
        await sync.start()
        try:
            while sync.floor < last or writer.store.outbox(1):
                if time.monotonic() - t0 > 300:
                    raise BenchError(f"backlog not acked within 300 s ({sync.floor}/{last})")
                await asyncio.sleep(0.01)
            took = time.monotonic() - t0
        finally:
            await sync.stop()
    finally:
        writer.close()
    out: dict[str, Any] = {"backlog_events": last, "backlog_acked_s": round(took, 2),
                           "backlog_events_per_s": round(last / took, 1)}
    if last >= 20_000:
        out["backlog_20k_acked_s"] = round(took * 20_000 / last, 2)
    return out


# --- (c) hub ingest rate -------------------------------------------------------------------------

def _template_log(config: SiteConfig, workdir: Path, n: int) -> list[dict[str, Any]]:
    writer = Writer(EventStore(workdir / "template.db", config.site, durable=False), config,
                    SystemClock(config.timezone))
    try:
        _services, counters = kiosk_plan(config)
        _offline_log(writer, n, list(counters.items()))
        return [e.to_dict() for e in writer.store.events()]
    finally:
        writer.close()


async def ingest_figures(infra: Infra, template: list[dict[str, Any]],
                         sites: list[str]) -> dict[str, Any]:
    logs: dict[str, list[bytes]] = {}
    lasts: dict[str, list[int]] = {}
    for site in sites:
        events = [{**e, "site": site, "id": uuid7()} for e in template]
        chunks = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
        logs[site] = [dumps({"v": 1, "site": site, "replay": False, "events": ch})
                      for ch in chunks]
        lasts[site] = [ch[-1]["seq"] for ch in chunks]
    total = sum(len(template) for _ in sites)
    pub = await asyncio.to_thread(Publisher, infra, logs, lasts)
    try:
        await asyncio.sleep(0.5)  # subscribed to the acks
        t0 = pub.start()
        if not await asyncio.to_thread(pub.done.wait, 300):
            raise BenchError(f"ingest: only {pub.total_acked} of {total} events acked in 300 s")
        took = pub.samples[-1][0] - t0
    finally:
        pub.close()
    out: dict[str, Any] = {"hub_ingest_sites": len(sites), "hub_ingest_events": total,
                           "hub_ingest_s": round(took, 2),
                           "hub_ingest_events_per_s": round(total / took, 1)}
    worst = min_window_rate(pub.samples, 5.0)
    if worst is not None:
        out["hub_ingest_min_5s_events_per_s"] = round(worst, 1)
    return out


# --- the whole bench -----------------------------------------------------------------------------

async def _run(quick: bool, toml: str, pg_url: str, workdir: Path,
               ward: dict[str, str]) -> dict[str, Any]:
    """``toml``: the sample site; every simulated site of the first three runs is a copy of it
    with its own id. ``ward``: the ward's sites (site id -> TOML) for the last run."""
    plan = Plan.of(quick)
    config = parse_site_config(toml)
    run = uuid.uuid4().hex[:6]
    lat_sites = [f"bench-{run}-l{i:02d}" for i in range(SITES)]
    backlog_site = f"bench-{run}-backlog"
    ing_sites = [f"bench-{run}-i{i:02d}" for i in range(SITES)]
    infra = Infra(workdir, pg_url)
    result: dict[str, Any] = {
        "bench": "sync", "quick": quick,
        "broker": "private mosquitto on 127.0.0.1 (set_tcp_nodelay true, no persistence)",
        "hub_db": "postgresql", "hub_process": "separate (python -m edge.bench.sync_rig hub)",
        "site_rate_events_per_s": SITE_RATE}
    try:
        template = await asyncio.to_thread(_template_log, config, workdir, plan.ingest_per_site)
        infra.start_broker()
        sites = [*lat_sites, backlog_site, *ing_sites]
        await infra.store_configs({s: _site_toml(toml, s) for s in sites})
        await infra.start_hub()
        result["cpus"] = infra.cpus
        result.update(await latency_figures(infra, workdir, toml, lat_sites, plan.latency_s))
        result.update(await backlog_figures(infra, workdir, toml, backlog_site, plan.backlog))
        result.update(await ingest_figures(infra, template, ing_sites))
        # last, so that the figures above are measured as before the ward run existed
        result.update(await ward_figures(infra, workdir, ward, plan.latency_s))
    finally:
        await infra.close()
    return result


def measure(quick: bool, config_path: Path, pg_url: str | None = None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-sync-"))
    try:
        toml = config_path.read_text(encoding="utf-8")
        ward = ward_tomls(default_folder())
        result = asyncio.run(_run(quick, toml, pg_url or DEFAULT_PG, workdir, ward))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    judge(result, TARGETS, _AT_LEAST)
    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": platform.machine(), "load_average_1m": round(os.getloadavg()[0], 2)})
    return result


