"""Keyboard-wedge scanners: evdev key events back into the characters the scanner meant.

Why our own table: the scanner is grabbed exclusively (its "typing" must not reach the kiosk
browser), so no keyboard layout in X/Wayland ever sees these events. A wedge scanner emits the
key presses that would type its text on the layout it is configured for (US or JIS 106/109),
holding Shift for upper case and symbols; ``KeyDecoder`` reverses that. Key repeats (value 2)
are ignored: a scanner never holds a key, so a repeat is noise, not a character.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from evdev import ecodes

Layout = Literal["us", "jis"]
MAX_SCAN_CHARS = 4096  # a runaway "scan" without Enter is dropped, not kept forever

KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
ENTER_KEYS = frozenset({ecodes.KEY_ENTER, ecodes.KEY_KPENTER})
SHIFT_KEYS = frozenset({ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT})
# With Ctrl or Alt held a key is a shortcut, not a character
CHORD_KEYS = frozenset({ecodes.KEY_LEFTCTRL, ecodes.KEY_RIGHTCTRL, ecodes.KEY_LEFTALT,
                        ecodes.KEY_RIGHTALT, ecodes.KEY_LEFTMETA, ecodes.KEY_RIGHTMETA})


def _k(name: str) -> int:
    code: int = ecodes.ecodes[name]
    return code


def _table(pairs: dict[str, tuple[str, str | None]]) -> dict[int, tuple[str, str | None]]:
    return {_k(name): chars for name, chars in pairs.items()}


_LETTERS = {_k(f"KEY_{c}"): (c.lower(), c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_KEYPAD = _table({
    **{f"KEY_KP{d}": (str(d), str(d)) for d in range(10)},  # Num Lock on: scanners assume it
    "KEY_KPDOT": (".", "."), "KEY_KPSLASH": ("/", "/"), "KEY_KPASTERISK": ("*", "*"),
    "KEY_KPMINUS": ("-", "-"), "KEY_KPPLUS": ("+", "+"), "KEY_KPEQUAL": ("=", "="),
    "KEY_KPCOMMA": (",", ","), "KEY_SPACE": (" ", " "),
})
US = _table({
    "KEY_1": ("1", "!"), "KEY_2": ("2", "@"), "KEY_3": ("3", "#"), "KEY_4": ("4", "$"),
    "KEY_5": ("5", "%"), "KEY_6": ("6", "^"), "KEY_7": ("7", "&"), "KEY_8": ("8", "*"),
    "KEY_9": ("9", "("), "KEY_0": ("0", ")"), "KEY_MINUS": ("-", "_"), "KEY_EQUAL": ("=", "+"),
    "KEY_LEFTBRACE": ("[", "{"), "KEY_RIGHTBRACE": ("]", "}"), "KEY_BACKSLASH": ("\\", "|"),
    "KEY_SEMICOLON": (";", ":"), "KEY_APOSTROPHE": ("'", '"'), "KEY_GRAVE": ("`", "~"),
    "KEY_COMMA": (",", "<"), "KEY_DOT": (".", ">"), "KEY_SLASH": ("/", "?"),
    "KEY_102ND": ("\\", "|"),
})
# JIS 106/109: Shift+0 types nothing; the ろ (RO) and ¥ (YEN) keys exist only here
JIS = _table({
    "KEY_1": ("1", "!"), "KEY_2": ("2", '"'), "KEY_3": ("3", "#"), "KEY_4": ("4", "$"),
    "KEY_5": ("5", "%"), "KEY_6": ("6", "&"), "KEY_7": ("7", "'"), "KEY_8": ("8", "("),
    "KEY_9": ("9", ")"), "KEY_0": ("0", None), "KEY_MINUS": ("-", "="), "KEY_EQUAL": ("^", "~"),
    "KEY_LEFTBRACE": ("@", "`"), "KEY_RIGHTBRACE": ("[", "{"), "KEY_BACKSLASH": ("]", "}"),
    "KEY_SEMICOLON": (";", "+"), "KEY_APOSTROPHE": (":", "*"), "KEY_COMMA": (",", "<"),
    "KEY_DOT": (".", ">"), "KEY_SLASH": ("/", "?"), "KEY_RO": ("\\", "_"),
    "KEY_YEN": ("\\", "|"),
})
LAYOUTS: dict[Layout, dict[int, tuple[str, str | None]]] = {
    "us": {**_LETTERS, **_KEYPAD, **US},
    "jis": {**_LETTERS, **_KEYPAD, **JIS},
}


def char_for(code: int, shift: bool, layout: Layout = "us") -> str | None:
    """The character one key types, or None for keys that type nothing (F1, Ctrl, …)."""
    chars = LAYOUTS[layout].get(code)
    if chars is None:
        return None
    return chars[1] if shift else chars[0]


def terminator_keys(suffix: str) -> frozenset[int]:
    """Which keys end a scan, from the scanner profile's suffix (Enter, or Tab)."""
    return frozenset({ecodes.KEY_TAB}) if suffix == "\t" else ENTER_KEYS


