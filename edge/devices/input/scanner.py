"""Barcode/QR scanners at a counter: keyboard-wedge (evdev HID) or serial; health; reconnect.

Why grab: a wedge scanner is a keyboard. Ungrabbed, every scan would also be typed into
whatever has focus on the counter PC (the kiosk browser, a form field); ``grab()`` makes the
scans ours alone. Why reopen with backoff: USB scanners get unplugged and re-plugged by staff;
the ``/dev/input/by-id/`` path comes back and the service picks it up without a restart.

``HidReader`` (open, grab, read key events, reopen) is shared with the keypad service.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from evdev import InputDevice, InputEvent, ecodes

from edge.devices.health import DeviceState, HealthBoard
from edge.devices.input.keys import KeyDecoder, Layout, terminator_keys
from edge.devices.profiles import ScannerProfile
from edge.devices.transport import SerialSettings, Transport, TransportError, make_transport

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0
SERIAL_READ_S = 1.0
MAX_LINE_BYTES = 4096

OnScan = Callable[[str], Awaitable[None] | None]
OnKey = Callable[[int, int], Awaitable[None]]


class InputDeviceLike(Protocol):
    """The part of ``evdev.InputDevice`` we use; tests pass a fake with scripted events."""

    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...
    def async_read_loop(self) -> AsyncIterator[InputEvent]: ...


DeviceOpener = Callable[[], InputDeviceLike]


def is_evdev_source(source: str) -> bool:
    """A device path or ``evdev:///dev/input/...``; anything else is a transport URL."""
    return source.startswith(("/", "evdev:"))


def evdev_opener(source: str) -> DeviceOpener:
    """Open ``/dev/input/by-id/...`` (a stable name that survives re-plugging)."""
    path = source.removeprefix("evdev:").removeprefix("//")

    def _open() -> InputDeviceLike:
        return InputDevice(path)
    return _open


async def call_back(fn: Callable[..., object], *args: object) -> None:
    """Run a sync or async callback; log its failure instead of killing the reader."""
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        _LOGGER.exception("input callback %r failed", fn)


