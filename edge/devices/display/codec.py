"""Counter display framing: pure bytes in and out, so every frame is testable byte for byte.

Two wire protocols, chosen by ``DisplayProfile.protocol``. Commands: ``show`` (steady number),
``blink`` (recall: the number flashes), ``clear`` (blank) and ``ping`` (liveness, no effect).

**ascii-stx** ::

    STX  body  ETX  CK CK
    0x02 ASCII 0x03 two ASCII hex digits (upper case when sent, either case accepted)

``body`` = 2-digit decimal address, one command letter, then the number (if any). It comes from
the profile's ``commands`` templates (``str.format`` with ``{addr}`` and ``{number}`` as ints and
``{counter}`` as the counter id), so the template decides zero (``{number:04d}``) or blank
(``{number:4d}``) padding. The profile must give ``show`` and ``clear``; ``blink`` defaults to the
show template with the letter ``B`` (``{addr:02d}B{number:04d}``), ``ping`` to ``{addr:02d}P``.
CK = XOR of every byte after STX up to and including ETX. Worked example, address 1, show 42 on
4 digits with ``show: "{addr:02d}D{number:04d}"``::

    body "01D0042" = 30 31 44 30 30 34 32, then ETX 03
    30^31=01, ^44=45, ^30=75, ^30=45, ^34=71, ^32=43, ^03=40  -> CK "40"
    frame: 02 30 31 44 30 30 34 32 03 34 30   (STX "01D0042" ETX "40")

**binary-rs485** ::

    0xAA  addr  func  len  payload[len]  sum
    sync  1-254 code  n    packed BCD    (addr + func + len + payload bytes) mod 256

Function codes (fixed by the protocol): show 0x01, blink 0x02, clear 0x03, ping 0x04. The
number is ``digits`` BCD nibbles, most significant first, two per byte; an odd count gets one
leading blank nibble. Blank = 0xF (``pad="blank"``), or leading zeros (``pad="zero"``, the default).
Clear and ping carry no payload. Worked example, address 3, show 42 on 4 digits::

    payload 00 42 (BCD "0042"), len 02
    sum 03+01+02+00+42 = 0x48
    frame: AA 03 01 02 00 42 48
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Literal

from edge.devices.profiles import DisplayProfile

Command = Literal["show", "blink", "clear", "ping"]
Pad = Literal["zero", "blank"]
COMMANDS: tuple[Command, ...] = ("show", "blink", "clear", "ping")
NEEDS_NUMBER: frozenset[Command] = frozenset({"show", "blink"})

STX, ETX, SYNC = 0x02, 0x03, 0xAA
BLANK_NIBBLE = 0xF
FUNCTIONS: dict[Command, int] = {"show": 0x01, "blink": 0x02, "clear": 0x03, "ping": 0x04}
_ASCII_DEFAULTS: dict[Command, str] = {
    "show": "{addr:02d}D{number:0{digits}d}",
    "blink": "{addr:02d}B{number:0{digits}d}",
    "clear": "{addr:02d}C",
    "ping": "{addr:02d}P",
}
_ADDR_LETTER = re.compile(r"^(\{addr[^}]*\})[A-Za-z]")
_PRINTABLE = frozenset(string.printable.encode()) - frozenset(b"\t\n\r\x0b\x0c")


class CodecError(ValueError):
    """A frame cannot be built (number too long, bad address) or parsed (bad checksum)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One parsed frame; ``command`` is None when the code is not one the profile knows."""

    addr: int
    command: Command | None
    code: int  # ascii-stx: the command letter's byte; binary-rs485: the function byte
    number: int | None
    raw: bytes


def format_number(number: int, digits: int, pad: Pad = "zero") -> str:
    """``42`` -> ``"0042"`` or ``"  42"``; CodecError if it does not fit (never truncate)."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise CodecError(f"number must be a non-negative integer, got {number!r}")
    if number >= 10**digits:
        raise CodecError(f"number {number} does not fit a {digits}-digit display")
    return f"{number:0{digits}d}" if pad == "zero" else f"{number:{digits}d}"


def check_address(profile: DisplayProfile, addr: int) -> None:
    lo, hi = profile.address_min, profile.address_max
    if isinstance(addr, bool) or not isinstance(addr, int) or not lo <= addr <= hi:
        raise CodecError(f"display address {addr!r} outside {lo}..{hi} ({profile.id})")


def encode(profile: DisplayProfile, addr: int, command: Command, number: int | None = None, *,
           counter: str = "", pad: Pad = "zero") -> bytes:
    """One complete frame for ``command``; ``number`` is required for show and blink.

    ``pad`` applies to binary-rs485 (ascii-stx templates carry their own padding).
    """
    check_address(profile, addr)
    if command not in COMMANDS:
        raise CodecError(f"unknown display command {command!r}")
    if command in NEEDS_NUMBER:
        if number is None:
            raise CodecError(f"{command} needs a number")
        digits = format_number(number, profile.digits, pad)
    else:
        digits = ""
    if profile.protocol == "ascii-stx":
        return _encode_ascii(profile, addr, command, number, counter)
    return _encode_binary(profile, addr, command, digits)


def _template(profile: DisplayProfile, command: Command) -> str:
    t = profile.commands.get(command)
    if t is not None:
        return t
    show = profile.commands.get("show")
    if command == "blink" and show is not None and _ADDR_LETTER.match(show):
        return _ADDR_LETTER.sub(lambda m: m.group(1) + "B", show, count=1)
    return _ASCII_DEFAULTS[command]


