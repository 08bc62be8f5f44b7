"""The notice PDFs at rest: one encrypted file per blob, named by its random id.

The store itself is the kit's ``SealedFileStore`` (shared with form attachments); this module
binds it to the notices' own associated-data prefix ``madoguchi/notices/file/v1``, so a notice
file cannot be opened as any other kind of sealed file. See ``hub.kit.sealedfiles`` for why
files, the sealing, the atomic writes and key rotation (``reseal``).
"""

from __future__ import annotations

from pathlib import Path

from hub.kit.sealedfiles import FileStoreError, SealedFileStore

__all__ = ["AAD", "FileStore", "FileStoreError"]

AAD = b"madoguchi/notices/file/v1"


class FileStore(SealedFileStore):
    """The notices' encrypted blobs under ``root`` (the constructor the notices always had)."""

    def __init__(self, root: Path, keys: dict[str, bytes], key_id: str) -> None:
        super().__init__(root, keys, key_id, AAD)
