"""``madoguchi bench hub``: what residents' phones get from the hub (issue 6).

Set-up (``hub_rig``), all on 127.0.0.1: a private mosquitto, the hub in a process of its own on
PostgreSQL (a schema made for the run and dropped afterwards), and simulated sites that are real
edges (``Writer`` + ``SyncClient`` in this process, copies of the sample sites) syncing to it, so
a web ticket is issued by a real edge's writer. The hub and this process run on separate halves
of the CPUs (``cpus``); load processes inherit this process's half: phones are other machines.

* status JSON: ``wrk`` (else a Python aiohttp process, ``status_json_load_tool`` says which)
  against ``GET /api/status`` while every site keeps moving (``site_rate_events_per_s``).
* live fan-out: a separate process holds ``live_connections_count`` streams of
  ``GET /api/status/stream``; the sites are quiet and the bench issues one ticket every
  ``live_event_spacing_s`` at one site after another. The snapshot version that first shows each
  ticket is learnt from this process's own stream (the site's waiting count); a connection's
  delay is when it got that version or a later one minus the hub's ``received_at`` of the event
  (the hub's clock when its ingest transaction began: same machine, same clock).
  ``live_update_from_edge_*`` counts from the edge's event time instead.
* web ticket round trip: challenge -> proof of work at ``webticket_pow_bits`` -> POST -> the
  hub asks the site over MQTT -> number in the response; sequential, then
  ``webticket_concurrency`` at once; every number is then looked up in its edge's queue. The
  per-address limits are raised (every request comes from 127.0.0.1). What the default
  difficulty costs a client in Python is ``pow_default_solve_*``.
* staff sign-in burst (``login_*``): ``login_count`` staff accounts (each its own login ID,
  argon2id at the product's cost, ``login_argon2``) post the sign-in form over HTTP at the same
  moment, from a load process, after each opened the sign-in page (its CSRF cookie). Measured
  last, with the sites idle and the hub given every CPU (``login_hub_cpus``): a hub has its
  machine to itself. ``login_p99_ms`` is the nearest-rank p99 of the 50 posts (the 50th: the
  slowest). Argon2id is memory-hard work that no scheduling removes: the burst can finish no
  sooner than ``login_argon2_floor_ms`` (logins x one verification / CPUs, one verification
  timed in this process as ``login_verify_ms``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from edge.bench.hub_rig import (
    BENCH_POW_BITS,
    Edge,
    HubInfra,
    SseLoad,
    Traffic,
    bench_toml,
    cpu_seconds,
    received_at,
    run_login_load,
    run_python_load,
    run_wrk,
    start_edges,
    stop_edges,
    strict,
    wrk_path,
)
from edge.bench.judge import judge
from edge.bench.load import BenchError
from edge.bench.sync import DEFAULT_PG
from edge.domain import commands as c
from hub.webticket.pow import solve
from hub.webticket.rules import Options

TARGETS: dict[str, float] = {"status_json_requests_per_s": 2000.0, "live_connections_count": 5000,
                             "live_update_p99_ms": 1000.0, "webticket_round_trip_p99_ms": 1000.0,
                             "login_p99_ms": 300.0}
_AT_LEAST = frozenset({"status_json_requests_per_s", "live_connections_count"})
SITE_RATE = 1.0  # events per second per site while the offices "keep moving"
SAMPLES = ("nerima-main.toml", "hikarigaoka.toml", "oizumi.toml")
LOGINS = 50  # staff signing in at one moment (issue 12), in the quick run too


@dataclass(frozen=True)
class Plan:
    sites: int
    wrk_s: float
    streams: int
    live_events: int
    spacing_s: float
    tickets: int  # sequential, and again concurrent
    concurrency: int
    pow_samples: int

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(3, 3.0, 200, 3, 0.5, 10, 4, 5)
        return cls(10, 10.0, 5000, 10, 1.0, 100, 8, 50)


def _pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * q / 100) - 1))]


def _stats(prefix: str, values: list[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {}
    return {f"{prefix}_p50_ms": round(_pct(v, 50) * 1000, 1),
            f"{prefix}_p99_ms": round(_pct(v, 99) * 1000, 1),
            f"{prefix}_max_ms": round(v[-1] * 1000, 1)}


async def _all_shown(http: aiohttp.ClientSession, hub: str, edges: list[Edge]) -> None:
    """Warm-up: every site online and in the status snapshot."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with http.get(f"{hub}/api/status") as r:
            body = await r.json() if r.status == 200 else {}
        shown = {s["site"] for s in body.get("sites", ()) if s.get("online")}
        if shown >= {e.site for e in edges}:
            return
        await asyncio.sleep(0.2)
    raise BenchError("the simulated sites did not all appear in /api/status")