def _encode_ascii(profile: DisplayProfile, addr: int, command: Command, number: int | None,
                  counter: str) -> bytes:
    fields: dict[str, object] = {"addr": addr, "counter": counter, "digits": profile.digits}
    if number is not None:
        fields["number"] = number
    try:
        body = _template(profile, command).format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise CodecError(f"{profile.id}: command template {command!r} failed: {exc!r}") from None
    try:
        raw = body.encode("ascii")
    except UnicodeEncodeError:
        raise CodecError(f"{profile.id}: {command!r} frame body is not ASCII: {body!r}") from None
    if not raw or any(b not in _PRINTABLE for b in raw):
        raise CodecError(f"{profile.id}: {command!r} frame body {body!r} has control bytes")
    return bytes([STX]) + raw + bytes([ETX]) + f"{xor(raw + bytes([ETX])):02X}".encode()


def xor(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


def _encode_binary(profile: DisplayProfile, addr: int, command: Command, digits: str) -> bytes:
    nibbles = [BLANK_NIBBLE if c == " " else int(c) for c in digits]
    if len(nibbles) % 2:
        nibbles.insert(0, BLANK_NIBBLE)
    payload = bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    head = bytes([addr, FUNCTIONS[command], len(payload)])
    return bytes([SYNC]) + head + payload + bytes([(sum(head) + sum(payload)) & 0xFF])


# --- decoding --------------------------------------------------------------------------------

def decode(profile: DisplayProfile, data: bytes) -> list[Frame]:
    """All frames in ``data``; CodecError on a bad checksum, stray bytes or a cut-off frame."""
    frames, rest = split_frames(profile, data)
    if rest:
        raise CodecError(f"incomplete frame at the end: {rest.hex(' ')}")
    return frames


def split_frames(profile: DisplayProfile, data: bytes) -> tuple[list[Frame], bytes]:
    """Complete frames, and the unfinished tail to prepend to the next read (for streams)."""
    if profile.protocol == "ascii-stx":
        return _split_ascii(profile, data)
    return _split_binary(profile, data)


def _split_ascii(profile: DisplayProfile, data: bytes) -> tuple[list[Frame], bytes]:
    letters = _ascii_letters(profile)
    frames: list[Frame] = []
    i = 0
    while i < len(data):
        if data[i] != STX:
            raise CodecError(f"expected STX at byte {i}, got {data[i]:#04x}")
        end = data.find(ETX, i + 1)
        if end == -1 or end + 3 > len(data):
            return frames, data[i:]
        body, ck = data[i + 1:end], data[end + 1:end + 3]
        want = xor(body + bytes([ETX]))
        try:
            got = int(ck.decode("ascii"), 16)
        except ValueError:
            raise CodecError(f"checksum {ck!r} is not two hex digits") from None
        if got != want:
            raise CodecError(f"bad checksum in {data[i:end + 3]!r}: {got:02X} != {want:02X}")
        if len(body) < 3 or not body[:2].isdigit():
            raise CodecError(f"frame body {body!r} lacks address and command letter")
        text = body[3:].decode("ascii").strip()
        frames.append(Frame(addr=int(body[:2]), command=letters.get(body[2]), code=body[2],
                            number=int(text) if text.isdigit() else None,
                            raw=data[i:end + 3]))
        i = end + 3
    return frames, b""


def _ascii_letters(profile: DisplayProfile) -> dict[int, Command]:
    """Command letter -> command, read off the templates (the letter follows the address)."""
    out: dict[int, Command] = {}
    for c in COMMANDS:
        try:
            body = _encode_ascii(profile, profile.address_min, c, 0, "")[1:]
        except CodecError:
            continue
        if len(body) > 2:
            out.setdefault(body[2], c)
    return out


def _split_binary(profile: DisplayProfile, data: bytes) -> tuple[list[Frame], bytes]:
    functions = {code: c for c, code in FUNCTIONS.items()}
    frames: list[Frame] = []
    i = 0
    while i < len(data):
        if data[i] != SYNC:
            raise CodecError(f"expected sync 0xAA at byte {i}, got {data[i]:#04x}")
        if i + 4 > len(data) or i + 5 + data[i + 3] > len(data):
            return frames, data[i:]
        n = data[i + 3]
        head, payload = data[i + 1:i + 4], data[i + 4:i + 4 + n]
        ck = data[i + 4 + n]
        want = (sum(head) + sum(payload)) & 0xFF
        if ck != want:
            raise CodecError(f"bad checksum in {data[i:i + 5 + n].hex(' ')}:"
                             f" {ck:02X} != {want:02X}")
        frames.append(Frame(addr=head[0], command=functions.get(head[1]), code=head[1],
                            number=_bcd(payload), raw=data[i:i + 5 + n]))
        i += 5 + n
    return frames, b""


def _bcd(payload: bytes) -> int | None:
    nibbles = [n for b in payload for n in (b >> 4, b & 0xF)]
    if any(9 < n < BLANK_NIBBLE for n in nibbles):
        raise CodecError(f"payload {payload.hex(' ')} is not BCD")
    text = "".join(str(n) for n in nibbles if n != BLANK_NIBBLE)
    return int(text) if text else None


def check_templates(profile: DisplayProfile) -> list[str]:
    """Problems with a profile's command templates (for ``madoguchi profiles check``)."""
    problems: list[str] = []
    big = 10**profile.digits - 1
    for c in COMMANDS:
        try:
            frames = [encode(profile, profile.address_min, c, n) for n in (1, big)]
            back = decode(profile, frames[1])[0]
        except CodecError as exc:
            problems.append(f"{c}: {exc}")
            continue
        if len(frames[0]) != len(frames[1]):
            problems.append(f"{c}: number field is not fixed-width ({profile.digits} digits)")
        if back.command != c or back.addr != profile.address_min:
            problems.append(f"{c}: frame does not decode back to {c!r} (letter clash?)")
        elif c in NEEDS_NUMBER and back.number != big:
            problems.append(f"{c}: number {big} decodes as {back.number}")
    return problems
