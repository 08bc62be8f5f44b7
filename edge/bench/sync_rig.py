"""The rig of ``bench sync``: a private mosquitto, the hub in a process of its own on a
PostgreSQL schema made for the run, and a light publisher paced by the hub's acks.

Why a separate hub process: in production the hub is its own process; sharing this one would
make the 20 simulated sites and the hub compete for one GIL and measure that instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from edge.bench.load import BenchError
from edge.protocol import site_topic
from edge.sync import SyncSettings

WINDOW = SyncSettings().window  # batches ahead of a site's ack, as the edge relay


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- infrastructure: broker, hub process, database -----------------------------------------------

class Infra:
    """mosquitto + the hub process + the bench schema; ``close`` undoes all three."""

    def __init__(self, workdir: Path, pg_url: str) -> None:
        self.workdir = workdir
        self.pg_url = pg_url
        self.schema = f"bench_sync_{uuid.uuid4().hex[:10]}"
        self.prefix = f"bench/{uuid.uuid4().hex[:10]}"
        self.broker_port = free_port()
        self.hub_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.schema_made = False
        self.cpus: dict[str, list[int]] | None = None  # how sites and hub were split
        self._own_cpus: set[int] | None = None

    @property
    def mqtt(self) -> str:
        return f"mqtt://127.0.0.1:{self.broker_port}"

    @property
    def hub(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    def start_broker(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise BenchError("mosquitto is not installed (apt-get install mosquitto)")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nset_tcp_nodelay true\nmax_queued_messages 0\n"
                        "log_dest none\n")
        self.procs.append(subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.broker_port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("mosquitto did not start") from None
                time.sleep(0.05)

    async def store_configs(self, tomls: dict[str, str]) -> None:
        from hub.configs import store_config
        from hub.store import HubStore

        try:
            store = await HubStore.open(self.pg_url, schema=self.schema)
        except Exception as exc:  # asyncpg and SQLAlchemy raise their own, not only OSError
            raise BenchError(f"PostgreSQL not usable at {self.pg_url}: {exc}; "
                             "pass --pg postgresql://user@host:port/db") from None
        self.schema_made = True
        try:
            for site, text in tomls.items():
                await store_config(store, site, text)
        finally:
            await store.close()

    def spawn_hub(self) -> None:
        with (self.workdir / "hub.log").open("wb") as log:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "edge.bench.sync_rig", "hub", self.pg_url, self.schema,
                 self.mqtt, self.prefix, str(self.hub_port)], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": _root()}))
        self._split_cpus(self.procs[-1].pid)

    def _split_cpus(self, hub_pid: int) -> None:
        """The simulated sites (this process) and the hub on separate CPUs, as they would be on
        separate machines: twenty sites' writers must not take the hub's CPU. PostgreSQL and
        mosquitto are left free."""
        if not hasattr(os, "sched_setaffinity"):
            return
        mine = sorted(os.sched_getaffinity(0))
        if len(mine) < 2:
            return
        half = len(mine) // 2
        os.sched_setaffinity(hub_pid, set(mine[half:]))
        self._own_cpus = set(mine)
        _pin_this_process(set(mine[:half]))
        self.cpus = {"sites": mine[:half], "hub": mine[half:]}

    async def start_hub(self) -> None:
        """Spawn the hub process; returns once it serves HTTP and is connected to the broker."""
        self.spawn_hub()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{self.hub}/api/health") as r:
                        if r.status == 200 and (await r.json())["ingest"]["connected"]:
                            return
                await asyncio.sleep(0.1)
        tail = (self.workdir / "hub.log").read_text(errors="replace")[-2000:]
        raise BenchError(f"the hub did not start:\n{tail}")

    async def close(self) -> None:
        if self._own_cpus is not None:
            _pin_this_process(self._own_cpus)
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.schema_made:
            from sqlalchemy import text

            from hub.store import HubStore

            store = await HubStore.open(self.pg_url, upgrade=False)
            try:
                async with store.engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            finally:
                await store.close()


def _pin_this_process(cpus: set[int]) -> None:
    """Every thread of this process (the affinity call itself sets one thread only)."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(task.name), cpus)


