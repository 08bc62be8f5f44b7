"""The sealed backup file: one file per night, a manifest and an encrypted, authenticated body.

Why one format for edge and hub: both must refuse a corrupt or foreign file before anything is
overwritten, and both may be large (a hub's pg_dump), so the body is streamed in chunks and never
held in memory. Each chunk is sealed with ``hub.notify.crypto.seal_bytes`` (AES-256-GCM, the
audited AEAD already used for contacts and notice PDFs), bound by its associated data to:

- this file's header (manifest included): a manifest edited to pass a backup off as another
  site's, or a newer night's, fails to open;
- its index and record type: chunks cannot be reordered, dropped or duplicated;
- a final trailer record (sha256 and size of the plaintext): a truncated file is refused.

Layout: ``MAGIC | u32 header length | header JSON | records``; a record is ``type (D or T) |
u32 length | sealed bytes``. The header is readable without a key (listing, the operator's eye)
but trusted only once the records open.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from edge.backup.errors import BackupError
from hub.notify.crypto import CryptoError, key_id_of_bytes, open_bytes, seal_bytes

MAGIC = b"MADOGUCHI-BACKUP/1\n"
AAD_PREFIX = b"madoguchi/backup/v1"
CHUNK_BYTES = 1 << 20  # 1 MiB: memory stays flat however large the dump
MAX_RECORD = CHUNK_BYTES + 4096
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Opened:
    """What a verified file holds: its manifest (header plus trailer) and the header's id."""

    manifest: dict[str, Any]
    file_id: str


def _file_id(header: bytes) -> str:
    return hashlib.sha256(MAGIC + header).hexdigest()


def write(out: BinaryIO, manifest: dict[str, Any], chunks: Iterable[bytes],
          keys: dict[str, bytes], key_id: str) -> dict[str, Any]:
    """Seal ``chunks`` (any sizes) under ``manifest``; returns the trailer (sha256, bytes)."""
    header = json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode()
    fid = _file_id(header)
    out.write(MAGIC + _U32.pack(len(header)) + header)
    digest, size, index = hashlib.sha256(), 0, 0
    try:
        for chunk in _rechunk(chunks):
            digest.update(chunk)
            size += len(chunk)
            _record(out, b"D", seal_bytes(keys, key_id, f"{fid}:D:{index}", chunk, AAD_PREFIX))
            index += 1
        trailer = {"sha256": digest.hexdigest(), "bytes": size, "chunks": index}
        body = json.dumps(trailer, sort_keys=True).encode()
        _record(out, b"T", seal_bytes(keys, key_id, f"{fid}:T:{index}", body, AAD_PREFIX))
    except CryptoError as exc:
        raise BackupError(f"cannot seal the backup: {exc}",
                          f"バックアップを暗号化できません: {exc}") from None
    return trailer


def _rechunk(chunks: Iterable[bytes]) -> Iterator[bytes]:
    buf = bytearray()
    for piece in chunks:
        buf += piece
        while len(buf) >= CHUNK_BYTES:
            yield bytes(buf[:CHUNK_BYTES])
            del buf[:CHUNK_BYTES]
    if buf:
        yield bytes(buf)


def _record(out: BinaryIO, kind: bytes, sealed: bytes) -> None:
    out.write(kind + _U32.pack(len(sealed)) + sealed)


def read_header(f: BinaryIO) -> tuple[dict[str, Any], str]:
    """The manifest as written (NOT yet authenticated) and the file id."""
    if f.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a madoguchi backup file", "madoguchi のバックアップではありません")
    raw_len = f.read(4)
    if len(raw_len) != 4 or (n := _U32.unpack(raw_len)[0]) > 1 << 20:
        raise _damaged("header")
    header = f.read(n)
    try:
        manifest = json.loads(header)
    except ValueError:
        raise _damaged("header") from None
    if len(header) != n or not isinstance(manifest, dict):
        raise _damaged("header")
    return manifest, _file_id(header)


