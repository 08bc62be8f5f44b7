"""systemd notify and watchdog (issue 18 item 4), readiness apart from liveness.

A datagram socket stands in for systemd (the protocol is one datagram per message). The edge
and hub run as real processes (``madoguchi edge run`` / ``hub run``) with ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC`` as systemd sets them: READY=1 comes once they answer HTTP, pings follow, and
SIGTERM ends with STOPPING=1. A blocked event loop sends no ping (what makes systemd restart
it). The hub's readiness follows its database through a socat relay that the test cuts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import free_port

from edge.watchdog import SystemdNotifier, loop_alive, serve_watchdog

REPO = Path(__file__).resolve().parents[2]
MADOGUCHI = [sys.executable, "-m", "edge.cli"]


class FakeSystemd:
    """Collects (monotonic time, message) from a bound datagram socket on a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.got.append((time.monotonic(), data.decode()))

    def messages(self, prefix: str) -> list[float]:
        return [t for t, m in self.got if m.startswith(prefix)]

    def wait_for(self, prefix: str, timeout: float = 20.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(prefix)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no {prefix} within {timeout} s; got {self.got}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.close()


def test_the_environment_is_read_as_systemd_sets_it() -> None:
    assert SystemdNotifier.from_env({}) is None
    n = SystemdNotifier.from_env({"NOTIFY_SOCKET": "@/org/x", "WATCHDOG_USEC": "30000000"})
    assert n == SystemdNotifier("\0/org/x", 30.0)
    other_pid = {"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier.from_env(other_pid) == SystemdNotifier("/run/n", None)
    assert SystemdNotifier.from_env({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "x"}) == \
        SystemdNotifier("/run/n", None)


async def test_a_blocked_loop_or_a_failing_check_sends_no_ping(systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier(str(systemd.path), 0.2)  # a ping every 0.1 s
    task = asyncio.create_task(serve_watchdog(notifier, loop_alive))
    await _until(lambda: len(systemd.messages("WATCHDOG=1")) >= 3)
    assert systemd.messages("READY=1")
    await asyncio.sleep(0.3)  # the receiving thread has what was sent before the block
    blocked_at = time.monotonic()
    time.sleep(2.0)  # the event loop is stuck in blocking code  # noqa: ASYNC251
    resumed_at = time.monotonic()
    await _until(lambda: any(t > resumed_at for t in systemd.messages("WATCHDOG=1")))
    # the margin: a datagram sent just before the block may be read a little later
    during = [t for t in systemd.messages("WATCHDOG=1") if blocked_at + 0.5 < t < resumed_at]
    assert during == []
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await _until(lambda: bool(systemd.messages("STOPPING=1")))

    for alive in (_false, _hangs):
        await asyncio.sleep(0.3)
        before = len(systemd.messages("WATCHDOG=1"))
        task = asyncio.create_task(serve_watchdog(notifier, alive))
        await asyncio.sleep(0.8)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.3)
        assert len(systemd.messages("WATCHDOG=1")) == before, alive.__name__


async def _until(ok: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for ``ok`` (a busy CI machine may be slow to schedule the receiving thread)."""
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _false() -> bool:
    return False


async def _hangs() -> bool:
    await asyncio.sleep(60)
    return True


def _spawn(args: list[str], systemd: FakeSystemd, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "300000",
           "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen([*MADOGUCHI, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def _get(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.json()


def _stop(proc: subprocess.Popen[bytes], systemd: FakeSystemd) -> None:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    assert systemd.messages("STOPPING=1")


@pytest.mark.parametrize("part", ["edge", "hub"])
async def test_the_daemon_says_ready_once_it_serves_then_pings(
        part: str, systemd: FakeSystemd, tmp_path: Path) -> None:
    port = free_port()
    args = (["edge", "run", "--config", str(REPO / "sites" / "oizumi.toml"), "--db",
             str(tmp_path / "edge.db")] if part == "edge" else
            ["hub", "run", "--no-mqtt", "--db", f"sqlite:///{tmp_path}/hub.db"])
    proc = _spawn([*args, "--host", "127.0.0.1", "--port", str(port)], systemd, tmp_path)
    try:
        await asyncio.to_thread(systemd.wait_for, "READY=1", 60.0)
        status, body = await _get(f"http://127.0.0.1:{port}/api/ready")  # serving already
        assert (status, body["ready"]) == (200, True)
        await _until(lambda: len(systemd.messages("WATCHDOG=1")) >= 3)
    finally:
        if proc.poll() is None:
            await asyncio.to_thread(_stop, proc, systemd)


async def test_hub_readiness_follows_its_database(systemd: FakeSystemd, tmp_path: Path,
                                                 postgres_url: str) -> None:
    """Through a socat relay to PostgreSQL: cut it and /api/ready says 503 with the reason
    while /api/health (liveness) stays 200 and the watchdog keeps pinging; restore it and the
    hub is ready again without a restart."""
    relay_port, port = free_port(), free_port()
    pg = postgres_url.split("@", 1)[1].split("/", 1)
    target = pg[0] if ":" in pg[0] else f"{pg[0]}:5432"

    def relay() -> subprocess.Popen[bytes]:
        return subprocess.Popen(["socat", f"TCP-LISTEN:{relay_port},bind=127.0.0.1,reuseaddr,"
                                 "fork", f"TCP:{target}"], start_new_session=True)

    def cut(relay: subprocess.Popen[bytes]) -> None:  # the listener and every open connection
        with contextlib.suppress(ProcessLookupError):
            os.killpg(relay.pid, signal.SIGKILL)
        relay.wait()

    socat = relay()
    name = f"ready_{os.getpid()}_{port}"  # a database of its own: the hub CLI has no schema
    _psql(postgres_url, f'CREATE DATABASE "{name}"')
    db = postgres_url.replace(pg[0], f"127.0.0.1:{relay_port}", 1).rsplit("/", 1)[0]
    proc = _spawn(["hub", "run", "--no-mqtt", "--db", f"{db}/{name}", "--host", "127.0.0.1",
                   "--port", str(port)], systemd, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(systemd.wait_for, "READY=1", 60.0)
        assert (await _get(f"{base}/api/ready"))[0] == 200
        cut(socat)
        status, body = await _get(f"{base}/api/ready")
        assert status == 503
        assert body["checks"]["database"] in ("unreachable", "timeout")  # type: ignore[index]
        assert (await _get(f"{base}/api/health"))[0] == 200
        pings = len(systemd.messages("WATCHDOG=1"))
        await _until(lambda: len(systemd.messages("WATCHDOG=1")) > pings)  # alive, not ready
        socat = relay()
        for _ in range(50):
            status, _body = await _get(f"{base}/api/ready")
            if status == 200:
                break
            await asyncio.sleep(0.2)
        assert status == 200
    finally:
        cut(socat)
        if proc.poll() is None:
            await asyncio.to_thread(_stop, proc, systemd)
        _psql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   capture_output=True)