def _root() -> str:
    import edge

    return str(Path(edge.__file__).resolve().parent.parent)


# --- observing the broker ------------------------------------------------------------------------

class Tap:
    """Subscribes to every site's events topic: when each (site, seq) first passed the broker."""

    def __init__(self, infra: Infra) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.first: dict[tuple[str, int], float] = {}
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"bench-tap-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        topic = site_topic(infra.prefix, "+", "events")
        self.client.on_connect = lambda cl, *_a: cl.subscribe(topic, 0)
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", infra.broker_port)
        self.client.loop_start()
        self.ready.wait(10)

    def _message(self, _c: Any, _u: Any, msg: Any) -> None:
        now = time.time()
        raw = json.loads(msg.payload)
        for ev in raw.get("events", ()):
            self.first.setdefault((ev["site"], ev["seq"]), now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the ingest publisher ------------------------------------------------------------------------

class Publisher:
    """One paho client publishing every site's batches, ``WINDOW`` ahead of each site's ack."""

    def __init__(self, infra: Infra, logs: dict[str, list[bytes]],
                 lasts: dict[str, list[int]]) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = infra.prefix
        self.logs, self.lasts = logs, lasts
        self.next = dict.fromkeys(logs, 0)
        self.acked = dict.fromkeys(logs, 0)
        self.total_acked = 0
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"bench-pub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda cl, *_a: cl.subscribe(site_topic(self.prefix, "+", "ack"),
                                                              1)
        self.client.on_message = self._ack
        self.client.connect("127.0.0.1", infra.broker_port)
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()

    def _pump(self, site: str) -> None:
        k = self.next[site]
        while k < len(self.logs[site]) and k - self._acked_batches(site) < WINDOW:
            self.client.publish(site_topic(self.prefix, site, "events"), self.logs[site][k], 1)
            k += 1
        self.next[site] = k

    def _acked_batches(self, site: str) -> int:
        return sum(1 for last in self.lasts[site] if last <= self.acked[site])

    def start(self) -> float:
        with self.lock:
            t0 = time.monotonic()
            self.samples.append((t0, 0))
            for site in self.logs:
                self._pump(site)
        return t0

    def _ack(self, _c: Any, _u: Any, msg: Any) -> None:
        raw = json.loads(msg.payload) if msg.payload else {}
        site, seq = raw.get("site"), raw.get("seq")
        if site not in self.acked or not isinstance(seq, int):
            return
        with self.lock:
            if seq > self.acked[site]:
                self.total_acked += seq - self.acked[site]
                self.acked[site] = seq
                self.samples.append((time.monotonic(), self.total_acked))
                self._pump(site)
            if all(self.acked[s] == self.lasts[s][-1] for s in self.logs):
                self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def min_window_rate(samples: list[tuple[float, int]], window_s: float) -> float | None:
    """The slowest rate over any ``window_s`` of the run (None: the run was shorter)."""
    if samples[-1][0] - samples[0][0] < 2 * window_s:
        return None
    worst = float("inf")
    j = 0
    for t, n in samples:
        while samples[j][0] < t - window_s:
            j += 1
        if t - samples[0][0] >= window_s:
            t0, n0 = samples[max(0, j - 1)]
            worst = min(worst, (n - n0) / (t - t0))
    return worst


# --- the hub process -----------------------------------------------------------------------------

def _hub_child(db: str, schema: str, mqtt: str, prefix: str, port: str) -> None:
    """The hub for the bench: ``start_hub`` in a process of its own until SIGTERM."""
    from edge.watchdog import loop_alive, run_until_signal
    from hub.app import start_hub

    async def main() -> None:
        hub = await start_hub(db, f"{mqtt}?session_expiry=60", prefix, int(port), schema=schema)
        try:
            await run_until_signal(loop_alive)
        finally:
            await hub.stop()

    asyncio.run(main())


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "hub":
    _hub_child(*sys.argv[2:])


