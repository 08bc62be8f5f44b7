"""Encrypted files at rest: one sealed file per blob, named by its random id.

Why files and not database rows: signed notice PDFs (5,000 a year of 100–300 kB) and form
attachments (up to 10 MB each) would bloat the database, its dumps and its backups; files are
written once and read as a whole. Each file is ``hub.notify.crypto.seal_bytes`` of the plain
bytes with the associated data bound to the blob id, the key id and the store's own ``aad``
prefix (``madoguchi/notices/file/v1``, ``madoguchi/forms/file/v1``), so a file renamed onto
another id, moved from one store into another, or tampered with, fails to open instead of
serving someone else's document. The plain bytes are never re-encoded: what is read back is
byte-for-byte what was put (a signed PDF stays valid).

Writes are atomic (temporary file, fsync, rename), so a crash leaves the old file or none.
Keys rotate as the contacts do: ``reseal`` rewrites a file with the current key.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path

from hub.notify.crypto import CryptoError, key_id_of_bytes, open_bytes, seal_bytes

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class FileStoreError(Exception):
    """A blob that is missing or cannot be opened (the message names the id, never content)."""


class SealedFileStore:
    """Encrypted blobs under ``root`` (two-level fan-out by id, so no directory grows huge).

    ``aad`` names what the store holds; two stores must never share one (that is what keeps a
    notice from being opened as a form attachment and the other way round)."""

    def __init__(self, root: Path, keys: dict[str, bytes], key_id: str, aad: bytes) -> None:
        if not aad:
            raise ValueError("a sealed file store needs its own associated-data prefix")
        self.root, self.keys, self.key_id, self.aad = root, keys, key_id, aad

    def _path(self, blob_id: str) -> Path:
        if not _ID.match(blob_id):
            raise FileStoreError(f"bad blob id {blob_id!r}")
        return self.root / blob_id[:2] / f"{blob_id}.bin"

    def put_sync(self, blob_id: str, data: bytes) -> str:
        """Store ``data``; returns the SHA-256 (hex) of the plain bytes."""
        path = self._path(blob_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        sealed = seal_bytes(self.keys, self.key_id, blob_id, data, self.aad)
        with open(tmp, "wb") as f:
            f.write(sealed)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return hashlib.sha256(data).hexdigest()

    def get_sync(self, blob_id: str) -> bytes:
        try:
            raw = self._path(blob_id).read_bytes()
        except FileNotFoundError:
            raise FileStoreError(f"blob {blob_id} is missing") from None
        try:
            return open_bytes(self.keys, blob_id, raw, self.aad)
        except CryptoError as exc:
            raise FileStoreError(f"blob {blob_id} cannot be opened: {exc}") from None

    def delete_sync(self, blob_id: str) -> bool:
        try:
            self._path(blob_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def reseal_sync(self, blob_id: str) -> bool:
        """Re-encrypt with the current key; False when it already uses it."""
        raw = self._path(blob_id).read_bytes()
        if key_id_of_bytes(raw) == self.key_id:
            return False
        self.put_sync(blob_id, open_bytes(self.keys, blob_id, raw, self.aad))
        return True

    async def put(self, blob_id: str, data: bytes) -> str:
        return await asyncio.to_thread(self.put_sync, blob_id, data)

    async def get(self, blob_id: str) -> bytes:
        return await asyncio.to_thread(self.get_sync, blob_id)

    async def delete(self, blob_id: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, blob_id)