class KeyDecoder:
    """Feed (code, value) key events; get each complete scan when its terminator key goes down.

    Pure and synchronous: the same bytes-in/text-out testability the codecs have.
    """

    def __init__(self, layout: Layout = "us", terminators: Iterable[int] = ENTER_KEYS) -> None:
        self.table = LAYOUTS[layout]
        self.terminators = frozenset(terminators)
        self._buf: list[str] = []
        self._held: set[int] = set()
        self._caps = False
        self.dropped = 0  # runaway or empty scans thrown away

    def feed(self, code: int, value: int) -> str | None:
        """One key event; returns the finished scan on its terminator, else None."""
        if value == KEY_UP:
            self._held.discard(code)
            return None
        if value != KEY_DOWN:
            return None
        if code in SHIFT_KEYS or code in CHORD_KEYS:
            self._held.add(code)
            return None
        if code == ecodes.KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in self.terminators:
            text, self._buf = "".join(self._buf), []
            if not text:
                self.dropped += 1
                return None
            return text
        if self._held & CHORD_KEYS:
            return None
        chars = self.table.get(code)
        if chars is None:
            return None
        shift = bool(self._held & SHIFT_KEYS)
        if self._caps and chars[0].isalpha():
            shift = not shift
        ch = chars[1] if shift else chars[0]
        if ch is None:
            return None
        if len(self._buf) >= MAX_SCAN_CHARS:
            self._buf.clear()
            self.dropped += 1
        self._buf.append(ch)
        return None

    def feed_many(self, events: Iterable[tuple[int, int]]) -> Iterator[str]:
        for code, value in events:
            scan = self.feed(code, value)
            if scan is not None:
                yield scan

    def reset(self) -> None:
        """Forget a half-read scan and held keys (after the device vanished mid-scan)."""
        self._buf.clear()
        self._held.clear()


def key_events(text: str, layout: Layout = "us", end: int = ecodes.KEY_ENTER
               ) -> list[tuple[int, int]]:
    """The (code, value) presses a wedge scanner on ``layout`` sends for ``text`` + Enter.

    The inverse of ``KeyDecoder``, for simulators and tests; ValueError for untypable text.
    """
    reverse: dict[str, tuple[int, bool]] = {}
    for code, (plain, shifted) in sorted(LAYOUTS[layout].items()):  # main row before keypad
        reverse.setdefault(plain, (code, False))
        if shifted is not None and shifted != plain:
            reverse.setdefault(shifted, (code, True))
    out: list[tuple[int, int]] = []
    for ch in text:
        if ch not in reverse:
            raise ValueError(f"{ch!r} cannot be typed on a {layout} layout")
        code, shift = reverse[ch]
        if shift:
            out.append((ecodes.KEY_LEFTSHIFT, KEY_DOWN))
        out += [(code, KEY_DOWN), (code, KEY_UP)]
        if shift:
            out.append((ecodes.KEY_LEFTSHIFT, KEY_UP))
    return [*out, (end, KEY_DOWN), (end, KEY_UP)]