# --- 1. status JSON throughput -------------------------------------------------------------------

async def status_figures(hub: str, edges: list[Edge], seconds: float) -> dict[str, Any]:
    url = f"{hub}/api/status"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        size = len(await r.read())
    traffic = Traffic(edges, SITE_RATE)
    traffic.start()
    try:
        await asyncio.sleep(1.0)
        if wrk_path() is not None:
            tool, got = "wrk", await run_wrk(url, 2, 64, seconds)
        elif strict():
            raise BenchError("wrk is not installed (apt-get install wrk) [MADOGUCHI_STRICT=1]")
        else:
            tool, got = "python-aiohttp", await run_python_load(url, 64, seconds)
    finally:
        await traffic.stop()
    return {"status_json_load_tool": tool, "status_json_connections": 64,
            "status_json_duration_s": seconds, "status_json_body_bytes": size,
            "site_rate_events_per_s": SITE_RATE,
            "status_json_requests_count": int(got["requests"]),
            "status_json_requests_per_s": round(got["requests_per_s"], 1),
            "status_json_p50_ms": round(got["p50_ms"], 2),
            "status_json_p99_ms": round(got["p99_ms"], 2),
            "status_json_non_2xx_count": int(got["non_2xx"]),
            "status_json_socket_errors_count": int(got["socket_errors"])}


# --- 2. live fan-out -----------------------------------------------------------------------------

