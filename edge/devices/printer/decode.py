"""A virtual printer: ESC/POS and Star Graphic byte streams back into what would be printed.

Why: golden files prove that bytes did not change, not that they are right. This decoder is
written from the command specifications (Epson ESC/POS Application Programming Guide; Star's
raster command specification), not from our encoders, so tests that read a ticket back through
it catch encoder bugs, and the demo's "paper" preview shows exactly the bytes that were sent.
It knows the subset of commands a ticket needs; anything else raises DecodeError with the byte
offset, so a stray or mangled command is found instead of silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from PIL import Image

ESC, GS, FS, DLE, LF, CR, FF = 0x1B, 0x1D, 0x1C, 0x10, 0x0A, 0x0D, 0x0C
_CODE_TABLES = {0: "cp437", 1: "cp932", 2: "cp850", 16: "cp1252"}  # ESC t n we can read
_STAR_CUTS = {8: "full", 9: "full", 12: "partial", 13: "partial"}  # FF/EOT mode n -> cut


class DecodeError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        self.offset = offset
        super().__init__(f"byte {offset}: {message}")


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    width: int  # character size multipliers (GS ! / ESC !)
    height: int
    align: str  # left | center | right
    bold: bool
    kanji: bool  # some characters came through Kanji mode (FS &)
    offset: int


@dataclass(frozen=True, slots=True)
class RasterImage:
    image: Image.Image  # mode "1", 0 = printed dot
    align: str
    scale_x: int  # GS v 0 double-width / double-height modes
    scale_y: int
    offset: int


@dataclass(frozen=True, slots=True)
class QrCode:
    payload: str
    module: int  # dots per module (GS ( k fn 67)
    ec: str  # L M Q H
    align: str
    offset: int


@dataclass(frozen=True, slots=True)
class Feed:
    lines: int = 0
    dots: int = 0


@dataclass(frozen=True, slots=True)
class Cut:
    kind: str  # partial | full | tear (feed to the tear bar, no cutter)
    offset: int


@dataclass(frozen=True, slots=True)
class StatusRequest:
    n: int


Element = TextLine | RasterImage | QrCode | Feed | Cut | StatusRequest
E = TypeVar("E", TextLine, RasterImage, QrCode, Feed, Cut, StatusRequest)


@dataclass
class _State:
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1
    table: int = 0
    kanji: bool = False
    qr_module: int = 3
    qr_ec: str = "L"
    qr_data: bytes | None = None


@dataclass
class _Line:
    chars: list[str] = field(default_factory=list)
    attrs: tuple[int, int, str, bool] = (1, 1, "left", False)
    kanji: bool = False
    offset: int = 0


class _Decoder:
    def __init__(self, data: bytes, width_dots: int | None) -> None:
        self.d = data
        self.i = 0
        self.at = 0  # where the command being read starts
        self.width = width_dots
        self.out: list[Element] = []
        self.s = _State()
        self.line = _Line()
        self.rows: list[bytes] = []  # Star raster page being built
        self.star_ff = self.star_eot = 13
        self.raster_mode = False

    # --- reading helpers -------------------------------------------------------------------
    def take(self, n: int, what: str) -> bytes:
        if self.i + n > len(self.d):
            raise DecodeError(self.at, f"{what}: needs {n} more bytes, stream ends")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "little")

    # --- text ------------------------------------------------------------------------------
    def char(self, ch: str, at: int) -> None:
        if not self.line.chars:
            s = self.s
            self.line = _Line([], (s.width, s.height, s.align, s.bold), False, at)
        self.line.chars.append(ch)
        self.line.kanji |= self.s.kanji and not ch.isascii()

    def flush(self, feed: bool) -> None:
        if self.line.chars:
            w, h, align, bold = self.line.attrs
            self.out.append(TextLine("".join(self.line.chars), w, h, align, bold,
                                     self.line.kanji, self.line.offset))
        elif feed:
            self.out.append(Feed(lines=1))
        self.line = _Line()

    def need_empty_line(self, at: int, what: str) -> None:
        if self.line.chars:
            raise DecodeError(at, f"{what} while the line buffer holds "
                                  f"{''.join(self.line.chars)!r} (send LF first)")

    # --- the main loop ---------------------------------------------------------------------
    def run(self) -> list[Element]:
        while self.i < len(self.d):
            at, b = self.i, self.d[self.i]
            self.at = at
            self.i += 1
            if self.raster_mode:
                self.star(at, b)
            elif b == LF:
                self.flush(feed=True)
            elif b == CR:
                pass
            elif b == ESC:
                self.esc(at)
            elif b == GS:
                self.gs(at)
            elif b == FS:
                self.fs(at)
            elif b == DLE:
                self.dle(at)
            elif 0x20 <= b < 0x7F:
                self.char(chr(b), at)
            elif b >= 0x80 and self.s.kanji:
                self.kanji_char(at, b)
            elif b >= 0x80:
                enc = _CODE_TABLES.get(self.s.table)
                if enc is None:
                    raise DecodeError(at, f"character 0x{b:02x} in code table {self.s.table}, "
                                          "which this decoder does not model")
                self.char(bytes([b]).decode(enc, errors="replace"), at)
            else:
                raise DecodeError(at, f"unexpected control byte 0x{b:02x}")
        self.flush(feed=False)
        if self.rows:
            self.page(self.i)
        return self.out

    def kanji_char(self, at: int, lead: int) -> None:
        if 0xA1 <= lead <= 0xDF:  # not a Shift JIS lead byte: a code-table character
            self.char(bytes([lead]).decode("cp932"), at)
            return
        pair = bytes([lead, self.byte("Shift JIS trail byte")])
        try:
            self.char(pair.decode("cp932"), at)
        except UnicodeDecodeError:
            raise DecodeError(at, f"invalid Shift JIS {pair.hex(' ')}") from None

    def esc(self, at: int) -> None:
        c = self.byte("ESC command")
        s = self.s
        if c == ord("@"):
            self.flush(feed=False)
            self.s = _State()
        elif c == ord("a"):
            n = self.byte("ESC a n") % 48
            if n > 2:
                raise DecodeError(at, f"ESC a {n}: no such justification")
            s.align = ("left", "center", "right")[n]
        elif c == ord("E"):
            s.bold = bool(self.byte("ESC E n") & 1)
        elif c == ord("!"):
            n = self.byte("ESC ! n")
            s.bold, s.width, s.height = bool(n & 0x08), 2 if n & 0x20 else 1, 2 if n & 0x10 else 1
        elif c == ord("t"):
            s.table = self.byte("ESC t n")
        elif c == ord("d"):
            self.flush(feed=False)
            self.out.append(Feed(lines=self.byte("ESC d n")))
        elif c == ord("*") and self.d[self.i:self.i + 1] == b"r":
            self.i += 1
            self.star_setting(at)
        else:
            raise DecodeError(at, f"unknown command ESC {_show(c)}")

    def gs(self, at: int) -> None:
        c = self.byte("GS command")
        if c == ord("!"):
            n = self.byte("GS ! n")
            self.s.width, self.s.height = (n >> 4) + 1, (n & 0x0F) + 1
            if self.s.width > 8 or self.s.height > 8:
                raise DecodeError(at, f"GS ! 0x{n:02x}: size beyond 8x")
        elif c == ord("v"):
            self.raster_image(at)
        elif c == ord("V"):
            self.flush(feed=False)
            m = self.byte("GS V m")
            if m in (65, 66):
                self.out.append(Feed(dots=self.byte("GS V m n")))
            elif m not in (0, 1, 48, 49):
                raise DecodeError(at, f"GS V {m}: unknown cut mode")
            self.out.append(Cut("full" if m in (0, 48, 65) else "partial", at))
        elif c == ord("(") and self.d[self.i:self.i + 1] == b"k":
            self.i += 1
            self.qr(at)
        else:
            raise DecodeError(at, f"unknown command GS {_show(c)}")

    def fs(self, at: int) -> None:
        c = self.byte("FS command")
        if c == ord("&"):
            self.s.kanji = True
        elif c == ord("."):
            self.s.kanji = False
        elif c == ord("C"):
            n = self.byte("FS C n") % 48
            if n not in (1, 2):
                raise DecodeError(at, f"FS C {n}: only Shift JIS (1, 2) is modelled")
        else:
            raise DecodeError(at, f"unknown command FS {_show(c)}")

    def dle(self, at: int) -> None:
        if self.byte("DLE command") != 0x04:
            raise DecodeError(at, "unknown DLE command (only DLE EOT is modelled)")
        n = self.byte("DLE EOT n")
        if not 1 <= n <= 4:
            raise DecodeError(at, f"DLE EOT {n}: n must be 1..4")
        self.out.append(StatusRequest(n))

    def raster_image(self, at: int) -> None:
        if self.byte("GS v") != ord("0"):
            raise DecodeError(at, "GS v: only GS v 0 (raster bit image) is modelled")
        self.need_empty_line(at, "GS v 0")
        m = self.byte("GS v 0 m") % 48
        if m > 3:
            raise DecodeError(at, f"GS v 0 m={m}: no such mode")
        wb, h = self.u16("GS v 0 xL xH"), self.u16("GS v 0 yL yH")
        if wb == 0 or h == 0:
            raise DecodeError(at, "GS v 0 with an empty image")
        img = _image_from_rows([self.take(wb * h, "GS v 0 data")], wb, h)
        self.out.append(RasterImage(img, self.s.align, 1 + (m & 1), 1 + (m >> 1), at))

    def qr(self, at: int) -> None:
        size = self.u16("GS ( k pL pH")
        if size < 2:
            raise DecodeError(at, "GS ( k: parameter length below 2")
        body = self.take(size, "GS ( k parameters")
        cn, fn, rest = body[0], body[1], body[2:]
        if cn != 49:
            raise DecodeError(at, f"GS ( k cn={cn}: only QR codes (cn=49) are modelled")
        if fn == 65:  # select model
            if rest[:1] not in (b"1", b"2"):
                raise DecodeError(at, f"GS ( k QR model {rest[:1]!r} is not 1 or 2")
        elif fn == 67:
            self.s.qr_module = rest[0]
        elif fn == 69:
            self.s.qr_ec = "LMQH"[rest[0] - 48] if 48 <= rest[0] <= 51 else "?"
        elif fn == 80:
            self.s.qr_data = rest[1:]
        elif fn == 81:
            self.need_empty_line(at, "GS ( k print")
            if self.s.qr_data is None:
                raise DecodeError(at, "GS ( k print without stored QR data")
            try:
                payload = self.s.qr_data.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError(at, "QR data is not UTF-8") from None
            self.out.append(QrCode(payload, self.s.qr_module, self.s.qr_ec, self.s.align, at))
        else:
            raise DecodeError(at, f"GS ( k QR function {fn} is not modelled")

    # --- Star raster mode ------------------------------------------------------------------
    def star_setting(self, at: int) -> None:
        c = self.byte("ESC * r command")
        if c in b"RABC":
            if c == ord("A"):
                self.need_empty_line(at, "ESC * r A")
                self.raster_mode, self.star_ff, self.star_eot = True, 13, 13
            elif c == ord("B"):
                if self.rows:
                    self.page(at, self.star_eot)
                self.raster_mode = False
            elif c == ord("C"):
                self.rows = []
            return
        if c == ord("m"):
            side = self.byte("ESC * r m l|r")
            if side not in b"lr":
                raise DecodeError(at, "ESC * r m: expected l or r")
        elif c not in b"EFPQTYK":
            raise DecodeError(at, f"unknown command ESC * r {_show(c)}")
        digits = bytearray()
        while (b := self.byte(f"ESC * r {chr(c)} n NUL")) != 0:
            if not 0x30 <= b <= 0x39:
                raise DecodeError(at, f"ESC * r {chr(c)}: parameter must be ASCII digits")
            digits.append(b)
        n = int(digits or b"0")
        if c == ord("E"):
            self.star_eot = n
        elif c == ord("F"):
            self.star_ff = n
        elif c == ord("Y"):
            self.rows += [b""] * n

    def star(self, at: int, b: int) -> None:
        if b in (ord("b"), ord("k")):
            k = self.u16("raster data n1 n2")
            row = self.take(k, "raster data")
            if b == ord("b"):
                self.rows.append(row)
            else:  # k: OR into the current row, no line feed
                prev = self.rows.pop() if self.rows else b""
                n = max(len(prev), k)
                bits = int.from_bytes(prev.ljust(n, b"\0")) | int.from_bytes(row.ljust(n, b"\0"))
                self.rows.append(bits.to_bytes(n))
        elif b == ESC and self.d[self.i:self.i + 2] == b"*r":
            self.i += 2
            self.star_setting(at)
        elif b == ESC and self.d[self.i:self.i + 1] == b"\x0c":
            n = self.take(2, "ESC FF n")[1]
            if n not in (0, 4):
                raise DecodeError(at, f"ESC FF {n}: expected NUL or EOT")
            self.page(at, self.star_ff if n == 0 else self.star_eot)
        elif b == FF:
            self.page(at, self.star_ff)
        else:
            raise DecodeError(at, f"byte 0x{b:02x} is not a raster-mode command")

    def page(self, at: int, mode: int | None = None) -> None:
        """End of a Star raster page: the rows as one image, then the FF/EOT mode's cut."""
        if self.rows:
            wb = max((len(r) for r in self.rows), default=1) or 1
            if self.width:
                wb = max(wb, self.width // 8)
            rows = [r.ljust(wb, b"\x00") for r in self.rows]
            img = _image_from_rows(rows, wb, len(rows))
            self.out.append(RasterImage(img, "left", 1, 1, at))
            self.rows = []
        if mode is not None:
            self.out.append(Cut(_STAR_CUTS.get(mode, "tear"), at))


def _image_from_rows(rows: list[bytes], width_bytes: int, height: int) -> Image.Image:
    """Printer rows (bit 1 = dot) as a Pillow 1-bit image (bit 0 = black)."""
    data = b"".join(rows).translate(bytes(255 - i for i in range(256)))
    return Image.frombytes("1", (width_bytes * 8, height), data)


def _show(c: int) -> str:
    return f"{chr(c)!r} (0x{c:02x})" if 0x20 <= c < 0x7F else f"0x{c:02x}"


def decode(data: bytes, width_dots: int | None = None) -> list[Element]:
    """What a printer would do with ``data``; ``width_dots`` widens Star rows to the paper."""
    return _Decoder(data, width_dots).run()


def only(elements: list[Element], kind: type[E]) -> list[E]:
    """The elements of one kind, e.g. ``only(decode(data), TextLine)``."""
    return [e for e in elements if isinstance(e, kind)]
