"""Hardware profiles (firmware-profiles/*.yaml): the schema, as pydantic models.

One YAML file per model, file name = id, ``inherits:`` for families. Unknown keys are errors.
Printers name their python-escpos capability profile instead of copying it.
Loading, inheritance and collation into one JSON live in ``profile_store.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

HexId = Annotated[str, Field(pattern=r"^[0-9a-f]{4}$", description="4 lowercase hex digits")]


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
    id: str
    vendor: str
    name: str
    notes: str
    usb: list[UsbId] = []


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


class ScannerProfile(_Profile):
    kind: Literal["scanner"]
    interface: Literal["hid", "serial"]
    serial: Serial | None = None
    suffix: Literal["\r", "\n", "\r\n", "\t"] = "\r"  # what ends one scan
    prefix: str = ""  # stripped from the front of a scan if present


KeypadAction = Literal[
    "call_next", "recall", "hold", "call_held", "absent", "clear_absence", "cancel", "finish",
    "transfer", "call_number", "open", "close", "digit", "clear", "backspace",
]


class KeypadProfile(_Profile):
    kind: Literal["keypad"]
    # evdev key name (e.g. KEY_KP1) -> action; "digit" keys type the digit in their name
    keymap: dict[Annotated[str, Field(pattern=r"^KEY_[A-Z0-9_]+$")], KeypadAction]


class DisplayProfile(_Profile):
    kind: Literal["display"]
    protocol: Literal["ascii-stx", "binary-rs485"]
    serial: Serial = Serial()
    digits: Annotated[int, Field(ge=3, le=6)] = 4
    address_min: Annotated[int, Field(ge=0, le=255)] = 1
    address_max: Annotated[int, Field(ge=0, le=255)] = 32
    # command templates (ascii-stx): str.format fields {addr} {number} {counter}
    commands: dict[Literal["show", "blink", "clear", "ping"], str] = {}


Profile = Annotated[
    PrinterProfile | ScannerProfile | KeypadProfile | DisplayProfile,
    Field(discriminator="kind"),
]
