"""Scanners and keypads: key decoding, scan payloads, keypad actions, devices that vanish.

There is no /dev/uinput here: HID devices are fakes that hand out ``evdev.InputEvent`` objects
from a script and record grab()/ungrab()/close(); serial scanners run over a socat pty pair.
"""

from __future__ import annotations

import asyncio
import errno
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from evdev import InputEvent, ecodes
from test_display import PtyPair, pty_pair  # noqa: F401 (the fixture)

from edge.devices.health import HealthBoard
from edge.devices.input.keypad import (
    KeypadAction,
    KeypadBuffer,
    KeypadService,
    compile_keymap,
)
from edge.devices.input.keys import KeyDecoder, Layout, char_for, key_events
from edge.devices.input.scan_payload import ScanRef, parse_scan
from edge.devices.input.scanner import ScannerService
from edge.devices.profiles import KeypadProfile, ScannerProfile
from edge.devices.transport.sim import sim_device

E = ecodes
DOWN, UP, REPEAT = 1, 0, 2


def press(*codes: int) -> list[tuple[int, int]]:
    return [ev for c in codes for ev in ((c, DOWN), (c, UP))]


def shifted(code: int) -> list[tuple[int, int]]:
    return [(E.KEY_LEFTSHIFT, DOWN), (code, DOWN), (code, UP), (E.KEY_LEFTSHIFT, UP)]


# --- key decoding --------------------------------------------------------------------------------

def test_decoder_with_shift_by_hand_us() -> None:
    d = KeyDecoder("us")
    events = [*shifted(E.KEY_A), *press(E.KEY_B), *shifted(E.KEY_SEMICOLON),
              *shifted(E.KEY_MINUS), *press(E.KEY_9, E.KEY_SLASH), *shifted(E.KEY_7),
              *shifted(E.KEY_5), *shifted(E.KEY_3), *press(E.KEY_EQUAL, E.KEY_DOT),
              *shifted(E.KEY_SLASH), *press(E.KEY_ENTER)]
    assert list(d.feed_many(events)) == ["Ab:_9/&%#=.?"]


def test_decoder_reads_a_url_typed_by_hand_us() -> None:
    k = E
    events = [*press(k.KEY_H, k.KEY_T, k.KEY_T, k.KEY_P, k.KEY_S), *shifted(k.KEY_SEMICOLON),
              *press(k.KEY_SLASH, k.KEY_SLASH, k.KEY_X, k.KEY_DOT, k.KEY_E, k.KEY_X, k.KEY_A,
                     k.KEY_M, k.KEY_P, k.KEY_L, k.KEY_E, k.KEY_SLASH, k.KEY_T, k.KEY_SLASH),
              *shifted(k.KEY_A), *press(k.KEY_B), *shifted(k.KEY_C), *shifted(k.KEY_MINUS),
              *press(k.KEY_D, k.KEY_MINUS, k.KEY_9, k.KEY_ENTER)]
    assert list(KeyDecoder("us").feed_many(events)) == ["https://x.example/t/AbC_d-9"]
    assert key_events("https://x.example/t/AbC_d-9", "us") == events


def test_decoder_jis_layout_by_hand() -> None:
    d = KeyDecoder("jis")
    # JIS: ':' is unshifted KEY_APOSTROPHE, '_' is Shift+ろ, '&' is Shift+6, '=' is Shift+-,
    # '"' is Shift+2, '@' is unshifted KEY_LEFTBRACE
    events = [*press(E.KEY_APOSTROPHE), *shifted(E.KEY_RO), *shifted(E.KEY_6),
              *shifted(E.KEY_MINUS), *shifted(E.KEY_2), *press(E.KEY_LEFTBRACE),
              *press(E.KEY_KPENTER)]
    assert list(d.feed_many(events)) == [':_&="@']
    assert char_for(E.KEY_0, shift=True, layout="jis") is None  # Shift+0 types nothing


URL = "https://x.example/t/AbC_d-9"


OTHER = "https://x/t/Zz09_-Zz?q=1&r=%2F;#"


@pytest.mark.parametrize("layout", ["us", "jis"])
def test_decoder_reads_a_full_url_scan(layout: Layout) -> None:
    d = KeyDecoder(layout)
    events = key_events(URL, layout) + key_events(OTHER, layout)
    assert list(d.feed_many(events)) == [URL, OTHER]


