"""What a file is, judged from its bytes: the name and the browser's Content-Type are claims.

Why sniff: an attachment field that takes PDFs must not take an executable renamed
``申請書.pdf``, nor an HTML page sent as ``application/pdf`` (served back to staff it would run
in the hub's origin). So the type is read from the content with the ``filetype`` package (magic
numbers of images, office files, archives, media), plus what forms need and it does not judge
on its own: PDF by its ``%PDF-<digit>`` header (the first bytes, never further in: a file that
only contains a PDF is something else), and plain text or CSV by decoding (UTF-8, with or
without BOM, or cp932 as Excel saves it in Japan) with no control characters besides tab, line
breaks and form feed. A field lists its allowed types as MIME types (``image/*`` allowed); the
sniffed type decides, and what cannot be identified is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import filetype

PDF = "application/pdf"
TEXT = "text/plain"
CSV = "text/csv"
_PDF_HEADER = re.compile(rb"^%PDF-[0-9]")
_BOM = b"\xef\xbb\xbf"
# C0 controls and DEL, except tab, line feed, form feed and carriage return
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# what browsers and older software send for the types forms take, and what they mean
ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": PDF,
    "application/acrobat": PDF, "text/comma-separated-values": CSV, "application/csv": CSV,
    "image/x-png": "image/png",
}


def normalise(mime: str) -> str:
    """``Image/JPG; charset=x`` -> ``image/jpeg``: lower case, no parameters, aliases merged."""
    base = mime.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def _is_text(data: bytes) -> bool:
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    for encoding in ("utf-8", "cp932"):
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        return _CONTROL.search(text) is None
    return False


def sniff(data: bytes, filename: str = "") -> str | None:
    """The MIME type of ``data``, or None when it is empty or nothing known.

    ``filename`` only chooses between the two text types (``.csv`` -> ``text/csv``): both are
    inert text, so the name cannot make a file more dangerous than its bytes are."""
    if not data:
        return None
    if _PDF_HEADER.match(data):
        return PDF
    kind = filetype.guess(data)
    if kind is not None:
        mime: str = kind.mime
        # filetype takes "%PDF" alone for a PDF; without "-<version>" it is not one
        return None if mime in ("application/octet-stream", PDF) else normalise(mime)
    if _is_text(data):
        return CSV if filename.lower().endswith(".csv") else TEXT
    return None


def allowed(mime: str | None, accepted: Iterable[str]) -> bool:
    """Whether the sniffed ``mime`` is one of a field's ``accepted`` types.

    ``image/*`` takes any image; CSV is plain text too, so a field taking ``text/plain`` takes
    CSV. Nothing unidentified is ever allowed."""
    if mime is None:
        return False
    mime = normalise(mime)
    for entry in accepted:
        want = normalise(entry)
        if want == mime or (want == TEXT and mime == CSV):
            return True
        if want.endswith("/*") and mime.startswith(want[:-1]):
            return True
    return False
