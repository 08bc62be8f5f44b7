"""Helpers for the sync fault tests: private brokers, a cuttable TCP proxy, real edge and hub
processes, HTTP load through the edge's API, and the edge-vs-hub event log comparison.

Why real processes: a SIGKILL only means something for a process of its own, and ``madoguchi
edge run`` / ``madoguchi hub run`` are what a site and the centre actually run.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
from conftest import free_port, unavailable
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest.mqtt import MqttSettings
from hub.store import HubStore

REPO = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"
SERVICES = ("A", "B")
COUNTERS = ("1", "2", "3")


def unique_site(tag: str = "ft") -> str:
    """A site id no other test uses (topics, client ids and hub rows stay apart)."""
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def site_toml(site: str, version: int = 1) -> str:
    """Two kiosk services with wide wrapping ranges, three counters, no PIN, no devices; open
    (``access``): these tests are about sync, not sign-in."""
    return f"""version = {version}

[site]
id = "{site}"
access = "open"
name = {{ ja = "障害試験", en = "Fault test" }}
timezone = "Asia/Tokyo"

[[services]]
code = "A"
name = {{ ja = "住民異動", en = "Moving" }}
range = [1, 4999]
handling_minutes = 5

[[services]]
code = "B"
name = {{ ja = "証明書", en = "Certificates" }}
range = [5001, 9999]
handling_minutes = 3

[[counters]]
id = "1"
name = {{ ja = "1番", en = "Counter 1" }}
services = ["A", "B"]

[[counters]]
id = "2"
name = {{ ja = "2番", en = "Counter 2" }}
services = ["B", "A"]

[[counters]]
id = "3"
name = {{ ja = "3番", en = "Counter 3" }}
services = ["A", "B"]

[calendar]  # the wall clock: open on holidays and at the year end too
national_holidays = false
year_end = []
"""


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0,
                every: float = 0.05) -> Any:
    """Await ``probe()`` until it is truthy (returned) or fail after ``timeout`` (a deadline,
    not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
        await asyncio.sleep(every)


# --- brokers -------------------------------------------------------------------------------------

class Mosquitto:
    """A private mosquitto on a free port (no persistence: a restart loses every session and
    retained message, which the sync must survive) with ``set_tcp_nodelay``."""

    def __init__(self, workdir: Path, extra: str = "") -> None:
        if not Path(MOSQUITTO).exists():
            unavailable(f"{MOSQUITTO} not installed (apt-get install mosquitto)")
        self.port = free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "set_tcp_nodelay true\nmax_queued_messages 0\nlog_dest none\n"
            # as root mosquitto would switch to user "mosquitto"; nothing to read here anyway
            f"user {getpass.getuser()}\n{extra}")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 10.0, self.proc)
        return self

    def stop(self) -> None:
        """SIGKILL: a broker that dies, not one that says goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited ({proc.returncode}) before port "
                                   f"{port} opened") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- a network cut -------------------------------------------------------------------------------

class TcpProxy:
    """127.0.0.1:port -> target, in the test's event loop. ``cut()`` resets every connection and
    closes the listener (new connections are refused); ``restore()`` listens again."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                  reuse_address=True)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        for w in (writer, up_writer):
            _no_delay(w)
            self._writers.add(w)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def cut(self) -> None:
        """Drop every connection (RST both ways) and refuse new ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0)

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# --- real processes ------------------------------------------------------------------------------

class Process:
    """``python -m edge.cli …`` with its output in a log file; ``kill()`` is SIGKILL."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", *self.args],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=REPO, env=self.env)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not end within 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def wait_http(self, url: str, ok: Callable[[dict[str, Any]], bool],
                        timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"{self.args[:2]} exited ({self.proc.returncode}):\n"
                                         f"{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with s.get(url) as resp:
                        if resp.status == 200 and ok(await resp.json()):
                            return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} not ready within {timeout:.0f} s:\n{self.tail()}")
                await asyncio.sleep(0.1)


