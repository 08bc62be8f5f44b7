"""The rig of ``bench hub``: ``sync_rig.Infra`` (private mosquitto, the hub in its own process on
a PostgreSQL schema of its own) with the hub's resident settings for a benchmark, real edges
(``Writer`` + ``SyncClient``) that answer the hub's web-ticket commands, and the load tools
(``wrk``, or the Python ``hub_load`` processes).

Why the settings: the per-address limits exist against floods, and every bench request comes
from 127.0.0.1, so they are raised; the web-ticket proof of work is made cheap so that the round
trip measures the hub and the site, not this process hashing (its cost at the default
difficulty is reported apart). Web hours are widened and opening hours dropped so the figures
do not depend on the time of day the bench runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from edge.bench.load import BenchError, kiosk_plan
from edge.bench.sync import _site_toml
from edge.bench.sync_rig import Infra, _root
from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import SystemClock
from edge.domain.model import SiteConfig
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, SyncSettings

BENCH_POW_BITS = 4
START_S = 120.0
WIDE = 1_000_000  # rate limits "off": requests per minute and burst
WEB = ('web = { from = "00:00", to = "24:00", daily_cap = 100000, checkin_required = true, '
       'notify_ahead = 3 }')


def bench_toml(template: str, site: str) -> str:
    """``template`` as site ``site``: web tickets all day with no cap, no opening hours, no
    counter PINs."""
    text = _site_toml(template, site)
    text = re.sub(r"^web\s*=\s*\{.*\}\s*$", WEB, text, flags=re.M)
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("hours =", "pin ="))) + "\n"


class HubInfra(Infra):
    """``Infra`` whose hub process gets the bench's web-ticket settings (environment)."""

    env: ClassVar[dict[str, str]] = {
        "MADOGUCHI_WEBTICKET_POW_BITS": str(BENCH_POW_BITS),
        "MADOGUCHI_WEBTICKET_IP_RATE_PER_MIN": str(WIDE),
        "MADOGUCHI_WEBTICKET_IP_BURST": str(WIDE),
        "MADOGUCHI_WEBTICKET_CHALLENGE_RATE_PER_MIN": str(WIDE),
        "MADOGUCHI_WEBTICKET_CHALLENGE_BURST": str(WIDE),
        "MADOGUCHI_WEBTICKET_COMMAND_TTL_S": "10"}
    hub_pid = 0

    def spawn_hub(self) -> None:
        with (self.workdir / "hub.log").open("wb") as log:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "edge.bench.sync_rig", "hub", self.pg_url, self.schema,
                 self.mqtt, self.prefix, str(self.hub_port)], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, "PYTHONPATH": _root()}))
        self.hub_pid = self.procs[-1].pid
        self._split_cpus(self.hub_pid)

    async def start_hub(self) -> None:
        """As ``Infra.start_hub`` with more patience: on a machine shared with test runs the
        hub's imports and migrations alone have taken over 15 s."""
        self.spawn_hub()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            deadline = time.monotonic() + START_S
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{self.hub}/api/health") as r:
                        if r.status == 200 and (await r.json())["ingest"]["connected"]:
                            return
                await asyncio.sleep(0.1)
        tail = (self.workdir / "hub.log").read_text(errors="replace")[-2000:]
        raise BenchError(f"the hub did not start within {START_S:g} s:\n{tail}")

    async def add_staff(self, logins: list[str], password: str) -> None:
        """Staff accounts in the hub's schema, made as the product makes them
        (``hub.auth.service.create_staff``: argon2id at the product's cost)."""
        from hub.auth import service
        from hub.store import HubStore

        store = await HubStore.open(self.pg_url, schema=self.schema, upgrade=False)
        try:
            for login in logins:
                await service.create_staff(store, login, password,
                                           grants=[("*", "stats_viewer")])
        finally:
            await store.close()

    def widen_hub(self) -> list[int]:
        """Give the hub process every CPU of this machine (each of its threads: the affinity
        call sets one thread only); returns them. For phases with no simulated sites running,
        where the hub should have the machine as it would in production."""
        if not hasattr(os, "sched_setaffinity") or self._own_cpus is None or not self.hub_pid:
            return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cpus = set(self._own_cpus)
        for task in Path(f"/proc/{self.hub_pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                os.sched_setaffinity(int(task.name), cpus)
        return sorted(cpus)


# --- real edges ----------------------------------------------------------------------------------

@dataclass
class Edge:
    site: str
    config: SiteConfig
    writer: Writer
    sync: SyncClient
    counters: list[tuple[str, str]]  # (counter, the service it serves first)
    steps: int = 0
    events: list[tuple[int, float]] = field(default_factory=list)  # (seq, at as epoch s)

    async def run(self, cmd: c.Command) -> None:
        out = await self.writer.execute(cmd)
        self.events += [(e.seq, datetime.fromisoformat(e.at).timestamp()) for e in out.events]

    async def step(self) -> None:
        """One step of an ordinary day: issue, call, finish in turn."""
        i = self.steps
        self.steps += 1
        cid, svc = self.counters[(i // 3) % len(self.counters)]
        await self.run((c.Issue(svc), c.CallNext(cid), c.Finish(cid))[i % 3])

    def waiting(self, service: str) -> int:
        return len(self.writer.state.waiting.get(service, ()))


async def start_edges(infra: Infra, workdir: Path, tomls: dict[str, str]) -> list[Edge]:
    out = []
    for site, toml in tomls.items():
        cfg = parse_site_config(toml)
        _services, counters = kiosk_plan(cfg)
        writer = Writer(EventStore(workdir / f"{site}.db", site, durable=False), cfg,
                        SystemClock(cfg.timezone))
        sync = SyncClient(writer, cfg, infra.mqtt, prefix=infra.prefix,
                          client_id=f"bench-{site}", settings=SyncSettings(session_expiry_s=60))
        await sync.start()
        edge = Edge(site, cfg, writer, sync, list(counters.items()))
        for cid in counters:
            await edge.run(c.OpenCounter(cid))
        out.append(edge)
    return out


async def stop_edges(edges: list[Edge]) -> None:
    for e in edges:
        await e.sync.stop()
        e.writer.close()


class Traffic:
    """Every site steps at ``rate`` events/s until ``stop`` (the offices keep moving)."""

    def __init__(self, edges: list[Edge], rate: float) -> None:
        self.edges, self.rate = edges, rate
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._drive(e)) for e in self.edges]

    async def _drive(self, edge: Edge) -> None:
        start, i = time.monotonic(), 0
        while True:
            await edge.step()
            i += 1
            await asyncio.sleep(max(0.0, start + i / self.rate - time.monotonic()))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def received_at(infra: Infra, keys: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """The hub's ``received_at`` (epoch s) of the given events, from its own rows."""
    from sqlalchemy import select

    from hub.store import HubStore
    from hub.store.schema import events

    store = await HubStore.open(infra.pg_url, schema=infra.schema, upgrade=False)
    out: dict[tuple[str, int], float] = {}
    try:
        async with store.read() as tx:
            for site, seq in keys:
                row = (await tx.conn.execute(select(events.c.received_at).where(
                    events.c.site == site, events.c.seq == seq))).first()
                if row is not None:
                    out[(site, seq)] = row.received_at.timestamp()
    finally:
        await store.close()
    return out


# --- load tools ----------------------------------------------------------------------------------

def strict() -> bool:
    return os.environ.get("MADOGUCHI_STRICT", "") == "1"


def wrk_path() -> str | None:
    return shutil.which("wrk")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise BenchError(f"wrk printed a latency I cannot read: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, p50/p99 latency and non-2xx/3xx count from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise BenchError(f"wrk output not understood:\n{out[-1500:]}")
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, flags=re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return {"requests": float(total.group(1)), "requests_per_s": float(rps.group(1)),
            "p50_ms": _ms(pct["50"]), "p99_ms": _ms(pct["99"]),
            "non_2xx": float(bad.group(1)) if bad else 0.0,
            "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0}


async def run_wrk(url: str, threads: int, connections: int, seconds: float) -> dict[str, float]:
    exe = wrk_path()
    assert exe is not None
    proc = await asyncio.create_subprocess_exec(
        exe, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {out.decode(errors='replace')}")
    return parse_wrk(out.decode())


def _pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list (0 when empty)."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * q / 100) - 1))] \
        if ordered else 0.0


async def run_python_load(url: str, connections: int, seconds: float) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.bench.hub_load", "http", url, str(connections),
        str(seconds), stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": _root()})
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError("the Python load process failed")
    raw: dict[str, Any] = json.loads(out)
    lat = sorted(x * 1000 for x in raw["latencies_s"])
    ok = sum(n for code, n in raw["codes"].items() if 200 <= int(code) < 400)
    return {"requests": float(raw["requests"]),
            "requests_per_s": raw["requests"] / raw["seconds"],
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
            "non_2xx": float(raw["requests"] - ok), "socket_errors": float(raw["errors"])}


async def run_login_load(url: str, logins: list[str], password: str) -> dict[str, Any]:
    """The ``hub_load login`` process: every login posts the sign-in form at one moment."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.bench.hub_load", "login", url, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": _root()})
    job = json.dumps({"logins": logins, "password": password}).encode()
    out, _ = await asyncio.wait_for(proc.communicate(job), 120)
    if proc.returncode != 0:
        raise BenchError("the sign-in load process failed")
    raw: dict[str, Any] = json.loads(out)
    return raw


class SseLoad:
    """The ``hub_load sse`` process: ``start`` returns once every stream is open."""

    def __init__(self, url: str, n: int, out: Path) -> None:
        self.url, self.n, self.out = url, n, out
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float) -> tuple[int, int]:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge.bench.hub_load", "sse", self.url, str(self.n),
            str(self.out), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": _root()})
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"{self.n} live connections not open within {timeout:g} s") from None
        parts = line.decode().split()
        if len(parts) != 3 or parts[0] != "ready":
            raise BenchError(f"the SSE load process did not start: {line!r}")
        return int(parts[1]), int(parts[2])

    async def finish(self) -> dict[str, Any]:
        """Stop it; its frames per stream: ``{"failed": [...], "frames": [[[v, t], ...]]}``."""
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        if await asyncio.wait_for(self.proc.wait(), 120) != 0:
            raise BenchError("the SSE load process failed")
        data: dict[str, Any] = json.loads(self.out.read_text(encoding="utf-8"))
        return data

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