def test_decoder_keypad_keys_repeats_chords_caps_and_empty_scans() -> None:
    d = KeyDecoder()
    events = [
        *press(E.KEY_KP1, E.KEY_KP2, E.KEY_KPDOT, E.KEY_KPMINUS),
        (E.KEY_KP3, DOWN), (E.KEY_KP3, REPEAT), (E.KEY_KP3, REPEAT), (E.KEY_KP3, UP),
        (E.KEY_LEFTCTRL, DOWN), *press(E.KEY_V), (E.KEY_LEFTCTRL, UP),  # a shortcut, no 'v'
        *press(E.KEY_F5),  # types nothing
        *press(E.KEY_KPENTER),
        *press(E.KEY_ENTER),  # an empty scan is no scan
        *press(E.KEY_CAPSLOCK, E.KEY_A), *shifted(E.KEY_B), *press(E.KEY_CAPSLOCK, E.KEY_C),
        *press(E.KEY_ENTER),
    ]
    assert list(d.feed_many(events)) == ["12.-3", "Abc"]
    assert d.dropped == 1


def test_key_events_refuses_untypable_text() -> None:
    with pytest.raises(ValueError, match="cannot be typed"):
        key_events("番号", "us")


# --- scan payloads -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("https://madoguchi.city.example/t/AbC_d-9xY", ScanRef(token="AbC_d-9xY",
                                                          host="madoguchi.city.example")),
    ("HTTPS://x.example/t/AbCdEf12/", ScanRef(token="AbCdEf12", host="x.example")),
    ("https://x.example/ward/t/AbCdEf12?lang=ja#top", ScanRef(token="AbCdEf12", host="x.example")),
    ("http://10.0.0.5:8080/t/AbCdEf12", ScanRef(token="AbCdEf12", host="10.0.0.5")),
    ("  AbCdEf12\r\n", ScanRef(token="AbCdEf12")),
    ("a" * 64, ScanRef(token="a" * 64)),
    ("42", ScanRef(number=42)),
    ("0042", ScanRef(number=42)),
    ("9999", ScanRef(number=9999)),
    ("1", ScanRef(number=1)),
    ("12345678", ScanRef(token="12345678")),  # 8+ characters: a token, even if all digits
])
def test_parse_scan_accepts(text: str, expected: ScanRef) -> None:
    assert parse_scan(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "0", "10000", "-5", "４２", "4 2", "abc", "AbCdEf1", "a" * 65,
    "https://x.example/t/short", "https://x.example/x/AbCdEf12", "ftp://x.example/t/AbCdEf12",
    "https:///t/AbCdEf12", "https://x.example/t/AbCd Ef12", "https://x.example/t/AbCd%45f12",
    "https://[::1/t/AbCdEf12", "https://x.example/t/" + "a" * 65, "x" * 5000, "AbCd.Ef12",
])
def test_parse_scan_refuses_garbage(text: str) -> None:
    assert parse_scan(text) is None


# --- fake evdev devices --------------------------------------------------------------------------

def ev(code: int, value: int) -> InputEvent:
    return InputEvent(0, 0, E.EV_KEY, code, value)


class FakeDevice:
    """An opened input device: scripted events, then an error (or silence), records grabs."""

    def __init__(self, keys: list[tuple[int, int]], then: BaseException | None = None) -> None:
        self.events = [InputEvent(0, 0, E.EV_MSC, E.MSC_SCAN, 0x70004)]  # noise to skip
        for code, value in keys:
            self.events += [ev(code, value), InputEvent(0, 0, E.EV_SYN, 0, 0)]
        self.then = then
        self.grabbed = self.ungrabbed = self.closed = False

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.ungrabbed = True

    def close(self) -> None:
        self.closed = True

    async def _read(self) -> AsyncIterator[InputEvent]:
        for e in self.events:
            await asyncio.sleep(0)
            yield e
        if self.then is not None:
            raise self.then
        await asyncio.Event().wait()  # a live device with nothing more to say

    def async_read_loop(self) -> AsyncIterator[InputEvent]:
        return self._read()


class Opener:
    """Hands out the scripted devices in turn; ENOENT while "unplugged" (the list says None)."""

    def __init__(self, *devices: FakeDevice | None) -> None:
        self.devices = list(devices)
        self.calls = 0

    def __call__(self) -> FakeDevice:
        self.calls += 1
        dev = self.devices.pop(0) if self.devices else None
        if dev is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory",
                                    "/dev/input/by-id/usb-scanner-event-kbd")
        return dev


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def health(board: HealthBoard, device: str) -> tuple[str, str | None]:
    h = board.get(device)
    assert h is not None
    return h.state, h.reason


def scanner_profile(interface: str = "hid", **kw: object) -> ScannerProfile:
    if interface == "serial":
        kw.setdefault("serial", {"baudrate": 9600})
    return ScannerProfile.model_validate({
        "kind": "scanner", "id": f"test-{interface}", "vendor": "test", "name": "test",
        "notes": "for tests", "interface": interface, **kw})


# --- scanner service -----------------------------------------------------------------------------

