"""systemd's notify protocol and watchdog, for the edge daemon and the hub (issue 18 item 4).

Under a unit with ``Type=notify`` and ``WatchdogSec=``, systemd passes ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC``. The process says ``READY=1`` once it serves, then ``WATCHDOG=1`` at half the
interval. The pings are sent *from the event loop*, after a liveness check that must answer in
time: a loop stuck in blocking code, or a check that hangs (the edge's writer thread), sends no
ping, and systemd kills and restarts the process. Readiness (may it take traffic: database up,
migrations done) is a separate question, answered by ``GET /api/ready``; a database outage must
not make systemd restart a healthy process in a loop, so it is not part of the ping.

No library: the protocol is one datagram per message (``sd_notify(3)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class SystemdNotifier:
    """Where to send notifications (``address``: a path, or ``\\0name`` for an abstract socket)
    and the watchdog interval asked by systemd (None: no watchdog)."""

    address: str
    watchdog_s: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SystemdNotifier | None:
        """None when not started by systemd with ``Type=notify`` (the demo, tests, a shell)."""
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        if not raw:
            return None
        address = "\0" + raw[1:] if raw.startswith("@") else raw
        watchdog: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1_000_000
        return cls(address, watchdog)

    def send(self, message: str) -> bool:
        """One datagram; False (logged once per call) when systemd is not listening."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.sendall(message.encode())
            return True
        except OSError as exc:
            _LOGGER.warning("sd_notify %s failed: %s", message.split("=", 1)[0], exc)
            return False


async def serve_watchdog(notifier: SystemdNotifier | None, alive: Check, *,
                         status: str = "serving") -> None:
    """Say READY=1, then ping at half the watchdog interval while ``alive()`` answers True
    within that half interval; runs until cancelled (then says STOPPING=1)."""
    if notifier is None:
        return
    notifier.send(f"READY=1\nSTATUS={status}")
    if notifier.watchdog_s is None:
        return
    every = notifier.watchdog_s / 2
    try:
        while True:
            ok = False
            with contextlib.suppress(TimeoutError):
                ok = await asyncio.wait_for(alive(), timeout=every)
            if ok:
                notifier.send("WATCHDOG=1")
            else:
                _LOGGER.error("liveness check failed: no watchdog ping (systemd will restart "
                              "the process if this lasts %.0f s)", notifier.watchdog_s)
            await asyncio.sleep(every)
    finally:
        notifier.send("STOPPING=1")


async def run_until_signal(alive: Check) -> None:
    """Serve under systemd's watchdog (``alive``: the liveness check) until SIGINT or SIGTERM;
    the caller then cleans up. The one main loop of ``edge run`` and ``hub run``."""
    watchdog = asyncio.create_task(serve_watchdog(SystemdNotifier.from_env(), alive))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog


async def loop_alive() -> bool:
    """The hub's liveness: reaching this line means the event loop runs."""
    return True
