"""Reading a file upload that may be larger than the app's request-size limit.

The hub's forms are small (``client_max_size``), but staff upload recipient lists, batch PDFs
and reservation-ID files of megabytes. Such a form is streamed: its CSRF token travels in the
action URL (``hub.auth.guard``), and this reader takes the ``file`` part in chunks up to a
limit of the route's own and the short text fields the route names.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

CHUNK = 256 * 1024


class UploadError(Exception):
    """``bad_upload``: not a multipart form, or a broken one; ``too_large``: over the limit."""

    def __init__(self, code: Literal["bad_upload", "too_large"]) -> None:
        super().__init__(code)
        self.code = code


async def read_upload(request: web.Request, limit: int, names: tuple[str, ...], *,
                      text_max: int = 500) -> tuple[bytes, dict[str, str]]:
    """The ``file`` part (up to ``limit`` bytes; may be empty) and the text fields in
    ``names`` (each cut to ``text_max`` characters and stripped)."""
    if request.content_type != "multipart/form-data":
        raise UploadError("bad_upload")
    fields: dict[str, str] = {}
    data = b""
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                chunks: list[bytes] = []
                size = 0
                while chunk := await part.read_chunk(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise UploadError("too_large")
                    chunks.append(chunk)
                data = b"".join(chunks)
            elif part.name in names:
                fields[part.name] = (await part.text())[:text_max].strip()
    except (ValueError, UnicodeDecodeError, AssertionError, HttpProcessingError):
        raise UploadError("bad_upload") from None
    return data, fields