async def test_hid_scanner_grabs_and_decodes_injected_events() -> None:
    dev = FakeDevice(key_events(URL) + key_events("]Q1" + "0042"))
    board = HealthBoard()
    scans: list[str] = []

    async def on_scan(text: str) -> None:
        scans.append(text)

    svc = ScannerService("scan-1", scanner_profile(prefix="]Q1"), Opener(dev), board, on_scan,
                         "c1")
    await svc.start()
    try:
        await wait_for(lambda: len(scans) == 2)
        assert scans == [URL, "0042"]  # the AIM prefix "]Q1" is stripped
        assert dev.grabbed  # exclusive: the scan never types into the kiosk browser
        assert health(board, "scan-1") == ("ok", None)
        assert board.get("scan-1").bound_to == "c1"  # type: ignore[union-attr]
    finally:
        await svc.stop()


async def test_hid_scanner_vanishes_goes_offline_and_recovers() -> None:
    half = key_events("AbCdEf99")[:-6]  # unplugged mid-scan: this half must not leak
    first = FakeDevice(key_events("AbCdEf12") + half, then=OSError(errno.ENODEV, "No such device"))
    second = FakeDevice(key_events("AbCdEf34"))
    opener = Opener(first, None, None, second)  # two failed reopen attempts in between
    board = HealthBoard()
    scans: list[str] = []
    states: list[tuple[str, str | None]] = []
    board.subscribe(lambda h: states.append((h.state, h.reason)) if not states
                    or states[-1] != (h.state, h.reason) else None)  # detail changes too
    svc = ScannerService("scan-1", scanner_profile(), opener, board, scans.append, "c1",
                         backoff_min_s=0.01, backoff_max_s=0.02)
    await svc.start()
    try:
        await wait_for(lambda: len(scans) == 2)
        assert scans == ["AbCdEf12", "AbCdEf34"]
        assert states == [("ok", None), ("offline", "unplugged"), ("ok", None)]
        assert first.ungrabbed
        assert first.closed
        assert second.grabbed
        assert opener.calls == 4
    finally:
        await svc.stop()


async def test_hid_scanner_that_is_missing_at_start_is_not_found() -> None:
    board = HealthBoard()
    svc = ScannerService("scan-1", scanner_profile(), Opener(), board, lambda t: None, "c1",
                         backoff_min_s=0.01)
    await svc.start()
    try:
        await wait_for(lambda: health(board, "scan-1") == ("offline", "not_found"))
    finally:
        await svc.stop()


async def test_a_failing_callback_does_not_stop_the_scanner() -> None:
    got: list[str] = []

    def on_scan(text: str) -> None:
        got.append(text)
        raise RuntimeError("engine said no")

    dev = FakeDevice(key_events("1") + key_events("2"))
    svc = ScannerService("s", scanner_profile(), Opener(dev), HealthBoard(), on_scan)
    await svc.start()
    try:
        await wait_for(lambda: got == ["1", "2"])
    finally:
        await svc.stop()


async def test_serial_scanner_over_a_pty(pty_pair: PtyPair) -> None:  # noqa: F811
    board = HealthBoard()
    scans: list[str] = []
    svc = ScannerService("scan-s", scanner_profile("serial"), f"serial://{pty_pair.a}", board,
                         scans.append, "c2", backoff_min_s=0.05, backoff_max_s=0.2)
    far = pty_pair.far_end()
    await svc.start()
    try:
        await wait_for(lambda: health(board, "scan-s") == ("ok", None))
        far.write(b"https://x/t/AbCdEf12\r")
        far.write(b"00")  # a scan split across reads
        await asyncio.sleep(0.05)
        far.write(b"42\r")
        await wait_for(lambda: len(scans) == 2)
        assert scans == ["https://x/t/AbCdEf12", "0042"]
        far.close()
        pty_pair.stop()
        await wait_for(lambda: health(board, "scan-s") == ("offline", "unplugged"))
        pty_pair.start()
        far = pty_pair.far_end()
        await wait_for(lambda: health(board, "scan-s") == ("ok", None))
        far.write(b"AbCdEf34\r")
        await wait_for(lambda: len(scans) == 3)
        assert scans[-1] == "AbCdEf34"
    finally:
        await svc.stop()
        far.close()


async def test_serial_scanner_on_sim_with_crlf_suffix_and_prefix() -> None:
    name = f"scanner-{uuid.uuid4().hex[:8]}"
    board = HealthBoard()
    scans: list[str] = []
    profile = scanner_profile("serial", suffix="\r\n", prefix="]Q1")
    svc = ScannerService("scan-s", profile, f"sim://{name}", board, scans.append)
    await svc.start()
    try:
        sim_device(name).feed(b"]Q1https://x/t/AbCdEf12\r\n7\r\n\r\n")
        await wait_for(lambda: len(scans) == 2)
        assert scans == ["https://x/t/AbCdEf12", "7"]
    finally:
        await svc.stop()


