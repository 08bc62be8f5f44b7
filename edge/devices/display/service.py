"""One serial line of counter displays: latest-wins frame queue, health, reconnect with backoff.

Why latest-wins: a display shows a state, not a history. If the port is gone for a minute while
a counter calls five visitors, replaying five frames on reconnect would flash stale numbers;
only the newest state per counter matters, so that is all that is kept. After every (re)connect
the newest state of *every* counter is sent again, because a display that lost power or its
cable comes back blank. ``update()`` never blocks and never raises: it runs on the event loop
right after a commit, and a broken display must never stall the queue engine.

Heads and counters need not pair one to one (the ward's device table has sections with fewer
displays than counters, and one with more): a counter may show on several heads, and a head
may be shared by several counters. A shared head shows the latest call among its counters
(one still being served: when the latest is finished, it falls back to the previous call),
blank when none has one. "Latest" means the last *change* of number or a recall, so a re-send
of unchanged numbers (after a cancel every counter is refreshed) reorders nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping

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
    """Display heads on one transport (RS-232 point to point or an RS-485 bus).

    ``addresses``: counter id -> bus address, or (counter id, address) pairs where a counter
    may appear with several addresses and an address with several counters.
    """

    def __init__(self, device_id: str, profile: DisplayProfile, url: str, board: HealthBoard,
                 addresses: Mapping[str, int] | Iterable[tuple[str, int]], *,
                 pad: Pad = "zero",
                 transport: Transport | None = None, backoff_min_s: float = BACKOFF_MIN_S,
                 backoff_max_s: float = BACKOFF_MAX_S,
                 keepalive_s: float | None = KEEPALIVE_S) -> None:
        pairs = list(addresses.items() if isinstance(addresses, Mapping) else addresses)
        for _, addr in pairs:
            check_address(profile, addr)  # a config error: fail at start-up, not on a call
        self.id, self.profile, self.url, self.board = device_id, profile, url, board
        self.heads: dict[str, tuple[int, ...]] = {}  # counter -> its heads' addresses
        self.sharing: dict[int, tuple[str, ...]] = {}  # head address -> counters shown there
        for cid, addr in pairs:
            if addr not in self.heads.get(cid, ()):
                self.heads[cid] = (*self.heads.get(cid, ()), addr)
                self.sharing[addr] = (*self.sharing.get(addr, ()), cid)
        self.addresses = {cid: heads[0] for cid, heads in self.heads.items()}  # first head
        self.pad: Pad = pad
        s = profile.serial
        self._transport = transport or make_transport(url, SerialSettings(
            baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity, stopbits=s.stopbits))
        self._backoff_min, self._backoff_max = backoff_min_s, backoff_max_s
        self._keepalive = keepalive_s
        board.register(device_id, "display", bound_to=",".join(self.addresses) or None)
        self._state: dict[int, bytes] = {}  # head address -> newest frame
        self._owner: dict[int, str] = {}  # head address -> counter whose state it shows
        # head address -> (sequence, update() time or None for a re-send), oldest first
        self._dirty: dict[int, tuple[int, float | None]] = {}
        # counter -> (call order, number shown or None, blink) for shared heads
        self._calls: dict[str, tuple[int, int | None, bool]] = {}
        self._order = itertools.count(1)
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
        heads = self.heads.get(counter_id)
        if heads is None:
            return False
        try:  # a number that does not fit is refused before anything changes
            encode(self.profile, heads[0], _command(number, blink), number, counter=counter_id,
                   pad=self.pad)
        except CodecError as exc:
            _LOGGER.warning("display %s: cannot show %r at %s: %s", self.id, number,
                            counter_id, exc)
            return False
        before = self._calls.get(counter_id)
        changed = before is None or before[1] != number or blink
        order = next(self._order) if changed or before is None else before[0]
        self._calls[counter_id] = (order, number, blink)
        now = time.perf_counter()
        for addr in heads:
            shown, (_, shown_number, shown_blink) = self._shown_at(addr, counter_id)
            frame = encode(self.profile, addr, _command(shown_number, shown_blink
                                                        and shown == counter_id),
                           shown_number, counter=shown, pad=self.pad)
            self._state[addr], self._owner[addr] = frame, shown
            self._seq += 1
            self._dirty.pop(addr, None)  # re-insert: oldest pending goes out first
            self._dirty[addr] = (self._seq, now)
        self._wake.set()
        return True

    def shown(self, addr: int) -> tuple[str, int | None] | None:
        """(counter, number) a head shows now, None before its first update."""
        owner = self._owner.get(addr)
        return None if owner is None else (owner, self._calls[owner][1])

    def pending(self) -> dict[str, bytes]:
        """Frames not yet written, newest per head, by the counter each head shows (what a
        reconnect will send first)."""
        return {self._owner[a]: self._state[a] for a in self._dirty}

    def _shown_at(self, addr: int, updated: str) -> tuple[str, tuple[int, int | None, bool]]:
        """The counter a head shows: the latest call among its counters, else blank (the
        counter just updated, showing nothing)."""
        calls = [(self._calls[c], c) for c in self.sharing[addr]
                 if c in self._calls and self._calls[c][1] is not None]
        if not calls:
            return updated, self._calls[updated]
        call, cid = max(calls)
        return cid, call

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
            for head in self._state:  # the display may have come back blank
                self._seq += 1
                self._dirty.setdefault(head, (self._seq, None))
            self.board.report(self.id, "ok")

    async def _drain(self) -> None:
        """Write pending frames oldest first; ping when idle; return only by raising."""
        while True:
            if not self._dirty:
                self._wake.clear()
                if not await wait_event(self._wake, self._keepalive):
                    await self._ping()
                continue
            head, entry = next(iter(self._dirty.items()))
            await self._transport.write(self._state[head])
            if self._dirty.get(head) == entry:
                del self._dirty[head]  # else a newer update arrived during the write
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


def _command(number: int | None, blink: bool) -> Command:
    return "clear" if number is None else ("blink" if blink else "show")