class HidReader:
    """Open, grab and read one evdev device forever, reopening with backoff when it vanishes."""

    def __init__(self, device_id: str, source: str | DeviceOpener, board: HealthBoard,
                 on_key: OnKey, *, on_lost: Callable[[], None] | None = None,
                 backoff_min_s: float = BACKOFF_MIN_S,
                 backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self.id, self.board, self.on_key = device_id, board, on_key
        self.opener = evdev_opener(source) if isinstance(source, str) else source
        self.on_lost = on_lost
        self.backoff_min, self.backoff_max = backoff_min_s, backoff_max_s
        self.grabbed = False
        self._ever_open = False

    async def run(self) -> None:
        delay = self.backoff_min
        while True:
            device = await self._open()
            if device is not None:
                try:
                    async for ev in device.async_read_loop():
                        delay = self.backoff_min  # it works: the next loss retries quickly
                        if ev.type == ecodes.EV_KEY:
                            await self.on_key(ev.code, ev.value)
                    self._lost("unplugged", "event stream ended")
                except OSError as exc:
                    gone = exc.errno in (errno.ENODEV, errno.EIO, errno.ENOENT)
                    self._lost("unplugged" if gone else "read_failed", str(exc))
                except Exception as exc:  # never let one bad read end the reader for good
                    _LOGGER.exception("input device %s: read failed", self.id)
                    self._lost("read_failed", repr(exc))
                finally:
                    self._release(device)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _open(self) -> InputDeviceLike | None:
        def _open_and_grab() -> InputDeviceLike:
            device = self.opener()
            try:
                device.grab()
            except OSError:
                with contextlib.suppress(OSError):
                    device.close()
                raise
            return device

        try:
            device = await asyncio.to_thread(_open_and_grab)
        except OSError as exc:
            self._report_open_error(exc)
            return None
        except Exception as exc:  # e.g. a path that is not an input device
            self.board.report(self.id, "error", "not_found", repr(exc))
            return None
        self.grabbed, self._ever_open = True, True
        self.board.report(self.id, "ok")
        return device

    def _report_open_error(self, exc: OSError) -> None:
        state: DeviceState = "offline"
        if exc.errno in (errno.EACCES, errno.EPERM):
            state, code = "error", "permission"
        elif exc.errno == errno.EBUSY:
            state, code = "error", "busy"  # another program holds the grab
        else:
            code = "unplugged" if self._ever_open else "not_found"
        self.board.report(self.id, state, code, str(exc))

    def _lost(self, code: str, detail: str) -> None:
        _LOGGER.warning("input device %s lost: %s", self.id, detail)
        self.board.report(self.id, "offline" if code == "unplugged" else "error", code, detail)
        if self.on_lost is not None:
            self.on_lost()

    def _release(self, device: InputDeviceLike) -> None:
        self.grabbed = False
        with contextlib.suppress(OSError):
            device.ungrab()
        with contextlib.suppress(OSError):
            device.close()


class ScannerService:
    """One scanner; ``on_scan`` gets each scan's text (prefix and suffix removed).

    ``source``: an evdev path (``/dev/input/by-id/…`` or ``evdev:///dev/input/…``) or a
    ``DeviceOpener`` for keyboard-wedge scanners; a transport URL (``serial:///dev/ttyACM0``,
    ``sim://scanner-1``) or a ``Transport`` for scanners that send lines ending in the
    profile's suffix. The source decides, so a HID-profile scanner can run on ``sim://``.
    """

    def __init__(self, device_id: str, profile: ScannerProfile,
                 source: str | DeviceOpener | Transport, board: HealthBoard, on_scan: OnScan,
                 counter_id: str | None = None, *, layout: Layout = "us",
                 backoff_min_s: float = BACKOFF_MIN_S,
                 backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self.id, self.profile, self.board = device_id, profile, board
        self.on_scan, self.counter_id = on_scan, counter_id
        self.backoff_min, self.backoff_max = backoff_min_s, backoff_max_s
        self.scans = 0
        board.register(device_id, "scanner", bound_to=counter_id)
        self._task: asyncio.Task[None] | None = None
        self._transport: Transport | None = None
        self.hid: HidReader | None = None
        self.decoder = KeyDecoder(layout, terminator_keys(profile.suffix))
        # evdev path or opener: key events; a transport URL (serial:, sim:): lines of text
        if not isinstance(source, (str, Transport)) or (
                isinstance(source, str) and is_evdev_source(source)):
            self.hid = HidReader(device_id, source, board, self._on_key,
                                 on_lost=self.decoder.reset, backoff_min_s=backoff_min_s,
                                 backoff_max_s=backoff_max_s)
        elif isinstance(source, Transport):
            self._transport = source
        else:
            s = profile.serial
            settings = SerialSettings() if s is None else SerialSettings(
                baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity, stopbits=s.stopbits)
            self._transport = make_transport(source, settings)

    async def start(self) -> None:
        if self._task is None:
            run = self.hid.run() if self.hid is not None else self._run_serial()
            self._task = asyncio.create_task(run, name=f"scanner-{self.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._transport is not None:
            with contextlib.suppress(TransportError):
                await self._transport.close()

    async def _on_key(self, code: int, value: int) -> None:
        text = self.decoder.feed(code, value)
        if text is not None:
            await self._emit(text)

    async def _emit(self, text: str) -> None:
        text = text.strip("\r\n\t")
        if self.profile.prefix and text.startswith(self.profile.prefix):
            text = text[len(self.profile.prefix):]
        if not text:
            return
        self.scans += 1
        await call_back(self.on_scan, text)

    async def _run_serial(self) -> None:
        assert self._transport is not None
        t, suffix = self._transport, self.profile.suffix.encode()
        delay, ever_open = self.backoff_min, False
        while True:
            try:
                await t.open()
            except TransportError as exc:
                code = "unplugged" if exc.reason == "not_found" and ever_open else exc.reason
                state: DeviceState = "error" if code == "permission" else "offline"
                self.board.report(self.id, state, code, exc.detail)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            ever_open, delay = True, self.backoff_min
            self.board.report(self.id, "ok")
            buf = b""
            try:
                while True:
                    buf += await t.read(256, SERIAL_READ_S)
                    while suffix in buf:
                        line, buf = buf.split(suffix, 1)
                        await self._emit(line.decode("utf-8", errors="replace"))
                    if len(buf) > MAX_LINE_BYTES:
                        _LOGGER.warning("scanner %s: %d bytes without %r, dropped", self.id,
                                        len(buf), self.profile.suffix)
                        buf = b""
            except TransportError as exc:
                _LOGGER.warning("scanner %s: %s", self.id, exc)
                self.board.report(self.id, "offline", exc.reason, exc.detail)
                with contextlib.suppress(TransportError):
                    await t.close()
                await asyncio.sleep(delay)
