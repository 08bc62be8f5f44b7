"""Counter keypads (USB numeric pads with labelled keys): key presses -> queue actions.

Why a buffer: the clerk types a ticket number and then presses what to do with it ("call 42",
"42 came back: clear absence"); keys without a typed number act on the queue ("call next").
``KeypadBuffer`` is that state machine alone, so it is tested without any device; the service
adds the evdev device (grabbed, so the keys do not reach the browser) and reconnects.

A ``sim://name`` keypad (the demo, the ward's simulated sites) reads lines of key names from
the simulator instead, e.g. ``sim_device(name).feed(b"KEY_KP4 KEY_KP2 KEY_KPENTER\n")``: one
press per name, so everything after the device (key map, buffer, routing) is the real path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import get_args

from evdev import ecodes

from edge.devices.health import HealthBoard
from edge.devices.input.keys import KEY_DOWN
from edge.devices.input.scanner import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    MAX_LINE_BYTES,
    SERIAL_READ_S,
    DeviceOpener,
    HidReader,
    call_back,
)
from edge.devices.profiles import KeypadAction as ActionName
from edge.devices.profiles import KeypadProfile

MAX_DIGITS = 4  # ticket numbers run 1..9999
EDIT_ACTIONS: frozenset[ActionName] = frozenset({"digit", "clear", "backspace"})
ACTIONS: tuple[ActionName, ...] = tuple(a for a in get_args(ActionName) if a not in EDIT_ACTIONS)


@dataclass(frozen=True, slots=True)
class KeypadAction:
    """What the clerk asked for; ``number`` is the typed ticket number, if any."""

    action: ActionName
    number: int | None = None


class KeypadBuffer:
    """Digits typed so far; an action key takes them (as a number) and empties the buffer."""

    def __init__(self, max_digits: int = MAX_DIGITS) -> None:
        self.max_digits = max_digits
        self.digits = ""
        self.overflows = 0  # digits ignored because the buffer was full

    @property
    def number(self) -> int | None:
        """The typed number, None if nothing (or only zeros) was typed."""
        n = int(self.digits) if self.digits else 0
        return n or None

    def press(self, action: ActionName, digit: int | None = None) -> KeypadAction | None:
        """Apply one key; return the action it completes, None for editing keys."""
        if action == "digit":
            if digit is None or not 0 <= digit <= 9:
                raise ValueError(f"digit key without a digit: {digit!r}")
            if len(self.digits) >= self.max_digits:
                self.overflows += 1  # keep what was typed: a 5th digit is a slip, not intent
            else:
                self.digits += str(digit)
            return None
        if action == "backspace":
            self.digits = self.digits[:-1]
            return None
        if action == "clear":
            self.digits = ""
            return None
        out = KeypadAction(action, self.number)
        self.digits = ""
        return out


def compile_keymap(profile: KeypadProfile) -> dict[int, tuple[ActionName, int | None]]:
    """evdev code -> (action, digit) from the profile's key names; ValueError on a bad name."""
    out: dict[int, tuple[ActionName, int | None]] = {}
    for name, action in profile.keymap.items():
        code = ecodes.ecodes.get(name)
        if not isinstance(code, int):
            raise ValueError(f"{profile.id}: unknown key name {name!r}")
        digit: int | None = None
        if action == "digit":
            if not name[-1].isdigit():
                raise ValueError(f"{profile.id}: digit key {name!r} has no digit in its name")
            digit = int(name[-1])
        out[code] = (action, digit)
    return out


OnAction = Callable[[KeypadAction], Awaitable[None] | None]


class KeypadService:
    """One keypad at one counter; ``on_action`` gets each completed ``KeypadAction``."""

    def __init__(self, device_id: str, profile: KeypadProfile, source: str | DeviceOpener,
                 board: HealthBoard, on_action: OnAction, counter_id: str | None = None, *,
                 backoff_min_s: float = BACKOFF_MIN_S,
                 backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self.id, self.profile, self.board = device_id, profile, board
        self.on_action, self.counter_id = on_action, counter_id
        self.keymap = compile_keymap(profile)
        self.buffer = KeypadBuffer()
        board.register(device_id, "keypad", bound_to=counter_id)
        self.sim = source if isinstance(source, str) and source.startswith("sim://") else None
        self.hid = HidReader(device_id, source, board, self._on_key, on_lost=self._on_lost,
                             backoff_min_s=backoff_min_s, backoff_max_s=backoff_max_s)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            run = self.hid.run() if self.sim is None else self._run_sim(self.sim)
            self._task = asyncio.create_task(run, name=f"keypad-{self.id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_sim(self, url: str) -> None:
        """Lines of key names from a simulator; an unknown name is ignored like a key the
        profile does not map."""
        from edge.devices.transport import TransportError, make_transport

        t = make_transport(url)
        while True:
            try:
                await t.open()
                self.board.report(self.id, "ok")
                buf = b""
                while True:
                    buf += await t.read(256, SERIAL_READ_S)
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        for name in line.decode("ascii", errors="replace").split():
                            code = ecodes.ecodes.get(name)
                            if isinstance(code, int):
                                await self._on_key(code, KEY_DOWN)
                    buf = buf[-MAX_LINE_BYTES:]
            except TransportError as exc:
                self.board.report(self.id, "offline", exc.reason, exc.detail)
                self._on_lost()
                with contextlib.suppress(TransportError):
                    await t.close()
                await asyncio.sleep(self.hid.backoff_min)

    async def _on_key(self, code: int, value: int) -> None:
        if value != KEY_DOWN:  # repeats would turn a held "call next" into several calls
            return
        entry = self.keymap.get(code)
        if entry is None:
            return
        done = self.buffer.press(*entry)
        if done is not None:
            await call_back(self.on_action, done)

    def _on_lost(self) -> None:
        self.buffer.press("clear")  # half-typed digits from before the loss are stale
