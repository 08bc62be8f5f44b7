"""Star TSP100/TSP143 tickets in Star Graphic mode: the whole ticket is one raster image.

Why: the TSP100 family has no fonts in Star Graphic mode; the host sends dot rows. Commands,
from Star's "STAR Graphic Mode" / "STAR Line Mode" raster command specifications:

* ``ESC * r R`` initialize raster mode; ``ESC * r A`` enter raster mode.
* ``ESC * r P n NUL`` raster page length, ``n = 0``: continuous (the page ends where data ends).
* ``ESC * r E n NUL`` raster EOT mode, the action of ``ESC FF EOT``; ``ESC * r F n NUL`` raster
  FF mode, the action of ``ESC FF NUL``. ``n``: 3 feed to tear bar, 9 feed to cutter + full cut,
  13 feed to cutter + partial cut. ``n`` is written in ASCII decimal, as all ``ESC * r`` numbers.
* ``b n1 n2 d1...dk`` transfer raster data with auto line feed: one dot row of
  ``k = n1 + n2 * 256`` bytes from the left margin, MSB = leftmost dot, bit 1 = black; a row
  shorter than the paper is blank on the right, so trailing white bytes are not sent.
* ``ESC * r Y n NUL`` move ``n`` dot rows down: runs of white rows cost 6 bytes, not 72 each.
* ``ESC FF NUL`` execute FF mode (between the parts of a two-part ticket);
  ``ESC FF EOT`` execute EOT mode (end of ticket); ``ESC * r B`` quit raster mode.
"""

from __future__ import annotations

from PIL import Image

from edge.devices.printer import raster, texts
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile

ESC = b"\x1b"
INIT_RASTER = ESC + b"*rR"
ENTER_RASTER = ESC + b"*rA"
QUIT_RASTER = ESC + b"*rB"
EXECUTE_FF = ESC + b"\x0c\x00"
EXECUTE_EOT = ESC + b"\x0c\x04"
MODE_TEAR, MODE_FULL_CUT, MODE_PARTIAL_CUT = 3, 9, 13
_CUT_MODES = {"none": MODE_TEAR, "full": MODE_FULL_CUT, "partial": MODE_PARTIAL_CUT}
MAX_SKIP = 255  # ESC * r Y: the largest move the spec guarantees in one command


def _param(letter: bytes, n: int) -> bytes:
    """``ESC * r <letter> n NUL`` with ``n`` in ASCII decimal."""
    return ESC + b"*r" + letter + str(n).encode("ascii") + b"\x00"


def raster_rows(img: Image.Image) -> bytes:
    """Transfer commands for ``img``: ``b`` rows without trailing white, ``ESC * r Y`` skips."""
    width_bytes, data = raster.to_rows(img)
    out = bytearray()
    blank = 0
    for y in range(img.height):
        row = data[y * width_bytes:(y + 1) * width_bytes].rstrip(b"\x00")
        if not row:
            blank += 1
            continue
        while blank:
            step = min(blank, MAX_SKIP)
            out += _param(b"Y", step)
            blank -= step
        out += b"b" + len(row).to_bytes(2, "little") + row
    while blank:
        step = min(blank, MAX_SKIP)
        out += _param(b"Y", step)
        blank -= step
    return bytes(out)


def _image(lines: list[texts.Line], width: int, lang: str) -> Image.Image:
    return raster.stack([raster.line_image(line, width, lang) for line in lines], width)


def render_star_graphic(profile: PrinterProfile, ticket: TicketPrint) -> bytes:
    """The bytes of one ticket; two-part tickets are cut (partially) between the parts (Q7)."""
    if profile.command_set != "star-graphic":
        raise ValueError(f"profile {profile.id} uses {profile.command_set}, not star-graphic")
    width = raster.printable_width(profile.paper_width_dots)
    out = bytearray(INIT_RASTER + ENTER_RASTER)
    out += _param(b"P", 0)  # continuous paper
    out += _param(b"E", _CUT_MODES[profile.cut])
    visitor = _image(texts.visitor_part(ticket), width, ticket.lang)
    if ticket.two_part:
        staff = _image(texts.staff_part(ticket), width, ticket.lang)
        if profile.cut == "none":
            out += raster_rows(raster.stack([visitor, raster.tear_line(width), staff], width))
        else:
            out += _param(b"F", MODE_PARTIAL_CUT) + raster_rows(visitor) + EXECUTE_FF
            out += raster_rows(staff)
    else:
        out += raster_rows(visitor)
    out += EXECUTE_EOT + QUIT_RASTER
    return bytes(out)
