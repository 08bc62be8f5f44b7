"""``sim://name``: in-process devices with fault switches, for the demo and the tests.

A simulated device records every byte it receives, answers ESC/POS real-time status requests
(DLE EOT n) from its fault switches like a TM-T88 does, and hands out bytes queued with
``feed()`` (a serial scanner's scans). Nothing in the product branches on "is this a sim".
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from edge.devices.transport.base import Transport, TransportError

DLE_EOT = b"\x10\x04"
_FIXED = 0x12  # bits 1 and 4 of every DLE EOT answer are fixed to 1


@dataclass
class Faults:
    unplugged: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False
    cutter_error: bool = False
    slow_s: float = 0.0  # delay per write (a slow link)
    fail_after: int | None = None  # accept this many more bytes, then unplug (mid-ticket)


@dataclass
class SimDevice:
    name: str
    answers_status: bool = True
    faults: Faults = field(default_factory=Faults)
    received: bytearray = field(default_factory=bytearray)  # every byte that arrived
    printed: bytearray = field(default_factory=bytearray)  # what a working device output
    writes: int = 0
    _inbox: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _data: asyncio.Event | None = None

    def feed(self, data: bytes) -> None:
        """Queue bytes for the host to read (e.g. a serial scanner's scan)."""
        with self._lock:
            self._inbox += data
        if self._data is not None:
            self._data.set()

    def status_byte(self, n: int) -> int:
        f = self.faults
        if n == 1:
            offline = f.paper_out or f.cover_open or f.cutter_error
            return _FIXED | (0x08 if offline else 0)
        if n == 2:
            return _FIXED | (0x04 if f.cover_open else 0) | (0x20 if f.paper_out else 0) \
                | (0x40 if (f.cover_open or f.paper_out or f.cutter_error) else 0)
        if n == 3:
            return _FIXED | (0x08 if f.cutter_error else 0)
        if n == 4:
            return _FIXED | (0x0C if f.paper_near_end or f.paper_out else 0) \
                | (0x60 if f.paper_out else 0)
        return _FIXED

    def _answer(self, data: bytes) -> None:
        if not self.answers_status:
            return
        i = data.find(DLE_EOT)
        while i != -1 and i + 2 < len(data):
            self.feed(bytes([self.status_byte(data[i + 2])]))
            i = data.find(DLE_EOT, i + 3)

    def clear(self) -> None:
        self.received.clear()
        self.printed.clear()
        self.writes = 0


SIMS: dict[str, SimDevice] = {}
_SIMS_LOCK = threading.Lock()


def sim_device(name: str, *, answers_status: bool = True) -> SimDevice:
    """The simulator called ``name`` (created on first use; shared by all its transports)."""
    with _SIMS_LOCK:
        dev = SIMS.get(name)
        if dev is None:
            dev = SIMS[name] = SimDevice(name, answers_status=answers_status)
        return dev


class SimTransport(Transport):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url)
        self.device = sim_device(name)
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open and not self.device.faults.unplugged

    async def open(self) -> None:
        if self.device.faults.unplugged:
            raise TransportError("unplugged", self.url)
        self.device._data = asyncio.Event()
        self._open = True

    async def write(self, data: bytes) -> None:
        dev = self.device
        if not self.is_open:
            raise TransportError("unplugged", self.url)
        if dev.faults.slow_s:
            await asyncio.sleep(dev.faults.slow_s)
        if dev.faults.fail_after is not None and len(data) > dev.faults.fail_after:
            part = data[: dev.faults.fail_after]
            dev.received += part
            dev.faults.fail_after, dev.faults.unplugged = None, True
            self._open = False
            raise TransportError("unplugged", f"{self.url}: gone after {len(part)} bytes")
        if dev.faults.fail_after is not None:
            dev.faults.fail_after -= len(data)
        dev.received += data
        dev.writes += 1
        f = dev.faults
        if not (f.paper_out or f.cover_open or f.cutter_error):
            dev.printed += data
        dev._answer(data)

    async def read(self, size: int, timeout: float) -> bytes:
        dev = self.device
        if not self.is_open:
            raise TransportError("unplugged", self.url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with dev._lock:
                if dev._inbox:
                    out = bytes(dev._inbox[:size])
                    del dev._inbox[:size]
                    return out
                if dev._data is not None:
                    dev._data.clear()
            left = deadline - loop.time()
            if left <= 0 or dev._data is None:
                return b""
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dev._data.wait(), min(left, 0.05))
            if dev.faults.unplugged:
                raise TransportError("unplugged", self.url)

    async def close(self) -> None:
        self._open = False
