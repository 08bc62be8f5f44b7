"""ESC/POS tickets (Epson TM series and compatibles), built on python-escpos's ``Dummy``.

python-escpos writes the commands it gets right (ESC @, ESC a, ESC E, GS !, ESC d, GS ( k, GS V).
Three things are written here instead:

* Japanese text: ``Dummy.text()`` pushes it through its code-page guesser and prints garbage.
  On ``japanese: kanji`` profiles a line goes out as FS C 1 (Shift JIS code system), FS & (Kanji
  mode on), the Shift JIS bytes, FS . (Kanji mode off), so the printer's Kanji ROM draws it.
* Lines the Kanji ROM cannot print (Korean, most simplified Chinese, NEC/IBM extension kanji,
  half-width katakana) and every non-ASCII line on ``japanese: raster`` profiles become GS v 0
  raster images (``raster.py``).
* GS v 0 itself: ``Dummy.image()`` refuses images wider than its own capability profile (which
  may know a narrower paper than ours) and prints warnings to stdout for profiles without a
  width; our images are exactly the profile's printable width.

ASCII lines (the number, English labels, times) stay in the printer's font on every model:
sharper, and far fewer bytes over a 9600-baud serial line.
"""

from __future__ import annotations

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy
from PIL import Image

from edge.devices.printer import raster, texts
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile

FONT_A_DOTS = 12  # Font A is 12 x 24 dots; a Kanji is 24 x 24, i.e. two cells
MAX_MUL = 8  # GS ! scales characters 1..8 times in each direction
MAX_IMAGE_ROWS = 960  # GS v 0 chunks, as python-escpos splits them (printer buffer limits)

GS = b"\x1d"
FS = b"\x1c"
KANJI_ON = FS + b"C\x01" + FS + b"&"  # FS C 1: Shift JIS code system; FS &: Kanji mode on
KANJI_OFF = FS + b"."  # FS .: Kanji mode off (bytes >= 0x80 are code-table characters again)

# Lead bytes of JIS X 0208 in Shift JIS: rows 1-8 (symbols, kana) and 16-84 (kanji). The rest of
# cp932 (NEC row 13, NEC/IBM extension kanji, user-defined area) is not in every Kanji ROM.
_JIS_X_0208_LEADS = frozenset([*range(0x81, 0x85), *range(0x88, 0xA0), *range(0xE0, 0xEB)])


def shift_jis(text: str) -> bytes | None:
    """``text`` in Shift JIS as a JIS X 0208 Kanji ROM prints it, or None if it cannot."""
    out = bytearray()
    for ch in text:
        try:
            b = ch.encode("cp932")
        except UnicodeEncodeError:
            return None
        if len(b) == 1 and b[0] >= 0x80:  # half-width katakana: a code-table character
            return None
        if len(b) == 2 and b[0] not in _JIS_X_0208_LEADS:
            return None
        out += b
    return bytes(out)


def _cells(text: str) -> int:
    """Width in Font A cells: ASCII one, a Kanji two (its Shift JIS byte count)."""
    sj = text if text.isascii() else shift_jis(text)
    return len(sj) if sj is not None else 2 * len(text)


class _Job:
    """A Dummy for python-escpos's commands, and our bytes between them, in order."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.p = Dummy(profile=profile.escpos_profile or "default")
        self.width = raster.printable_width(profile.paper_width_dots)
        self.cols = self.width // FONT_A_DOTS
        self._buf = bytearray()

    def _flush(self) -> None:
        self._buf += self.p.output
        self.p.clear()

    def raw(self, data: bytes) -> None:
        self._flush()
        self._buf += data

    def image(self, img: Image.Image) -> None:
        """GS v 0 m=0 (normal density): raster bit image, in chunks of at most 960 rows."""
        for top in range(0, img.height, MAX_IMAGE_ROWS):
            part = img.crop((0, top, img.width, min(img.height, top + MAX_IMAGE_ROWS)))
            width_bytes, rows = raster.to_rows(part)
            self.raw(GS + b"v0\x00" + width_bytes.to_bytes(2, "little")
                     + part.height.to_bytes(2, "little") + rows)

    def done(self) -> bytes:
        self._flush()
        return bytes(self._buf)


def _text(job: _Job, line: texts.Line, lang: str) -> None:
    text = line.text
    native = text.isascii() or (job.profile.japanese == "kanji" and shift_jis(text) is not None)
    if not native:
        job.image(raster.line_image(line, job.width, lang))
        return
    sizes = range(min(line.size, MAX_MUL), 0, -1)
    mul, chunks = raster.fit(text, sizes, lambda m, s: _cells(s) * m <= job.cols)
    job.p.set(bold=line.bold, custom_size=True, width=mul, height=mul)
    for chunk in chunks:
        sj = shift_jis(chunk)
        if chunk.isascii() or sj is None:
            job.p.text(chunk + "\n")
        else:
            job.raw(KANJI_ON + sj + KANJI_OFF + b"\n")


def _number(job: _Job, line: texts.Line) -> None:
    """The ticket number in the printer's own font, as large as GS ! and the paper allow."""
    mul = max(1, min(line.size, MAX_MUL, job.cols // max(1, len(line.text))))
    job.p.set(bold=line.bold, custom_size=True, width=mul, height=mul)
    job.p.text(line.text + "\n")


def _qr(job: _Job, payload: str) -> None:
    module = raster.qr_module(payload, job.width)
    if job.profile.qr == "native":  # GS ( k: model 2, module size, level M, store, print
        job.p.qr(payload, ec=QR_ECLEVEL_M, size=module, native=True)
    else:
        job.image(raster.qr_image(payload, job.width, module))


def _part(job: _Job, lines: list[texts.Line], lang: str) -> None:
    for line in lines:
        if line.kind == "gap":
            job.p.print_and_feed(line.size)  # ESC d n
        elif line.kind == "qr":
            _qr(job, line.text)
        elif line.kind == "number":
            _number(job, line)
        else:
            _text(job, line, lang)


def _cut(job: _Job, mode: str) -> None:
    """Feed past the cutter (ESC d 6), then GS V; on printers without one, feed to tear."""
    if mode == "none":
        job.p.print_and_feed(6)
    else:
        job.p.cut(mode="PART" if mode == "partial" else "FULL")


def render_escpos(profile: PrinterProfile, ticket: TicketPrint) -> bytes:
    """The bytes of one ticket; two-part tickets get a partial cut between the parts (Q7)."""
    if profile.command_set != "escpos":
        raise ValueError(f"profile {profile.id} uses {profile.command_set}, not escpos")
    job = _Job(profile)
    job.p.hw("INIT")  # ESC @
    job.p.set(align="center")  # ESC a 1
    _part(job, texts.visitor_part(ticket), ticket.lang)
    if ticket.two_part:
        if profile.cut == "none":
            job.p.set(bold=False, custom_size=True, width=1, height=1)
            job.p.text("-" * job.cols + "\n")  # tear here
            job.p.print_and_feed(2)
        else:
            _cut(job, "partial")  # a perforation: the parts stay together until torn
        _part(job, texts.staff_part(ticket), ticket.lang)
    _cut(job, profile.cut)
    return job.done()