class EdgeProcess(Process):
    """``madoguchi edge run --config --db --port --mqtt`` (prefix and protocol from the env)."""

    def __init__(self, workdir: Path, site: str, mqtt_url: str, prefix: str, *,
                 db: Path | None = None, protocol: str = "5",
                 env: dict[str, str] | None = None) -> None:
        self.site = site
        self.config = workdir / f"{site}.toml"
        if not self.config.exists():
            self.config.write_text(site_toml(site), encoding="utf-8")
        self.db = db or workdir / f"{site}.db"
        self.port = free_port()
        extra = {"MADOGUCHI_MQTT_PREFIX": prefix, "MADOGUCHI_MQTT_PROTOCOL": protocol,
                 **(env or {})}
        super().__init__(["edge", "run", "--config", str(self.config), "--db", str(self.db),
                          "--host", "127.0.0.1", "--port", str(self.port), "--mqtt", mqtt_url],
                         workdir / f"edge-{site}.log", extra)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 30.0) -> None:
        await self.wait_http(f"{self.base}/api/health", lambda j: bool(j.get("ok")), timeout)


class HubProcess(Process):
    """``madoguchi hub run --db --mqtt --prefix --port``."""

    def __init__(self, workdir: Path, db_url: str, mqtt_url: str, prefix: str) -> None:
        self.port = free_port()
        super().__init__(["hub", "run", "--db", db_url, "--mqtt", mqtt_url, "--prefix", prefix,
                          "--port", str(self.port)], workdir / "hub.log")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 30.0) -> None:
        """Serving HTTP and connected to the broker."""
        await self.wait_http(f"{self.base}/api/health",
                             lambda j: bool((j.get("ingest") or {}).get("connected")), timeout)


# --- load through the edge's HTTP API ------------------------------------------------------------

@dataclass
class Answer:
    sent: float  # time.monotonic()
    answered: float
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)


@dataclass
class Load:
    """Tickets issued at ``rate`` per second (open loop: one request per tick, whatever the
    answers) while every counter keeps calling and finishing, through the edge's HTTP API.

    Issue answers are kept with their send time so a test can look at a window (an outage).
    A request that gets no answer within ``timeout`` counts as status 0: a stalled queue shows
    up as failed issues, not as a slower load.
    """

    base: str
    rate: float = 10.0
    timeout: float = 5.0
    issues: list[Answer] = field(default_factory=list)
    calls: dict[int, int] = field(default_factory=dict)  # status -> count (call-next, finish)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None
    _running: bool = False

    async def start(self) -> Load:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=32, force_close=False))
        for cid in COUNTERS:
            await self._post(f"/api/counters/{cid}/open")
        self._running = True
        self._tasks = [asyncio.create_task(self._issue_loop())]
        self._tasks += [asyncio.create_task(self._counter_loop(cid)) for cid in COUNTERS]
        return self

    async def stop(self) -> None:
        """Let every request in flight get its answer (or time out) first: a request cancelled
        here could still be executed by the edge later, after the test compared the logs."""
        self._running = False
        tasks = [*self._tasks, *self._pending]
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=self.timeout + 2)
            for t in late:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> int:
        assert self._session is not None
        try:
            async with self._session.post(self.base + path, json=body) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0

    async def _issue_one(self, i: int) -> None:
        sent = time.monotonic()
        status = await self._post("/api/tickets", {"service": SERVICES[i % len(SERVICES)]})
        self.issues.append(Answer(sent, time.monotonic(), status))

    async def _issue_loop(self) -> None:
        interval = 1.0 / self.rate
        start = time.monotonic()
        i = 0
        while self._running:
            task = asyncio.create_task(self._issue_one(i))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            i += 1
            await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))

    async def _counter_loop(self, cid: str) -> None:
        """Call the next visitor, serve, finish: about the issue rate over all counters."""
        pause = len(COUNTERS) / self.rate
        while self._running:
            for action in ("call-next", "finish"):
                status = await self._post(f"/api/counters/{cid}/{action}")
                self.calls[status] = self.calls.get(status, 0) + 1
                await asyncio.sleep(pause / 2)

    def window(self, start: float, end: float) -> list[Answer]:
        """Issue requests sent between two ``time.monotonic()`` readings."""
        return [a for a in self.issues if start <= a.sent < end]