# --- keypad --------------------------------------------------------------------------------------

KEYMAP = {
    **{f"KEY_KP{d}": "digit" for d in range(10)},
    "KEY_KPENTER": "call_next", "KEY_KPPLUS": "call_number", "KEY_KPMINUS": "clear_absence",
    "KEY_BACKSPACE": "backspace", "KEY_ESC": "clear", "KEY_F1": "recall",
}
KEYPAD = KeypadProfile.model_validate({
    "kind": "keypad", "id": "test-pad", "vendor": "test", "name": "test", "notes": "for tests",
    "keymap": KEYMAP})


def test_keypad_buffer_sequences() -> None:
    b = KeypadBuffer()
    assert b.press("call_next") == KeypadAction("call_next", None)
    for d in (4, 2):
        assert b.press("digit", d) is None
    assert b.press("call_number") == KeypadAction("call_number", 42)
    assert b.digits == ""  # the action took the number
    for d in (1, 2, 3):
        b.press("digit", d)
    b.press("backspace")
    assert b.press("clear_absence") == KeypadAction("clear_absence", 12)
    b.press("digit", 9)
    b.press("clear")
    assert b.press("call_number") == KeypadAction("call_number", None)
    for d in (1, 2, 3, 4, 5, 6):  # a 5th and 6th digit are slips: ignored, counted
        b.press("digit", d)
    assert (b.digits, b.overflows) == ("1234", 2)
    assert b.press("call_number") == KeypadAction("call_number", 1234)
    b.press("backspace")  # on an empty buffer: nothing happens
    for d in (0, 0, 7):
        b.press("digit", d)
    assert b.press("recall") == KeypadAction("recall", 7)
    b.press("digit", 0)
    assert b.press("call_number") == KeypadAction("call_number", None)  # 0 is no ticket
    with pytest.raises(ValueError, match="digit"):
        b.press("digit", None)


def test_keymap_compiles_names_to_codes() -> None:
    km = compile_keymap(KEYPAD)
    assert km[E.KEY_KP7] == ("digit", 7)
    assert km[E.KEY_KPPLUS] == ("call_number", None)


async def test_keypad_service_turns_keys_into_actions() -> None:
    keys = [*press(E.KEY_KP4, E.KEY_KP2, E.KEY_KPPLUS),  # 42 + call_number
            *press(E.KEY_KPENTER),  # call next, no number
            *press(E.KEY_KP1, E.KEY_KP5, E.KEY_BACKSPACE, E.KEY_KP6, E.KEY_KPMINUS),  # 16 back
            (E.KEY_F1, DOWN), (E.KEY_F1, REPEAT), (E.KEY_F1, REPEAT), (E.KEY_F1, UP),  # once
            *press(E.KEY_A, E.KEY_KP9, E.KEY_ESC, E.KEY_KPENTER)]  # unmapped key; cleared
    dev = FakeDevice(keys)
    board = HealthBoard()
    got: list[KeypadAction] = []
    svc = KeypadService("pad-1", KEYPAD, Opener(dev), board, got.append, "c1")
    await svc.start()
    try:
        await wait_for(lambda: len(got) == 5)
        assert got == [KeypadAction("call_number", 42), KeypadAction("call_next", None),
                       KeypadAction("clear_absence", 16), KeypadAction("recall", None),
                       KeypadAction("call_next", None)]
        assert dev.grabbed
        assert health(board, "pad-1") == ("ok", None)
    finally:
        await svc.stop()


async def test_keypad_vanishing_drops_half_typed_digits_and_recovers() -> None:
    first = FakeDevice(press(E.KEY_KP4, E.KEY_KP2), then=OSError(errno.ENODEV, "No such device"))
    second = FakeDevice(press(E.KEY_KPPLUS, E.KEY_KP7, E.KEY_KPPLUS))
    board = HealthBoard()
    states: list[tuple[str, str | None]] = []
    board.subscribe(lambda h: states.append((h.state, h.reason)) if not states
                    or states[-1] != (h.state, h.reason) else None)  # detail changes too
    got: list[KeypadAction] = []

    async def on_action(a: KeypadAction) -> None:
        got.append(a)

    svc = KeypadService("pad-1", KEYPAD, Opener(first, None, second), board, on_action, "c1",
                        backoff_min_s=0.01)
    await svc.start()
    try:
        await wait_for(lambda: len(got) == 2)
        # the 42 typed before the loss is not applied to a key pressed after it
        assert got == [KeypadAction("call_number", None), KeypadAction("call_number", 7)]
        assert states == [("ok", None), ("offline", "unplugged"), ("ok", None)]
    finally:
        await svc.stop()
