"""The HTTP half of ``bench edge``: a real ``edge run`` process under open- and closed-loop load.

Issue latency is open-loop: requests are sent at fixed intervals whatever the responses, and
each latency is measured from the request's *scheduled* send time, so a stalled server cannot
hide its stall by slowing the client down (no coordinated omission). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

import edge
from edge.domain.model import SiteConfig

ISSUE_RATE_PER_S = 50.0
CLIENTS = 8


class BenchError(Exception):
    """The benchmark could not run (the server did not start, a setup request failed)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def kiosk_plan(config: SiteConfig) -> tuple[list[str], dict[str, str]]:
    """Services to issue round-robin (no daily limit), and counters that serve them first."""
    services = [s.code for s in config.services.values() if s.kiosk and s.daily_limit is None]
    counters = {cid: k.services[0] for cid, k in config.counters.items()
                if k.services[0] in services}
    return services, counters


# --- the server process -----------------------------------------------------------------------

class EdgeProcess:
    """``python -m edge.cli edge run`` on a free port of 127.0.0.1; ``stop`` always kills it."""

    def __init__(self, config: Path, db: Path, log: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = dict(os.environ)
        root = str(Path(edge.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "edge", "run", "--config", str(config),
                 "--db", str(db), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )

    async def wait_ready(self, session: aiohttp.ClientSession, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"edge server exited ({self.proc.returncode}):\n"
                                 + self.log.read_text(errors="replace")[-2000:])
            try:
                async with session.get(f"{self.base}/api/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise BenchError(f"edge server not healthy within {timeout_s:.0f} s")

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the server process in MB, from /proc."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024  # kB -> MB
        return fields["VmRSS"], fields["VmHWM"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- HTTP load --------------------------------------------------------------------------------

@dataclass
class Tally:
    ok: int = 0
    refused: int = 0
    errors: int = 0


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any] | None,
                tally: Tally) -> int:
    """POST and count the answer: 2xx ok, 4xx a refusal, anything else an error."""
    try:
        async with session.post(url, json=body) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        tally.errors += 1
        return 0
    if 200 <= status < 300:
        tally.ok += 1
    elif 400 <= status < 500:
        tally.refused += 1
    else:
        tally.errors += 1
    return status


async def _issue_open_loop(session: aiohttp.ClientSession, base: str, services: list[str],
                           duration_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    n = int(ISSUE_RATE_PER_S * duration_s)
    interval = 1.0 / ISSUE_RATE_PER_S
    tally = Tally()
    latencies: list[float] = []
    sent: list[float] = []

    async def one(i: int, scheduled: float) -> None:
        sent.append(loop.time())
        status = await _post(session, f"{base}/api/tickets",
                             {"service": services[i % len(services)]}, tally)
        if status == 201:
            latencies.append((loop.time() - scheduled) * 1000)

    start = loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(n):
        scheduled = start + i * interval
        if (delay := scheduled - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    latencies.sort()
    errors = n - len(latencies)
    if not latencies:
        raise BenchError("no ticket was issued")
    return {
        "issue_p50_ms": round(_percentile(latencies, 50), 2),
        "issue_p99_ms": round(_percentile(latencies, 99), 2),
        "issue_max_ms": round(latencies[-1], 2),
        "issue_offered_per_s": round((n - 1) / (max(sent) - min(sent)), 2),
        "issue_requests": n,
        "issue_errors": errors,
    }


async def _commands_closed_loop(session: aiohttp.ClientSession, base: str,
                                counters: dict[str, str], duration_s: float) -> dict[str, Any]:
    """CLIENTS clients, each owning some counters: issue, call-next, finish, as fast as answered.

    A client issues to the service its counter serves first, so queues stay balanced and no
    number range fills up.
    """
    loop = asyncio.get_running_loop()
    owned = [list(counters)[k::CLIENTS] for k in range(CLIENTS)]
    tally = Tally()

    async def client(mine: list[str], deadline: float) -> None:
        i = 0
        while loop.time() < deadline:
            cid = mine[i % len(mine)]
            i += 1
            await _post(session, f"{base}/api/tickets", {"service": counters[cid]}, tally)
            await _post(session, f"{base}/api/counters/{cid}/call-next", None, tally)
            await _post(session, f"{base}/api/counters/{cid}/finish", None, tally)

    t0 = loop.time()
    await asyncio.gather(*(client(m, t0 + duration_s) for m in owned if m))
    took = loop.time() - t0
    return {"commands_per_s": round(tally.ok / took, 1), "commands_ok": tally.ok,
            "commands_refused": tally.refused, "commands_errors": tally.errors,
            "commands_clients": CLIENTS}


async def http_figures(server: EdgeProcess, config: SiteConfig, quick: bool) -> dict[str, Any]:
    services, counters = kiosk_plan(config)
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await server.wait_ready(session)
        setup = Tally()
        for cid in config.counters:
            await _post(session, f"{server.base}/api/counters/{cid}/open", None, setup)
        for i in range(20):  # warm-up: day opened, code paths and connections hot
            await _post(session, f"{server.base}/api/tickets",
                        {"service": services[i % len(services)]}, setup)
        if setup.ok != len(config.counters) + 20:
            raise BenchError(f"setup requests failed: {setup}")
        out = await _issue_open_loop(session, server.base, services, 4.0 if quick else 20.0)
        out.update(await _commands_closed_loop(session, server.base, counters,
                                               3.0 if quick else 10.0))
    rss, peak = server.memory_mb()
    out.update({"rss_mb": round(rss, 1), "rss_peak_mb": round(peak, 1)})
    return out
