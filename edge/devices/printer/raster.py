"""Ticket lines as 1-bit images of the paper width, drawn with Pillow and a CJK font.

Why: printers without a Kanji ROM (58 mm clones, Star TSP100 in Star Graphic mode) print only
images, and even Kanji printers cannot print Korean or most simplified Chinese. Images are the
full printable width with the text centred, so they need no alignment command, which cheap
printers handle inconsistently. Pixels are thresholded, never dithered: thermal dots are on or
off and dithered glyph edges print grey and fuzzy.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from edge.devices.printer.texts import Line

BASE_DOTS = 24  # height of Font A and of Kanji on ESC/POS printers; Line.size multiplies it
GAP_DOTS = 30  # one empty line, about the default ESC/POS line spacing
QR_BORDER = 4  # modules of quiet zone the QR specification asks for

FONT_ENV = "MADOGUCHI_CJK_FONT"
# Noto Sans CJK .ttc collections hold one face per region in this order: JP, KR, SC, TC, HK.
_FACES: dict[str, tuple[str, int, str]] = {
    "ja": ("JP", 0, "ja"), "ko": ("KR", 1, "ko"), "zh": ("SC", 2, "zh-cn"),
}
_KNOWN_DIRS = (
    "/usr/share/fonts/opentype/noto",  # Debian, Ubuntu (fonts-noto-cjk)
    "/usr/share/fonts/noto-cjk",  # Arch, Alpine
    "/usr/share/fonts/google-noto-cjk",  # Fedora
    "/usr/local/share/fonts",
)
_KNOWN_FILES = ("NotoSansCJK-Bold.ttc", "NotoSansCJK-Black.ttc", "NotoSansCJK-Regular.ttc")


class FontMissing(RuntimeError):
    """No font with Japanese/Chinese/Korean glyphs: raster tickets cannot be drawn."""


def _fontconfig(lang: str) -> tuple[str, int] | None:
    """Ask fontconfig for any font covering ``lang`` (fc-list lists only fonts that do)."""
    _, _, fc_lang = _FACES.get(lang, _FACES["ja"])
    try:
        out = subprocess.run(["fc-list", "-f", "%{file}\t%{index}\t%{style}\n", f":lang={fc_lang}"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [r.split("\t") for r in out.splitlines() if r.count("\t") == 2]
    # Prefer sans over serif and bold over regular: thin strokes fade on thermal paper.
    rows.sort(key=lambda r: ("Serif" in r[0], "Bold" not in r[2], r[0], r[1]))
    return (rows[0][0], int(rows[0][1] or 0)) if rows else None


@lru_cache(maxsize=8)
def font_file(lang: str) -> tuple[str, int]:
    """The font file and face index for ``lang``; MADOGUCHI_CJK_FONT overrides (``path`` or
    ``path#index``). Raises FontMissing saying what was tried."""
    face, index, _ = _FACES.get(lang, _FACES["ja"])
    env = os.environ.get(FONT_ENV, "").strip()
    if env:
        path, _, idx = env.partition("#")
        if not Path(path).is_file():
            raise FontMissing(f"{FONT_ENV}={env}: no such font file")
        return path, int(idx) if idx.isdigit() else 0
    for d in _KNOWN_DIRS:
        for name in _KNOWN_FILES:
            if (Path(d) / name).is_file():
                return str(Path(d) / name), index
    found = _fontconfig(lang)
    if found is None:
        raise FontMissing(
            f"no CJK font found for {lang!r} (looked for Noto Sans CJK {face} in "
            f"{', '.join(_KNOWN_DIRS)} and asked fontconfig): install fonts-noto-cjk or set "
            f"{FONT_ENV}=/path/to/font.ttc")
    return found


@lru_cache(maxsize=128)
def font(lang: str, px: int) -> ImageFont.FreeTypeFont:
    path, index = font_file(lang)
    try:
        return ImageFont.truetype(path, px, index=index)
    except OSError as exc:
        raise FontMissing(f"cannot load font {path} (face {index}): {exc}") from None


# --- layout helpers (also used for native text, where "fits" counts printer cells) -----------


def wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy line breaking: at the last space when there is one (Latin, Korean), else
    between any two characters (Japanese and Chinese have no spaces)."""
    lines: list[str] = []
    cur = ""
    for ch in text:
        if fits(cur + ch) or not cur:
            cur += ch
            continue
        cut = cur.rfind(" ")
        if cut > 0 and ch != " ":
            lines.append(cur[:cut])
            cur = cur[cut + 1:] + ch
        else:
            lines.append(cur)
            cur = ch.lstrip()
    lines.append(cur)
    lines = [s.strip() for s in lines if s.strip()]
    if len(lines) > 1 and " " not in text:  # CJK: even lines, not one orphan character
        per = -(-len(text) // len(lines))
        even = [text[i:i + per] for i in range(0, len(text), per)]
        if len(even) == len(lines) and all(fits(s) for s in even):
            return even
    return lines


def fit(text: str, sizes: Sequence[int], fits: Callable[[int, str], bool]) -> tuple[int, list[str]]:
    """The largest size at which ``text`` fits on one line; else the smallest, wrapped."""
    for size in sizes:
        if fits(size, text):
            return size, [text]
    last = sizes[-1]
    return last, wrap(text, lambda s: fits(last, s))


# --- images ----------------------------------------------------------------------------------


def blank(width: int, height: int) -> Image.Image:
    return Image.new("1", (width, max(1, height)), 1)


def text_image(text: str, width: int, sizes: Sequence[int], lang: str) -> Image.Image:
    """``text`` centred in a ``width``-wide image, at the largest pixel size in ``sizes`` that
    fits on one line, else wrapped at the smallest."""
    px, lines = fit(text, sizes, lambda s, t: font(lang, s).getlength(t) <= width)
    f = font(lang, px)
    line_h, baseline = round(px * 1.2), round(px * 0.98)
    img = Image.new("L", (width, line_h * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    for i, s in enumerate(lines):
        draw.text((width / 2, i * line_h + baseline), s, font=f, fill=0, anchor="ms")
    return img.convert("1", dither=Image.Dither.NONE)  # a threshold at 128


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR symbol (error correction M, smallest version that holds it), quiet zone included."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_BORDER)
    code.add_data(payload)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def qr_module(payload: str, width: int) -> int:
    """Dots per module: the symbol about 45 % of the paper width, 3..8 dots so that phone
    cameras read it from the counter's distance and thermal heads do not blur it."""
    n = len(qr_matrix(payload))
    return max(3, min(8, (width * 45 // 100) // n))


def qr_image(payload: str, width: int, module: int | None = None) -> Image.Image:
    matrix = qr_matrix(payload)
    m = module or qr_module(payload, width)
    n = len(matrix)
    sym = Image.new("1", (n, n), 1)
    sym.putdata([0 if dark else 1 for row in matrix for dark in row])
    sym = sym.resize((n * m, n * m), Image.Resampling.NEAREST)
    img = blank(width, n * m)
    img.paste(sym, ((width - n * m) // 2, 0))
    return img


def stack(images: Sequence[Image.Image], width: int) -> Image.Image:
    out = blank(width, sum(i.height for i in images))
    y = 0
    for i in images:
        out.paste(i, (0, y))
        y += i.height
    return out


def line_image(line: Line, width: int, lang: str) -> Image.Image:
    """One layout line as an image; numbers shrink in 8-dot steps, text in whole base lines."""
    if line.kind == "gap":
        return blank(width, GAP_DOTS * line.size)
    if line.kind == "qr":
        return qr_image(line.text, width)
    if line.kind == "number":
        return text_image(line.text, width, range(BASE_DOTS * line.size, BASE_DOTS - 1, -8), lang)
    # Below the base size only a little (20 dots is still easy to read) before wrapping.
    sizes = [BASE_DOTS * s for s in range(line.size, 0, -1)] + [22, 20]
    return text_image(line.text, width, sizes, lang)


def tear_line(width: int) -> Image.Image:
    """A dashed rule where a two-part ticket is torn on printers without a cutter."""
    img = blank(width, GAP_DOTS)
    draw = ImageDraw.Draw(img)
    for x in range(0, width, 16):
        draw.rectangle((x, GAP_DOTS // 2 - 1, x + 7, GAP_DOTS // 2), fill=0)
    return img


def printable_width(paper_width_dots: int) -> int:
    """Raster rows are whole bytes; a width that is not would print a stray dot column."""
    return paper_width_dots // 8 * 8


def to_rows(img: Image.Image) -> tuple[int, bytes]:
    """(bytes per row, rows) with bit 1 = print a dot, the order both command sets use."""
    if img.mode != "1" or img.width % 8:
        raise ValueError(f"need a 1-bit image of whole bytes wide, got {img.mode} {img.size}")
    return img.width // 8, img.tobytes().translate(_INVERT)  # Pillow: bit 1 = white


_INVERT = bytes(255 - i for i in range(256))