def _damaged(where: str) -> BackupError:
    return BackupError(
        f"backup is damaged or was altered ({where}): refused, nothing was changed",
        f"バックアップが破損しているか改ざんされています（{where}）。中止しました。何も変更していません")


def _open(keys: dict[str, bytes], row_id: str, sealed: bytes) -> bytes:
    try:
        return open_bytes(keys, row_id, sealed, AAD_PREFIX)
    except CryptoError:
        try:
            kid = key_id_of_bytes(sealed)
        except CryptoError:
            raise _damaged("record") from None
        if kid not in keys:
            raise BackupError(
                f"backup was sealed with key {kid!r}, which is not configured here (a backup of "
                "another hub or site?): refused, nothing was changed",
                f"バックアップは鍵 {kid!r} で暗号化されていますが、この鍵は設定されていません"
                "（別のハブ・拠点のバックアップ？）。中止しました。何も変更していません") from None
        raise BackupError(
            "backup does not open with the configured key: it was altered, damaged, or sealed "
            "by another hub or site with a key of the same id; refused, nothing was changed",
            "設定された鍵でバックアップを開けません。改ざん・破損、または同じ鍵IDの別のハブ・拠点の"
            "鍵で暗号化されたものです。中止しました。何も変更していません") from None


def chunks(f: BinaryIO, keys: dict[str, bytes], file_id: str,
           done: Callable[[dict[str, Any]], None]) -> Iterator[bytes]:
    """Yield the plaintext chunks of an opened file (after ``read_header``), authenticating
    each; ``done(trailer)`` is called once the trailer opened and the sha256 matched."""
    digest, size, index = hashlib.sha256(), 0, 0
    while True:
        head = f.read(5)
        if len(head) < 5:
            raise BackupError(
                "backup is incomplete (cut short): refused, nothing was changed",
                "バックアップが途中で切れています。中止しました。何も変更していません")
        kind, n = head[:1], _U32.unpack(head[1:])[0]
        if kind not in (b"D", b"T") or n > MAX_RECORD:
            raise _damaged("record")
        sealed = f.read(n)
        if len(sealed) != n:
            raise _damaged("record")
        plain = _open(keys, f"{file_id}:{kind.decode()}:{index}", sealed)
        if kind == b"T":
            break
        digest.update(plain)
        size += len(plain)
        index += 1
        yield plain
    trailer = json.loads(plain)
    if f.read(1) or trailer.get("sha256") != digest.hexdigest() or trailer.get("bytes") != size:
        raise _damaged("checksum")
    done(trailer)


def verify(path: Path, keys: dict[str, bytes],
           sink: Callable[[bytes], object] | None = None) -> Opened:
    """Open and authenticate the whole file; pass each plaintext chunk to ``sink`` if given.

    Raises BackupError for anything but a complete, intact file sealed with one of ``keys``.
    With a sink, the caller must discard what it received if this raises.
    """
    trailer: dict[str, Any] = {}
    try:
        with path.open("rb") as f:
            manifest, fid = read_header(f)
            for chunk in chunks(f, keys, fid, trailer.update):
                if sink is not None:
                    sink(chunk)
    except OSError as exc:
        raise BackupError(f"{path}: cannot read it, or write what it holds: "
                          f"{exc.strerror or exc}",
                          f"{path}: 読み込み、または書き出しに失敗しました: "
                          f"{exc.strerror or exc}") from None
    return Opened({**manifest, **trailer}, fid)


def expect(manifest: dict[str, Any], key: str, wanted: object, en: str, ja: str) -> None:
    """Refuse a backup whose (authenticated) manifest says it is something else."""
    if manifest.get(key) != wanted:
        raise BackupError(
            f"{en}: the backup says {key}={manifest.get(key)!r}, expected {wanted!r}; "
            "refused, nothing was changed",
            f"{ja}: バックアップは {key}={manifest.get(key)!r}、期待値は {wanted!r}。"
            "中止しました。何も変更していません")
