"""The paper a printer would produce from some bytes, as an image (the demo's tickets, the CLI's
``--png``, eyeballing a profile). Text printed in the printer's own font is drawn with the CJK
font at the same cell size, so the layout is right even though the glyphs are not the ROM's."""

from __future__ import annotations

import qrcode
from PIL import Image, ImageDraw

from edge.devices.printer import raster
from edge.devices.printer.decode import (
    Cut,
    Element,
    Feed,
    QrCode,
    RasterImage,
    TextLine,
    decode,
)

LINE_GAP = 6  # default ESC/POS line spacing is the 24-dot cell plus about 6 dots
FEED_LINE = 30
MARGIN = 12
_EC = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
       "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}


def _x(align: str, w: int, width: int) -> int:
    return {"left": 0, "center": (width - w) // 2, "right": width - w}.get(align, 0)


def _text(line: TextLine, width: int) -> Image.Image:
    px = raster.BASE_DOTS * line.height
    f = raster.font("ja", px)
    w = max(1, round(f.getlength(line.text)))
    img = Image.new("L", (w, px + LINE_GAP * line.height), 255)
    ImageDraw.Draw(img).text((0, round(px * 0.9)), line.text, font=f, fill=0, anchor="ls")
    if line.width != line.height:
        img = img.resize((max(1, w * line.width // line.height), img.height))
    return img.convert("1", dither=Image.Dither.NONE)


def _qr(code: QrCode) -> Image.Image:
    q = qrcode.QRCode(error_correction=_EC.get(code.ec, _EC["L"]), box_size=max(1, code.module),
                      border=2)
    q.add_data(code.payload)
    q.make(fit=True)
    img: Image.Image = q.make_image().get_image()
    return img.convert("1")


def _cut(kind: str, width: int) -> Image.Image:
    img = raster.blank(width, 24)
    draw = ImageDraw.Draw(img)
    step = {"full": 1, "partial": 12, "tear": 4}.get(kind, 12)
    for x in range(0, width, step):
        draw.line((x, 12, x + max(1, step // 2), 12), fill=0)
    return img


def paint(elements: list[Element], width: int) -> Image.Image:
    """Lay the elements out top to bottom on paper ``width`` dots wide."""
    placed: list[tuple[Image.Image, int, int]] = []
    y = MARGIN
    for e in elements:
        img: Image.Image | None = None
        align = "center"
        if isinstance(e, TextLine):
            img, align = _text(e, width), e.align
        elif isinstance(e, RasterImage):
            img, align = e.image, e.align
            if e.scale_x != 1 or e.scale_y != 1:
                img = img.resize((img.width * e.scale_x, img.height * e.scale_y))
        elif isinstance(e, QrCode):
            img, align = _qr(e), e.align
        elif isinstance(e, Cut):
            img = _cut(e.kind, width)
        elif isinstance(e, Feed):
            y += e.lines * FEED_LINE + e.dots
        if img is not None:
            placed.append((img, _x(align, img.width, width), y))
            y += img.height
    out = raster.blank(width, y + MARGIN)
    for img, x, top in placed:
        out.paste(img, (x, top))
    return out


def preview_png(data: bytes, width_dots: int) -> Image.Image:
    """The ticket ``data`` would print, as a 1-bit image (save it with ``.save(path)``).
    Raises DecodeError for bytes the virtual printer does not understand."""
    return paint(decode(data, width_dots), width_dots)
