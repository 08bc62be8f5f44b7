"""A real ClamAV daemon for tests (``hub.forms.localclamd``: its own clamd, config and EICAR
signature database in a temp dir), and test files (PDF, PNG).

A missing clamd FAILS the test (never skips): the attachment engine's promise is that every
file is scanned, which no fake can show.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from hub.forms import localclamd
from hub.forms.localclamd import SIGNATURE, Clamd, eicar, write_database

__all__ = ["SIGNATURE", "Clamd", "clamd_binary", "eicar", "pdf", "png", "start_clamd",
           "write_database"]


def clamd_binary() -> str:
    try:
        return localclamd.clamd_binary()
    except localclamd.ClamdMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def start_clamd(**options: Any) -> Clamd:
    """``hub.forms.localclamd.start_clamd``; a clamd that is missing or does not start fails
    the test with its log."""
    try:
        return localclamd.start_clamd(**options)
    except localclamd.ClamdMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def pdf(size: int = 2048, text: bytes = b"madoguchi") -> bytes:
    """A well-formed one-page PDF of ``size`` bytes at least, exactly when it is not smaller
    than the bare document (padded with drawing operators, then line breaks after %%EOF)."""
    content = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    pad = max(0, size - 600 - len(content))
    content += b"\n" + b"0 0 m\n" * (pad // 6)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out) + b"\n" * max(0, size - len(out))


def png(width: int = 4, height: int = 4) -> bytes:
    """A valid grey PNG (made with zlib, no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack("!I", len(data)) + kind + data
                + struct.pack("!I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack("!IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
