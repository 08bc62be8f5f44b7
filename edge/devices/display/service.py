"""One serial line of counter displays: latest-wins frame queue, health, reconnect with backoff.

Why latest-wins: a display shows a state, not a history. If the port is gone for a minute while
a counter calls five visitors, replaying five frames on reconnect would flash stale numbers;
only the newest state per counter matters, so that is all that is kept. After every (re)connect
the newest state of *every* counter is sent again, because a display that lost power or its
cable comes back blank. ``update()`` never blocks and never raises: it runs on the event loop
right after a commit, and a broken display must never stall the queue engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping

from edge.aio import wait_event
from edge.devices.display.codec import CodecError, Command, Pad, check_address, encode
from edge.devices.health import DeviceState, HealthBoard
from edge.devices.profiles import DisplayProfile
from edge.devices.transport import SerialSettings, Transport, TransportError, make_transport

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0
KEEPALIVE_S = 15.0  # idle ping, so an unplugged line shows up on the health board
LATENCY_SAMPLES = 10_000


class DisplayService:
    """Displays on one transport (RS-232 point to point or an RS-485 bus), one per counter."""

    def __init__(self, device_id: str, profile: DisplayProfile, url: str, board: HealthBoard,
                 addresses: Mapping[str, int], *, pad: Pad = "zero",
                 transport: Transport | None = None, backoff_min_s: float = BACKOFF_MIN_S,
                 backoff_max_s: float = BACKOFF_MAX_S,
                 keepalive_s: float | None = KEEPALIVE_S) -> None:
        for addr in addresses.values():
            check_address(profile, addr)  # a config error: fail at start-up, not on a call
        self.id, self.profile, self.url, self.board = device_id, profile, url, board
        self.addresses = dict(addresses)
        self.pad: Pad = pad
        s = profile.serial
        self._transport = transport or make_transport(url, SerialSettings(
            baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity, stopbits=s.stopbits))
        self._backoff_min, self._backoff_max = backoff_min_s, backoff_max_s
        self._keepalive = keepalive_s
        board.register(device_id, "display", bound_to=",".join(self.addresses) or None)
        self._state: dict[str, bytes] = {}  # counter -> newest frame
        # counter -> (sequence, update() time or None for a re-send), oldest first
        self._dirty: dict[str, tuple[int, float | None]] = {}
        self._seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ever_open = False
        self.frames_written = 0
        # update() -> bytes written, per frame that came from an update (for bench devices)
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    # --- public ----------------------------------------------------------------------------

    def update(self, counter_id: str, number: int | None, blink: bool = False) -> bool:
        """Show ``number`` at ``counter_id`` (None = blank; blink = recall). False if ignored."""
        addr = self.addresses.get(counter_id)
        if addr is None:
            return False
        command: Command = "clear" if number is None else ("blink" if blink else "show")
        try:
            frame = encode(self.profile, addr, command, number, counter=counter_id, pad=self.pad)
        except CodecError as exc:
            _LOGGER.warning("display %s: cannot show %r at %s: %s", self.id, number,
                            counter_id, exc)
            return False
        self._state[counter_id] = frame
        self._seq += 1
        self._dirty.pop(counter_id, None)  # re-insert: oldest pending goes out first
        self._dirty[counter_id] = (self._seq, time.perf_counter())
        self._wake.set()
        return True

    def pending(self) -> dict[str, bytes]:
        """Frames not yet written, newest per counter (what a reconnect will send first)."""
        return {c: self._state[c] for c in self._dirty}

    @property
    def connected(self) -> bool:
        return self._transport.is_open

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"display-{self.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TransportError):
            await self._transport.close()

    # --- worker ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._connect()
                await self._drain()
            except TransportError as exc:
                _LOGGER.warning("display %s: %s", self.id, exc)
                self._report_failure(exc)
                with contextlib.suppress(TransportError):
                    await self._transport.close()
            except Exception as exc:  # a bug here must not leave the displays dead for good
                _LOGGER.exception("display %s: worker failed", self.id)
                self.board.report(self.id, "error", "write_failed", repr(exc))
                with contextlib.suppress(TransportError):
                    await self._transport.close()
                await asyncio.sleep(self._backoff_min)

    async def _connect(self) -> None:
        """Open the transport, retrying with exponential backoff until it works."""
        delay = self._backoff_min
        while not self._transport.is_open:
            try:
                await self._transport.open()
            except TransportError as exc:
                self._report_failure(exc)
                _LOGGER.debug("display %s: open failed (%s), retry in %.1fs", self.id, exc,
                              delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            self._ever_open = True
            for counter in self._state:  # the display may have come back blank
                self._seq += 1
                self._dirty.setdefault(counter, (self._seq, None))
            self.board.report(self.id, "ok")

    async def _drain(self) -> None:
        """Write pending frames oldest first; ping when idle; return only by raising."""
        while True:
            if not self._dirty:
                self._wake.clear()
                if not await wait_event(self._wake, self._keepalive):
                    await self._ping()
                continue
            counter, entry = next(iter(self._dirty.items()))
            await self._transport.write(self._state[counter])
            if self._dirty.get(counter) == entry:
                del self._dirty[counter]  # else a newer update arrived during the write
            since = entry[1]
            self.frames_written += 1
            if since is not None:
                self.latencies_s.append(time.perf_counter() - since)
            self.board.report(self.id, "ok")

    async def _ping(self) -> None:
        if not self.addresses:
            return
        addr = next(iter(self.addresses.values()))
        await self._transport.write(encode(self.profile, addr, "ping"))

    def _report_failure(self, exc: TransportError) -> None:
        state: DeviceState = "offline"
        code = exc.reason
        if code == "not_found" and self._ever_open:
            code = "unplugged"  # it was there a moment ago: the cable or adapter went
        elif code not in ("unplugged", "not_found", "timeout"):
            state = "error"
        self.board.report(self.id, state, code, exc.detail)
