"""Counter displays: golden frames for both protocols, and the service over a real pty pair.

The golden bytes are worked out by hand in the comments, not produced by the code under test.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
import yaml
from conftest import unavailable

from edge.devices.display.codec import (
    CodecError,
    Frame,
    check_templates,
    decode,
    encode,
    format_number,
    split_frames,
)
from edge.devices.display.service import DisplayService
from edge.devices.health import HealthBoard
from edge.devices.profiles import DisplayProfile
from edge.devices.transport.sim import sim_device

STX, ETX = b"\x02", b"\x03"


ASCII_COMMANDS = {"show": "{addr:02d}D{number:04d}", "clear": "{addr:02d}C"}


def display(protocol: str = "ascii-stx", **kw: object) -> DisplayProfile:
    if protocol == "ascii-stx":
        kw["commands"] = {**ASCII_COMMANDS, **kw.get("commands", {})}  # type: ignore[dict-item]
    return DisplayProfile.model_validate({
        "kind": "display", "id": f"test-{protocol}", "vendor": "test", "name": "test",
        "notes": "for tests", "protocol": protocol, **kw})


ASCII, BINARY = display("ascii-stx"), display("binary-rs485")


# --- ascii-stx golden frames -------------------------------------------------------------------

@pytest.mark.parametrize(("profile", "addr", "command", "number", "expected"), [
    # "01D0042": 30^31=01 ^44=45 ^30=75 ^30=45 ^34=71 ^32=43, ^ETX 03 = 40
    (ASCII, 1, "show", 42, STX + b"01D0042" + ETX + b"40"),
    # "12B0007": 31^32=03 ^42=41 ^30=71 ^30=41 ^30=71 ^37=46, ^03 = 45
    (ASCII, 12, "blink", 7, STX + b"12B0007" + ETX + b"45"),
    # "05C": 30^35=05 ^43=46, ^03 = 45
    (ASCII, 5, "clear", None, STX + b"05C" + ETX + b"45"),
    # "01P": 30^31=01 ^50=51, ^03 = 52
    (ASCII, 1, "ping", None, STX + b"01P" + ETX + b"52"),
    # a profile template with another letter: "32S0999": 33^32=01 ^53=52 ^30=62 ^39=5B ^39=62
    # ^39=5B, ^03 = 58
    (display(commands={"show": "{addr:02d}S{number:04d}"}), 32, "show", 999,
     STX + b"32S0999" + ETX + b"58"),
])
def test_ascii_golden_frames(profile: DisplayProfile, addr: int, command: str,
                             number: int | None, expected: bytes) -> None:
    assert encode(profile, addr, command, number) == expected  # type: ignore[arg-type]


def test_ascii_blank_padding() -> None:
    # "07D  42": 30^37=07 ^44=43 ^20=63 ^20=43 ^34=77 ^32=45, ^03 = 46
    blank_template = display(commands={"show": "{addr:02d}D{number:4d}"})
    assert encode(blank_template, 7, "show", 42) == STX + b"07D  42" + ETX + b"46"
    assert decode(ASCII, STX + b"07D  42" + ETX + b"46")[0].number == 42
    # blink follows the show template's padding, with the letter B
    assert encode(blank_template, 7, "blink", 42)[:8] == STX + b"07B  42"


# --- binary-rs485 golden frames ----------------------------------------------------------------

@pytest.mark.parametrize(("profile", "addr", "command", "number", "pad", "expected"), [
    # AA | 03 01 02 | 00 42 | 03+01+02+00+42 = 48
    (BINARY, 3, "show", 42, "zero", "aa 03 01 02 00 42 48"),
    # AA | 10 02 02 | 12 34 | 10+02+02+12+34 = 5A
    (BINARY, 0x10, "blink", 1234, "zero", "aa 10 02 02 12 34 5a"),
    # blank nibbles F: FF F7; 03+02+02+FF+F7 = 1FD -> FD
    (BINARY, 3, "blink", 7, "blank", "aa 03 02 02 ff f7 fd"),
    # clear has no payload: 02+03+00 = 05
    (BINARY, 2, "clear", None, "zero", "aa 02 03 00 05"),
    # ping: 01+04+00 = 05
    (BINARY, 1, "ping", None, "zero", "aa 01 04 00 05"),
    # 3 digits: odd count gets a leading blank nibble: F0 42; 01+01+02+F0+42 = 136 -> 36
    (display("binary-rs485", digits=3), 1, "show", 42, "zero", "aa 01 01 02 f0 42 36"),
])
def test_binary_golden_frames(profile: DisplayProfile, addr: int, command: str,
                              number: int | None, pad: str, expected: str) -> None:
    frame = encode(profile, addr, command, number, pad=pad)  # type: ignore[arg-type]
    assert frame == bytes.fromhex(expected)


PROFILES = Path(__file__).resolve().parent.parent / "firmware-profiles"


@pytest.mark.parametrize(("name", "addr", "expected"), [
    # the examples written in the profiles' notes: show 123
    ("led-ascii-stx", 1, "02 30 31 44 30 31 32 33 03 34 36"),
    ("led-rs485-binary", 5, "aa 05 01 02 01 23 2c"),
])
def test_shipped_profiles_give_the_frames_their_notes_document(name: str, addr: int,
                                                              expected: str) -> None:
    path = PROFILES / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not in this checkout")
    profile = DisplayProfile.model_validate({**yaml.safe_load(path.read_text("utf-8")),
                                             "id": name})
    assert encode(profile, addr, "show", 123) == bytes.fromhex(expected)
    assert check_templates(profile) == []


@pytest.mark.parametrize("profile", [ASCII, BINARY, display("binary-rs485", digits=5),
                                     display("ascii-stx", digits=6, address_max=99,
                                             commands={"show": "{addr:02d}D{number:06d}"})])
@pytest.mark.parametrize("pad", ["zero", "blank"])
def test_round_trip(profile: DisplayProfile, pad: str) -> None:
    sent: list[tuple[int, str, int | None]] = []
    data = b""
    for addr in (profile.address_min, 7, profile.address_max):
        for number in (0, 1, 42, 10**profile.digits - 1):
            for command in ("show", "blink"):
                data += encode(profile, addr, command, number, pad=pad)  # type: ignore[arg-type]
                sent.append((addr, command, number))
        for command in ("clear", "ping"):
            data += encode(profile, addr, command)  # type: ignore[arg-type]
            sent.append((addr, command, None))
    back = decode(profile, data)
    assert [(f.addr, f.command, f.number) for f in back] == sent
    assert b"".join(f.raw for f in back) == data
    assert check_templates(profile) == []


@pytest.mark.parametrize("profile", [ASCII, BINARY])
def test_numbers_that_do_not_fit_are_refused_not_truncated(profile: DisplayProfile) -> None:
    with pytest.raises(CodecError, match="does not fit a 4-digit display"):
        encode(profile, 1, "show", 10000)
    with pytest.raises(CodecError, match="non-negative"):
        encode(profile, 1, "show", -1)
    with pytest.raises(CodecError, match="needs a number"):
        encode(profile, 1, "blink", None)
    assert format_number(9999, 4) == "9999"
    assert format_number(5, 4, "blank") == "   5"


@pytest.mark.parametrize("profile", [ASCII, BINARY])
@pytest.mark.parametrize("addr", [0, 33, -1, True])
def test_addresses_outside_the_profile_range_are_refused(profile: DisplayProfile,
                                                        addr: int) -> None:
    with pytest.raises(CodecError, match=r"outside 1\.\.32"):
        encode(profile, addr, "show", 1)


def test_decode_verifies_checksums_and_completeness() -> None:
    good = STX + b"01D0042" + ETX + b"40"
    with pytest.raises(CodecError, match="bad checksum"):
        decode(ASCII, good[:-2] + b"41")
    with pytest.raises(CodecError, match="incomplete"):
        decode(ASCII, good + good[:5])
    frames, rest = split_frames(ASCII, good + good[:5])
    assert [f.number for f in frames] == [42]
    assert rest == good[:5]
    assert decode(ASCII, good[:-2] + b"40".lower()) == decode(ASCII, good)
    bad = bytes.fromhex("aa 03 01 02 00 42 49")
    with pytest.raises(CodecError, match="bad checksum"):
        decode(BINARY, bad)
    with pytest.raises(CodecError, match="not BCD"):
        decode(BINARY, bytes.fromhex("aa 03 01 01 4a") + bytes([(3 + 1 + 1 + 0x4A) & 0xFF]))
    with pytest.raises(CodecError, match="sync"):
        decode(BINARY, b"\x00" + bad)


def test_template_problems_are_reported() -> None:
    clash = display(commands={"blink": "{addr:02d}D{number:04d}"})  # same letter as show
    assert any("blink" in p for p in check_templates(clash))
    unpadded = display(commands={"blink": "{addr:02d}B{number}"})
    assert any("fixed-width" in p for p in check_templates(unpadded))


# --- the service over a real pty pair (socat) ----------------------------------------------------

class PtyPair:
    """``socat`` joining two ptys with stable link names; stop() is the cable being pulled."""

    def __init__(self, root: Path) -> None:
        self.a, self.b = root / "a", root / "b"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["socat", "-d", "-d", f"pty,raw,echo=0,link={self.a}",
             f"pty,raw,echo=0,link={self.b}"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not (self.a.exists() and self.b.exists()):
            assert time.monotonic() < deadline, "socat did not create its ptys"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None

    def far_end(self) -> serial.Serial:
        return serial.Serial(str(self.b), 9600, timeout=0)


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[PtyPair]:
    if shutil.which("socat") is None:
        unavailable("socat not on PATH: install socat (apt install socat) for the pty-pair tests")
    pair = PtyPair(tmp_path)
    pair.start()
    yield pair
    pair.stop()


async def read_frames(port: serial.Serial, profile: DisplayProfile, count: int,
                      timeout: float = 5.0) -> list[Frame]:
    """Read at the far end until ``count`` frames arrived (pings skipped)."""
    frames: list[Frame] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        assert time.monotonic() < deadline, f"only {frames} arrived, buffer {buf!r}"
        buf += port.read(4096)
        got, buf = split_frames(profile, buf)
        frames += [f for f in got if f.command != "ping"]
        await asyncio.sleep(0.005)
    return frames


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def state(board: HealthBoard, device: str) -> tuple[str, str | None]:
    h = board.get(device)
    assert h is not None
    return h.state, h.reason


@pytest.mark.parametrize("profile", [ASCII, BINARY], ids=["ascii-stx", "binary-rs485"])
async def test_service_writes_frames_over_a_pty(pty_pair: PtyPair,
                                                profile: DisplayProfile) -> None:
    board = HealthBoard()
    svc = DisplayService("disp", profile, f"serial://{pty_pair.a}", board, {"c1": 1, "c2": 2},
                         keepalive_s=None)
    assert state(board, "disp") == ("offline", "starting")
    far = pty_pair.far_end()
    await svc.start()
    try:
        # all three before the worker first runs: c1's 42 is replaced by "clear" (latest wins)
        assert svc.update("c1", 42)
        assert svc.update("c2", 7, blink=True)
        assert svc.update("c1", None)
        frames = await read_frames(far, profile, 2)
        assert [(f.addr, f.command, f.number) for f in frames] == [
            (2, "blink", 7), (1, "clear", None)]
        svc.update("c1", 43)
        assert [f.number for f in await read_frames(far, profile, 1)] == [43]
        assert state(board, "disp") == ("ok", None)
        assert len(svc.latencies_s) >= 2
        assert not svc.update("nope", 1)  # not a counter this line serves
        assert not svc.update("c1", 10000)  # does not fit: refused, nothing queued
        assert svc.pending() == {}
    finally:
        await svc.stop()
        far.close()


async def test_service_keeps_the_latest_state_while_unplugged_and_resends_it(
        pty_pair: PtyPair) -> None:
    board = HealthBoard()
    svc = DisplayService("disp", ASCII, f"serial://{pty_pair.a}", board, {"c1": 1, "c2": 2},
                         keepalive_s=None, backoff_min_s=0.05, backoff_max_s=0.2)
    far = pty_pair.far_end()
    await svc.start()
    try:
        svc.update("c1", 10)
        assert [f.number for f in await read_frames(far, ASCII, 1)] == [10]
        far.close()
        pty_pair.stop()  # the cable is pulled
        for n in (11, 12, 13):
            svc.update("c1", n)
        await wait_for(lambda: state(board, "disp") == ("offline", "unplugged"))
        svc.update("c2", 5)
        svc.update("c1", 14)
        await asyncio.sleep(0.3)  # several reconnect attempts fail meanwhile
        assert state(board, "disp") == ("offline", "unplugged")
        assert list(svc.pending()) == ["c2", "c1"]  # newest per counter, nothing else
        pty_pair.start()  # plugged back in: same device path, new pty
        far = pty_pair.far_end()
        frames = await read_frames(far, ASCII, 2)
        assert sorted((f.addr, f.command, f.number) for f in frames) == [
            (1, "show", 14), (2, "show", 5)]
        await asyncio.sleep(0.1)
        assert far.read(4096) == b""  # 11, 12, 13 were never replayed
        assert state(board, "disp") == ("ok", None)
    finally:
        await svc.stop()
        far.close()


async def test_service_on_sim_resends_everything_after_a_reconnect() -> None:
    name = f"display-{uuid.uuid4().hex[:8]}"
    dev = sim_device(name)
    board = HealthBoard()
    svc = DisplayService("disp", BINARY, f"sim://{name}", board, {"c1": 1, "c2": 2},
                         keepalive_s=None, backoff_min_s=0.02, backoff_max_s=0.05)
    await svc.start()
    try:
        svc.update("c1", 1)
        svc.update("c2", 2)
        await wait_for(lambda: len(decode(BINARY, bytes(dev.received))) == 2)
        dev.faults.unplugged = True
        svc.update("c1", 3)
        await wait_for(lambda: state(board, "disp") == ("offline", "unplugged"))
        svc.update("c1", 4)
        dev.clear()
        dev.faults.unplugged = False
        # every counter's newest state, c2 included: the display may have come back blank
        await wait_for(lambda: len(decode(BINARY, bytes(dev.received))) == 2)
        assert sorted((f.addr, f.number) for f in decode(BINARY, bytes(dev.received))) == [
            (1, 4), (2, 2)]
        assert state(board, "disp") == ("ok", None)
    finally:
        await svc.stop()


async def test_missing_port_is_not_found_and_stop_never_hangs(tmp_path: Path) -> None:
    board = HealthBoard()
    svc = DisplayService("disp", ASCII, f"serial://{tmp_path}/none", board, {"c1": 1},
                         backoff_min_s=0.01, backoff_max_s=0.02)
    await svc.start()
    svc.update("c1", 1)
    await wait_for(lambda: state(board, "disp") == ("offline", "not_found"))
    await asyncio.wait_for(svc.stop(), 2)


async def test_idle_ping_finds_an_unplugged_line() -> None:
    name = f"display-{uuid.uuid4().hex[:8]}"
    dev = sim_device(name)
    board = HealthBoard()
    svc = DisplayService("disp", ASCII, f"sim://{name}", board, {"c1": 4}, keepalive_s=0.02,
                         backoff_min_s=0.02)
    await svc.start()
    try:
        await wait_for(lambda: STX + b"04P" in bytes(dev.received))
        dev.faults.unplugged = True
        await wait_for(lambda: state(board, "disp") == ("offline", "unplugged"))
    finally:
        await svc.stop()


def test_bad_address_in_config_fails_at_construction() -> None:
    with pytest.raises(CodecError, match="outside"):
        DisplayService("d", ASCII, "sim://x", HealthBoard(), {"c1": 99})
