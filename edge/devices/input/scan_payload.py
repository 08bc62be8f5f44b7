"""What a scan or a typed entry refers to: a ticket token, or a ticket number.

A ticket's QR code carries its status URL ``https://<host>/t/<token>``; older or hand-made
tickets may carry the bare token, and a printed barcode or a keyboard entry just the number.
Anything else (a scanned library card, a half-read code) is ``None``: the caller tells the
clerk "not a ticket" instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
NUMBER_RE = re.compile(r"[0-9]{1,7}")  # leading zeros allowed ("0042"); 8+ digits is a token
NUMBER_MIN, NUMBER_MAX = 1, 9999
MAX_SCAN_LEN = 2048


@dataclass(frozen=True, slots=True)
class ScanRef:
    """Exactly one of ``token`` and ``number``; ``host`` is the URL's host, if it was a URL."""

    token: str | None = None
    number: int | None = None
    host: str | None = None


def parse_scan(text: str) -> ScanRef | None:
    """Read one scan or typed entry; None when it is not a ticket reference."""
    text = text.strip()
    if not text or len(text) > MAX_SCAN_LEN:
        return None
    if NUMBER_RE.fullmatch(text):
        n = int(text)
        return ScanRef(number=n) if NUMBER_MIN <= n <= NUMBER_MAX else None
    if TOKEN_RE.fullmatch(text):
        return ScanRef(token=text)
    return _parse_url(text)


def _parse_url(text: str) -> ScanRef | None:
    if any(c.isspace() or not c.isprintable() for c in text):
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # e.g. a malformed IPv6 host or port
        return None
    if parts.scheme not in ("https", "http") or not host:
        return None
    _, sep, token = parts.path.rstrip("/").rpartition("/t/")
    if not sep or not TOKEN_RE.fullmatch(token):
        return None
    return ScanRef(token=token, host=host)