def summary(answers: list[Answer]) -> dict[str, Any]:
    """Counts by status and the slowest answer (printed by the tests: figures, not asserts)."""
    statuses: dict[int, int] = {}
    for a in answers:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    slowest = max((a.answered - a.sent for a in answers), default=0.0)
    return {"requests": len(answers), "statuses": statuses, "max_ms": round(slowest * 1000, 1)}


# --- edge log vs hub log -------------------------------------------------------------------------

Row = tuple[int, str, str, str, str, Any]  # seq, id, at, day, type, data


def edge_rows(db: Path) -> list[Row]:
    """The edge's whole event log (read through a connection of our own; WAL allows it while
    the edge runs)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        rows = conn.execute("SELECT seq, id, at, day, type, data FROM events ORDER BY seq")
        return [(s, i, a, d, t, json.loads(x)) for s, i, a, d, t, x in rows]
    finally:
        conn.close()


def edge_counts(db: Path) -> tuple[int, int]:
    """``(last seq, outbox rows)`` of an edge database."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return int(last), int(outbox)
    finally:
        conn.close()


async def hub_rows(hub_db_url: str, site: str, schema: str | None = None) -> list[Row]:
    store = await HubStore.open(hub_db_url, schema=schema, upgrade=False)
    try:
        return [(e.seq, e.id, e.at, e.day, e.type, e.data) for e in await store.events(site)]
    finally:
        await store.close()


async def assert_hub_matches_edge(edge_db_path: Path, hub_db_url: str, site: str, *,
                                  schema: str | None = None) -> int:
    """The hub holds exactly the edge's events for the site: same seqs, same ids (and times,
    days, types, data), none missing, none twice. Returns the number of events."""
    edge = edge_rows(edge_db_path)
    hub = await hub_rows(hub_db_url, site, schema)
    assert edge, "the edge has no events: the test proved nothing"
    seqs = [r[0] for r in edge]
    assert seqs == list(range(1, len(edge) + 1)), "the edge's own log has gaps"
    hub_seqs = [r[0] for r in hub]
    twice = sorted({s for s in hub_seqs if hub_seqs.count(s) > 1})
    assert not twice, f"seqs stored twice at the hub: {twice[:10]}"
    ids = [r[1] for r in hub]
    assert len(set(ids)) == len(ids), "an event id is stored twice at the hub"
    missing = sorted(set(seqs) - set(hub_seqs))
    extra = sorted(set(hub_seqs) - set(seqs))
    assert not missing, f"{len(missing)} events missing at the hub, first seqs {missing[:10]}"
    assert not extra, f"{len(extra)} events at the hub the edge never wrote: {extra[:10]}"
    differ = [e[0] for e, h in zip(edge, hub, strict=True) if e != h]
    assert not differ, f"{len(differ)} events differ (seq, id, at, day, type or data), " \
                       f"first seqs {differ[:10]}"
    return len(edge)


async def wait_synced(edge_db: Path, hub_db_url: str, site: str, *, schema: str | None = None,
                      timeout: float = 60.0) -> float:
    """Until the hub's contiguous seq is the edge's last seq and the edge's outbox is empty
    (every event acked back). Returns the seconds it took."""
    t0 = time.monotonic()
    store = await HubStore.open(hub_db_url, schema=schema, upgrade=False)
    try:
        async def done() -> bool:
            last, outbox = edge_counts(edge_db)
            return outbox == 0 and await store.contiguous_seq(site) == last

        await until(done, f"hub caught up with edge {site} and the edge's outbox empty",
                    timeout, every=0.1)
    finally:
        await store.close()
    return time.monotonic() - t0


async def hub_site(base: str, site: str,
                   cookies: dict[str, str] | None = None) -> dict[str, Any] | None:
    """``GET /api/sites/{site}`` of a hub (None: unknown or unreachable). The route needs a
    staff session: ``cookies`` from ``staff_support.staff_cookie``/``staff_cookie_at``."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3),
                                         cookies=cookies) as s, \
                s.get(f"{base}/api/sites/{site}") as resp:
            if resp.status != 200:
                return None
            body: dict[str, Any] = await resp.json()
            return body
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


def clear_retained(broker_url: str, topics: list[str]) -> None:
    """Empty the retained messages a test left on the shared broker."""
    settings = MqttSettings.from_url(broker_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set("cleanup")
    client.connect(settings.host, settings.port)
    client.loop_start()
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