class Observer:
    """This process's own stream: which snapshot version showed which waiting counts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.versions: list[tuple[int, dict[tuple[str, str], int]]] = []
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(self.url) as r:
            buf = b""
            async for chunk in r.content.iter_any():
                buf += chunk
                *frames, buf = buf.split(b"\n\n")
                for f in frames:
                    lines = dict(line.split(b": ", 1) for line in f.split(b"\n") if b": " in line)
                    if b"id" in lines and b"data" in lines:
                        snap = json.loads(lines[b"data"])
                        self.versions.append((int(lines[b"id"]), {
                            (s["site"], v["code"]): v["waiting"]
                            for s in snap["sites"] for v in s["services"]}))
                        self.ready.set()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 10)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def first_showing(self, site: str, service: str, waiting: int) -> int | None:
        return next((v for v, counts in self.versions
                     if counts.get((site, service), -1) >= waiting), None)


async def live_figures(infra: HubInfra, edges: list[Edge], plan: Plan,
                       workdir: Path) -> dict[str, Any]:
    url = f"{infra.hub}/api/status/stream"
    observer = Observer(url)
    load = SseLoad(url, plan.streams, workdir / "sse.json")
    marks: list[tuple[str, int, float, int]] = []  # site, seq, edge at, version showing it
    try:
        await observer.start()
        t0 = time.monotonic()
        connected, failed = await load.start(timeout=120)
        connect_s = time.monotonic() - t0
        await asyncio.sleep(1.0)
        assert load.proc is not None
        pids = {"hub": infra.hub_pid, "load": load.proc.pid}
        cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
        for k in range(plan.live_events):
            edge = edges[k % len(edges)]
            service = edge.counters[0][1]
            await edge.run(c.Issue(service))
            seq, at = edge.events[-1]
            want = edge.waiting(service)
            deadline = time.monotonic() + 10
            while (v := observer.first_showing(edge.site, service, want)) is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"event {edge.site}#{seq} never showed in the stream")
                await asyncio.sleep(0.01)
            marks.append((edge.site, seq, at, v))
            await asyncio.sleep(plan.spacing_s)
        await asyncio.sleep(2.0)  # stragglers
        cpu = {k: cpu_seconds(pid) - cpu0[k] for k, pid in pids.items()}
        data = await load.finish()
    finally:
        load.kill()
        await observer.stop()
    hub_at = await received_at(infra, [(s, q) for s, q, _a, _v in marks])
    if len(hub_at) < len(marks):
        raise BenchError("the hub did not store every measured event")
    from_hub: list[float] = []
    from_edge: list[float] = []
    complete = late = 0
    for frames, bad in zip(data["frames"], data["failed"], strict=True):
        if bad:
            continue
        got = 0
        for site, seq, at, v in marks:
            t = next((t for ver, t in frames if ver >= v), None)
            if t is None:
                continue
            got += 1
            from_hub.append(t - hub_at[(site, seq)])
            from_edge.append(t - at)
            late += t - hub_at[(site, seq)] > 1.0
        complete += got == len(marks)
    return {"live_connections_count": connected, "live_connections_failed_count": failed,
            "live_connect_all_s": round(connect_s, 2),
            "live_events_count": len(marks), "live_event_spacing_s": plan.spacing_s,
            "live_deliveries_count": len(from_hub),
            "live_connections_all_updates_count": complete,
            "live_updates_over_1s_count": late,
            "live_update_min_ms": round(min(from_hub, default=0.0) * 1000, 1),
            # CPU seconds per update (the whole phase / events): which side does the work
            "live_hub_cpu_per_update_s": round(cpu["hub"] / len(marks), 3),
            "live_load_cpu_per_update_s": round(cpu["load"] / len(marks), 3),
            **_stats("live_update", from_hub), **_stats("live_update_from_edge", from_edge),
            "live_clock": "hub received_at (ingest transaction start) -> frame read by the "
                          "load process; time.time() on one machine"}


# --- 3. web ticket round trip --------------------------------------------------------------------

async def _ticket(http: aiohttp.ClientSession, hub: str, site: str,
                  service: str) -> tuple[float, dict[str, Any] | None]:
    """One ticket as a phone takes it; (seconds, the 201 body or None)."""
    t0 = time.perf_counter()
    async with http.get(f"{hub}/api/web-tickets/challenge") as r:
        ch = await r.json()
    if r.status != 200:
        return time.perf_counter() - t0, None
    nonce = solve(ch["challenge"], int(ch["difficulty"]))
    async with http.post(f"{hub}/api/web-tickets", json={
            "site": site, "service": service, "lang": "ja", "challenge": ch["challenge"],
            "nonce": nonce}) as r:
        body = await r.json()
    return time.perf_counter() - t0, (body if r.status == 201 else None)


def _web_service(edge: Edge) -> str:
    return next(code for code, s in edge.config.services.items() if s.web is not None)


async def webticket_figures(hub: str, edges: list[Edge], plan: Plan) -> dict[str, Any]:
    traffic = Traffic(edges, SITE_RATE)
    traffic.start()
    issued: list[tuple[Edge, dict[str, Any]]] = []
    errors: list[str] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async def one(i: int) -> float:
                edge = edges[i % len(edges)]
                took, body = await _ticket(http, hub, edge.site, _web_service(edge))
                if body is None:
                    errors.append(edge.site)
                else:
                    issued.append((edge, body))
                return took

            sequential = [await one(i) for i in range(plan.tickets)]
            todo = iter(range(plan.tickets))
            concurrent: list[float] = []

            async def worker() -> None:
                for i in todo:
                    concurrent.append(await one(i))

            await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
    finally:
        await traffic.stop()
    found = sum(1 for edge, body in issued if any(
        t.token == body["token"] and t.number == body["number"] and t.channel == "web"
        for t in edge.writer.state.tickets.values()))
    return {"webticket_pow_bits": BENCH_POW_BITS, "webticket_count": 2 * plan.tickets,
            "webticket_failed_count": len(errors), "webticket_in_edge_queue_count": found,
            **_stats("webticket_round_trip", sequential),
            "webticket_concurrency": plan.concurrency,
            **_stats("webticket_concurrent_round_trip", concurrent)}


def pow_figures(samples: int) -> dict[str, Any]:
    """What the default difficulty costs a client solving it in Python (this process)."""
    bits = Options().pow_bits
    took = []
    for _ in range(samples):
        challenge = f"{bits}.{int(time.time())}.{secrets.token_urlsafe(12)}.x"
        t0 = time.perf_counter()
        solve(challenge, bits)
        took.append(time.perf_counter() - t0)
    took.sort()
    return {"pow_default_bits": bits, "pow_default_samples_count": samples,
            "pow_default_solve_p50_ms": round(_pct(took, 50) * 1000, 1),
            "pow_default_solve_mean_ms": round(sum(took) / samples * 1000, 1),
            "pow_default_solve_p99_ms": round(_pct(took, 99) * 1000, 1)}


# --- 4. staff sign-in burst ---------------------------------------------------------------------

def _verify_ms(samples: int = 20) -> float:
    """Median time of one argon2id verification at the product's cost, in this process."""
    from hub.auth import passwords

    encoded = passwords.hash_secret("bench-one-verification")
    took = []
    for _ in range(samples):
        t0 = time.perf_counter()
        passwords.check(encoded, "bench-one-verification")
        took.append(time.perf_counter() - t0)
    return sorted(took)[samples // 2] * 1000


async def login_figures(infra: HubInfra, n: int = LOGINS,
                        tag: str = "bench-staff") -> dict[str, Any]:
    """``n`` accounts (login IDs ``{tag}-00`` …) sign in at one moment; fails unless every one
    of them is answered 303 with a session."""
    from hub.auth import passwords

    password = secrets.token_urlsafe(18)  # this run's accounts only; never printed
    logins = [f"{tag}-{i:02d}" for i in range(n)]
    await infra.add_staff(logins, password)
    cpus = infra.widen_hub()
    await asyncio.sleep(1.0)  # the hub settles on its CPUs
    got = await run_login_load(infra.hub, logins, password)
    took = [float(x) for x in got["latencies_s"]]
    ok = int(got["codes"].get("303", 0))
    if ok != n:
        raise BenchError(f"sign-in burst: {ok} of {n} answered 303 (codes {got['codes']})")
    one = _verify_ms()
    return {"login_count": n, "login_ok_count": ok, "login_signed_in_count": int(got["signed_in"]),
            "login_argon2": passwords.describe(), "login_hub_cpus": cpus,
            "login_verify_ms": round(one, 1),
            "login_argon2_floor_ms": round(n * one / max(1, len(cpus)), 1),
            "login_load_average_1m": round(os.getloadavg()[0], 2), **_stats("login", took)}


# --- the whole bench -----------------------------------------------------------------------------

async def _run(quick: bool, templates: list[str], pg_url: str, workdir: Path) -> dict[str, Any]:
    plan = Plan.of(quick)
    run = uuid.uuid4().hex[:6]
    tomls = {(site := f"bench-{run}-s{i:02d}"): bench_toml(templates[i % len(templates)], site)
             for i in range(plan.sites)}
    infra = HubInfra(workdir, pg_url)
    result: dict[str, Any] = {
        "bench": "hub", "quick": quick, "sites": plan.sites,
        "broker": "private mosquitto on 127.0.0.1 (set_tcp_nodelay true, no persistence)",
        "hub_db": "postgresql", "hub_process": "separate (python -m edge.bench.sync_rig hub)"}
    edges: list[Edge] = []
    try:
        infra.start_broker()
        await infra.store_configs(tomls)
        await infra.start_hub()
        result["cpus"] = infra.cpus
        edges = await start_edges(infra, workdir, tomls)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await _all_shown(http, infra.hub, edges)
        result.update(await status_figures(infra.hub, edges, plan.wrk_s))
        await asyncio.sleep(1.0)  # the last events of the traffic reach the hub
        result.update(await live_figures(infra, edges, plan, workdir))
        result.update(await webticket_figures(infra.hub, edges, plan))
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        result.update(await login_figures(infra))  # last: it gives the hub every CPU
    finally:
        await stop_edges(edges)
        await infra.close()
    result.update(pow_figures(plan.pow_samples))
    return result


def _templates(config_path: Path) -> list[str]:
    """The sample sites (all three when ``config_path`` is the sample main office)."""
    folder = config_path.parent
    found = [folder / n for n in SAMPLES if (folder / n).exists()]
    return [p.read_text(encoding="utf-8") for p in (found or [config_path])]


def measure(quick: bool, config_path: Path, pg_url: str | None = None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-hub-"))
    try:
        result = asyncio.run(_run(quick, _templates(config_path), pg_url or DEFAULT_PG, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    judge(result, TARGETS, _AT_LEAST)
    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": platform.machine()})
    return result
