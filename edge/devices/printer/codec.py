"""The printer codec: a ticket to the bytes of the profile's command set, and status bytes to
a health state. Pure functions: the service (``service.py``) owns the transport and timing.

Status is ESC/POS real-time status, ``DLE EOT n`` for n = 1..4, one byte answered for each.
Those bytes always have bit 1 and bit 4 set and bit 0 and bit 7 clear; a byte that does not is
not a status answer (a late reply out of step, line noise, a printer in another mode), and is
refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile

DLE_EOT = b"\x10\x04"
_FIXED_MASK, _FIXED_VALUE = 0x93, 0x12  # bits 0, 1, 4, 7 must read 0, 1, 1, 0

HealthState = Literal["ok", "degraded", "error"]


class StatusError(ValueError):
    """Bytes that are not an answer to ``status_request()``."""


def render(profile: PrinterProfile, ticket: TicketPrint) -> bytes:
    """The bytes that print ``ticket`` on a printer of ``profile``."""
    if profile.command_set == "star-graphic":
        from edge.devices.printer.star import render_star_graphic

        return render_star_graphic(profile, ticket)
    from edge.devices.printer.escpos import render_escpos

    return render_escpos(profile, ticket)


def status_request() -> bytes:
    """DLE EOT 1 (printer), 2 (offline cause), 3 (error cause), 4 (paper roll sensor)."""
    return b"".join(DLE_EOT + bytes([n]) for n in (1, 2, 3, 4))


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the four status bytes say, in the terms the health board uses."""

    online: bool
    paper_out: bool
    paper_near_end: bool
    cover_open: bool
    error: bool  # autocutter, unrecoverable or auto-recoverable error

    def health(self) -> tuple[HealthState, str | None]:
        """(state, reason code of ``edge.devices.health.REASONS``), worst cause first: a cover
        left open also reads as paper end on many models, and closing it is the fix."""
        if self.cover_open:
            return ("error", "cover_open")
        if self.paper_out:
            return ("error", "paper_out")
        if self.error or not self.online:
            return ("error", "printer_error")
        if self.paper_near_end:
            return ("degraded", "paper_near_end")
        return ("ok", None)


def parse_status(answer: bytes) -> PrinterStatus:
    """Decode the four bytes answering ``status_request()``; StatusError if they are not."""
    if len(answer) != 4:
        raise StatusError(f"expected 4 status bytes (DLE EOT 1..4), got {len(answer)}: "
                          f"{answer[:16].hex(' ') or 'nothing'}")
    bad = [f"n={n}: {b:02x}" for n, b in enumerate(answer, 1) if b & _FIXED_MASK != _FIXED_VALUE]
    if bad:
        raise StatusError("not a DLE EOT status answer (bits 1 and 4 must be set, bits 0 and 7 "
                          f"clear): {', '.join(bad)}")
    printer, offline, error, paper = answer
    feeding = bool(offline & 0x08)  # paper fed with the FEED button: offline, but not a fault
    return PrinterStatus(
        online=not (printer & 0x08) or feeding,
        paper_out=bool(offline & 0x20) or bool(paper & 0x60),
        paper_near_end=bool(paper & 0x0C),
        cover_open=bool(offline & 0x04),
        error=bool(offline & 0x40) or bool(error & 0x68),
    )


def warm_up() -> None:
    """Pay one-off costs before the first ticket: importing python-escpos parses its capability
    database (about a second), and the CJK font is opened on first use."""
    from edge.devices.printer import escpos, raster

    del escpos
    with contextlib.suppress(raster.FontMissing):  # Kanji-only printers need none; raster
        raster.font("ja", raster.BASE_DOTS)  # printers report it when they render
