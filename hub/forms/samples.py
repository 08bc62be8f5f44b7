"""Sample files for the demo, ``madoguchi bench forms`` and the tests: a well-formed PDF of a
given size, a small PNG, and the EICAR anti-virus test file.

The EICAR string is assembled from pieces: a file holding it whole would trip virus scanners on
developers' machines and in the repository's hosting.
"""

from __future__ import annotations

import struct
import zlib


def eicar() -> bytes:
    """The 68-byte EICAR anti-virus test file (harmless; every scanner reports it)."""
    head = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
    tail = "-".join(("EICAR", "STANDARD", "ANTIVIRUS", "TEST", "FILE!$H+H*"))
    return (head + tail).encode("ascii")


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
