"""Hardware profiles (firmware-profiles/*.yaml): the schema, as pydantic models.

One YAML file per model, file name = id, ``inherits:`` for families. Unknown keys are errors.
Printers name their python-escpos capability profile instead of copying it.
Loading, inheritance and collation into one JSON live in ``profile_store.py``; the keys are
documented for people in ``firmware-profiles/README.md``.

Cross-field rules are model validators whose messages start with the key they blame
(``"escpos_profile: ..."``), so the loader can report ``file: key: message``.
"""

from __future__ import annotations

import json
import os
import re
from difflib import get_close_matches
from functools import cache
from importlib.resources import files
from pathlib import Path
from string import Formatter
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HexId = Annotated[str, Field(pattern=r"^[0-9a-f]{4}$", description="4 lowercase hex digits")]
Text = Annotated[str, Field(min_length=1)]


@cache
def escpos_profile_names() -> frozenset[str]:
    """Capability profile names python-escpos knows (``escpos.capabilities``).

    Reads the same file python-escpos reads (``$ESCPOS_CAPABILITIES_FILE`` or its packaged
    capabilities.json) instead of importing ``escpos.capabilities``, whose import configures
    root logging, makes a temp dir and parses the file with YAML (half a second).
    """
    custom = os.environ.get("ESCPOS_CAPABILITIES_FILE")
    if custom:
        data = yaml.safe_load(Path(custom).read_text(encoding="utf-8"))
    else:
        data = json.loads((files("escpos") / "capabilities.json").read_text(encoding="utf-8"))
    return frozenset(data["profiles"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UsbId(_Strict):
    vendor: HexId
    product: HexId


class Serial(_Strict):
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


class _Profile(_Strict):
    id: str  # the file name without .yaml; set by the loader, never written in the file
    vendor: Text
    name: Text
    notes: Text  # what is known, what is assumed, what to check on site
    usb: list[UsbId] = []  # ids for detection; [] when the device has no fixed id


class PrinterProfile(_Profile):
    kind: Literal["printer"]
    command_set: Literal["escpos", "star-graphic"] = "escpos"
    # python-escpos capability profile (escpos.capabilities), e.g. "TM-T88V"; escpos only
    escpos_profile: str | None = None
    japanese: Literal["kanji", "raster"]  # Kanji mode (FS &, Shift_JIS) or text drawn as image
    paper_width_dots: Annotated[int, Field(ge=256, le=832)]  # 576 = 80 mm, 384 = 58 mm at 203 dpi
    dpi: Literal[180, 203] = 203
    cut: Literal["partial", "full", "none"] = "partial"
    qr: Literal["native", "image"] = "native"  # GS ( k, or a raster image of the code
    status: Literal["dle-eot", "none"] = "dle-eot"  # real-time status (paper end, cover open)
    default_transport: Literal["usb", "serial", "tcp"] = "usb"

    @field_validator("escpos_profile")
    @classmethod
    def _known_to_escpos(cls, value: str | None) -> str | None:
        if value is not None and value not in escpos_profile_names():
            names = sorted(escpos_profile_names())
            near = get_close_matches(value, names, n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            raise ValueError(
                f"{value!r} is not a python-escpos capability profile{hint}; "
                f"known: {', '.join(names)}"
            )
        return value

    @model_validator(mode="after")
    def _fits_command_set(self) -> PrinterProfile:
        if self.command_set == "escpos" and self.escpos_profile is None:
            raise ValueError(
                "escpos_profile: required when command_set is escpos (e.g. TM-T88V, or default)"
            )
        if self.command_set == "star-graphic":
            # Star Graphic mode is raster only: every ESC/POS feature is unavailable.
            wrong = {
                "escpos_profile": (self.escpos_profile, None),
                "japanese": (self.japanese, "raster"),
                "qr": (self.qr, "image"),
                "status": (self.status, "none"),
            }
            for key, (value, needed) in wrong.items():
                if value != needed:
                    raise ValueError(
                        f"{key}: must be {json.dumps(needed)} for command_set star-graphic "
                        f"(raster only, no ESC/POS), got {json.dumps(value)}"
                    )
        return self


class ScannerProfile(_Profile):
    kind: Literal["scanner"]
    interface: Literal["hid", "serial"]
    serial: Serial | None = None  # required for interface serial, absent for hid
    suffix: Literal["\r", "\n", "\r\n", "\t"] = "\r"  # what ends one scan (HID: Enter = "\r")
    prefix: str = ""  # stripped from the front of a scan if present

    @model_validator(mode="after")
    def _serial_settings(self) -> ScannerProfile:
        if self.interface == "serial" and self.serial is None:
            raise ValueError("serial: required when interface is serial (e.g. baudrate: 9600)")
        if self.interface == "hid" and self.serial is not None:
            raise ValueError("serial: only for interface serial; a HID scanner has no port")
        return self


KeypadAction = Literal[
    "call_next", "recall", "hold", "call_held", "absent", "clear_absence", "cancel", "finish",
    "transfer", "call_number", "open", "close", "digit", "clear", "backspace",
]
_DIGIT_KEY = re.compile(r"^KEY_(KP)?[0-9]$")
_TEMPLATE_FIELDS = frozenset({"addr", "number", "counter", "digits"})


class KeypadProfile(_Profile):
    kind: Literal["keypad"]
    # evdev key name (e.g. KEY_KP1) -> action; "digit" keys type the digit in their name
    keymap: dict[Annotated[str, Field(pattern=r"^KEY_[A-Z0-9_]+$")], KeypadAction]

    @field_validator("keymap")
    @classmethod
    def _digits_on_digit_keys(cls, keymap: dict[str, KeypadAction]) -> dict[str, KeypadAction]:
        if not keymap:
            raise ValueError("map at least one key")
        for key, action in keymap.items():
            if action == "digit" and not _DIGIT_KEY.match(key):
                raise ValueError(
                    f"{key}: digit is only for keys named after a digit (KEY_KP0..KEY_KP9, "
                    "KEY_0..KEY_9)"
                )
        return keymap


class DisplayProfile(_Profile):
    kind: Literal["display"]
    protocol: Literal["ascii-stx", "binary-rs485"]  # framing: firmware-profiles/README.md
    serial: Serial = Serial()
    digits: Annotated[int, Field(ge=3, le=6)] = 4
    address_min: Annotated[int, Field(ge=0, le=255)] = 1
    address_max: Annotated[int, Field(ge=0, le=255)] = 32
    # ascii-stx frame bodies: str.format with {addr} {number} {digits} (ints), {counter} (the id)
    commands: dict[Literal["show", "blink", "clear", "ping"], str] = {}

    @model_validator(mode="after")
    def _fits_protocol(self) -> DisplayProfile:
        # 0 is left out: many units treat it as broadcast. ascii-stx writes 2 decimal digits.
        top = 99 if self.protocol == "ascii-stx" else 254
        if not 1 <= self.address_min <= self.address_max <= top:
            raise ValueError(
                f"address_min: need 1 <= address_min <= address_max <= {top} for {self.protocol}"
                f", got {self.address_min}..{self.address_max}"
            )
        if self.protocol == "binary-rs485":
            if self.commands:
                raise ValueError(
                    "commands: binary-rs485 frames are fixed by the protocol; templates are for "
                    "ascii-stx only"
                )
            return self
        for needed in ("show", "clear"):
            if needed not in self.commands:
                raise ValueError(f"commands: ascii-stx needs a {needed!r} template")
        for name, template in self.commands.items():
            problem = _template_problem(template, self.digits)
            if problem:
                raise ValueError(f"commands.{name}: {problem}")
        return self


def _template_problem(template: str, digits: int) -> str | None:
    """Why ``template`` cannot go between STX and ETX, or None when it can."""
    try:
        fields = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
        if not fields <= _TEMPLATE_FIELDS:
            unknown = ", ".join(sorted(f"{{{name}}}" for name in fields - _TEMPLATE_FIELDS))
            return (f"{template!r} uses {unknown}; the fields are {{addr}} {{number}} {{digits}} "
                    "{counter}")
        text = template.format(addr=1, number=10**digits - 1, digits=digits, counter="1")
    except (ValueError, KeyError, IndexError, AttributeError) as exc:  # e.g. {number:4q}, "{"
        return f"{template!r} is not a valid template: {exc!r}"
    if not text or not all(" " <= ch <= "~" for ch in text):
        return f"{template!r} must give printable ASCII (STX, ETX and checksum are added)"
    return None


Profile = Annotated[
    PrinterProfile | ScannerProfile | KeypadProfile | DisplayProfile,
    Field(discriminator="kind"),
]
