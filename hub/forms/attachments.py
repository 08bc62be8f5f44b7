"""Accepting a resident's attachment (F3): size, type from the bytes, virus scan, sealed store.

Why this order: the size limit first, so nobody can make the hub hold more than a field allows
(refused from the declared length before a byte is read, and again while reading); the sniffed
type next, because it costs nothing and a wrong type needs no scan; then clamd. Only a clean
verdict seals and stores the file; until then it lives in memory (fields take 10 MB by default),
so an infected or refused upload never reaches a disk, not even as a temporary file. A scanner
that cannot answer refuses the file ("try again later"): fail closed.

The engine knows no HTTP and no database: the form routes feed it the part's chunks and keep
the returned ``Attachment`` record with the submission (its ``filename`` is what the resident
typed and may be personal data: seal it with the answers, never log it). Refusals carry a
stable code and the sentence the resident reads, in ja and en.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hub.forms.scan import ClamdClient, ScanResult
from hub.forms.sniff import PDF, allowed, normalise, sniff
from hub.kit.sealedfiles import SealedFileStore

_LOGGER = logging.getLogger(__name__)

AAD = b"madoguchi/forms/file/v1"
MAX_BYTES = 10 * 1024 * 1024
NAME_MAX = 120  # characters of a stored original filename


@dataclass(frozen=True, slots=True)
class FieldRules:
    """One attachment field's limits: at most ``max_bytes``, of one of the ``types``."""

    max_bytes: int = MAX_BYTES
    types: frozenset[str] = field(
        default_factory=lambda: frozenset({PDF, "image/jpeg", "image/png"}))

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or not self.types:
            raise ValueError("an attachment field needs a positive size limit and a type")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A stored, clean attachment: what the submission keeps (the bytes are in the store)."""

    id: str
    sha256: str
    size: int
    mime: str
    filename: str  # sanitised; the resident's own words, personal data


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attachment was not accepted: a stable code and the resident's sentence."""

    code: str
    en: str
    ja: str
    signature: str | None = None  # ClamAV's name for what it found (staff and audit only)

    def message(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


_TRY_LATER_EN = "The file could not be checked for viruses just now. Please try again later."
_TRY_LATER_JA = ("現在ファイルのウイルス検査ができないため、受け付けできませんでした。"
                 "時間をおいてもう一度お試しください。")
# The refusals residents see; screens and the API refer to these by code.
REFUSALS: dict[str, Refusal] = {r.code: r for r in (
    Refusal("infected", "This file contains a virus and was not accepted.",
            "ファイルからウイルスが検出されたため、受け付けできませんでした。"),
    Refusal("too_large", "This file is too large. Please attach a smaller file.",
            "ファイルのサイズが大きすぎます。より小さいファイルを添付してください。"),
    Refusal("wrong_type", "This kind of file cannot be attached here. "
            "Please check the file types allowed for this item.",
            "この項目には、この種類のファイルは添付できません。添付できるファイルの種類を"
            "ご確認ください。"),
    Refusal("empty", "This file is empty. Please choose the file again.",
            "ファイルが空です。もう一度ファイルを選んでください。"),
    Refusal("scanner_unavailable", _TRY_LATER_EN, _TRY_LATER_JA),
    Refusal("scanner_timeout", _TRY_LATER_EN, _TRY_LATER_JA),
    Refusal("scanner_error", _TRY_LATER_EN, _TRY_LATER_JA),
    Refusal("scanner_protocol", _TRY_LATER_EN, _TRY_LATER_JA),
    Refusal("scan_size_limit", "This file is too large to be checked for viruses. "
            "Please attach a smaller file.",
            "ファイルが大きすぎるため、ウイルス検査ができませんでした。"
            "より小さいファイルを添付してください。"),
)}


def refusal(code: str, signature: str | None = None) -> Refusal:
    base = REFUSALS.get(code) or REFUSALS["scanner_error"]
    return Refusal(code, base.en, base.ja, signature)


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


def sanitise_filename(name: str, limit: int = NAME_MAX) -> str:
    """The resident's filename, safe to show and to offer as a download name.

    No directories (both ``/`` and ``\\``, as Windows browsers may send a full path), no
    control or reserved characters, NFC (macOS sends decomposed kana), no leading dots, at
    most ``limit`` characters keeping the extension; ``file`` when nothing is left."""
    if limit < 16:
        raise ValueError("a filename limit under 16 characters leaves no room for a name")
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(". ").strip()
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext or len(ext) > 10:
        stem, ext = name, ""
    else:
        ext = f".{ext}"
    stem = stem[:limit - len(ext)].rstrip()
    return (stem or "file") + ext


class AttachmentIntake:
    """The accept pipeline over one sealed store (``AAD``) and one clamd client."""

    def __init__(self, store: SealedFileStore, scanner: ClamdClient) -> None:
        if store.aad != AAD:
            raise ValueError("form attachments need a store sealed with the forms' AAD")
        self.store, self.scanner = store, scanner

    @classmethod
    def open(cls, root: Path, keys: dict[str, bytes], key_id: str,
             scanner: ClamdClient) -> AttachmentIntake:
        return cls(SealedFileStore(root, keys, key_id, AAD), scanner)

    async def accept(self, rules: FieldRules, chunks: AsyncIterable[bytes] | Iterable[bytes],
                     *, filename: str, declared_length: int | None = None,
                     declared_type: str | None = None) -> Attachment | Refusal:
        """Read ``chunks`` (an upload part) within the field's limit, check, scan, store.

        ``declared_length`` and ``declared_type`` are the client's claims: a length over the
        limit refuses at once, the type is only logged when it disagrees with the bytes."""
        if isinstance(chunks, bytes | bytearray | memoryview):
            raise TypeError("accept takes chunks; use accept_bytes for bytes in memory")
        if declared_length is not None and declared_length > rules.max_bytes:
            return self._refuse("too_large")
        buffer = bytearray()
        if isinstance(chunks, AsyncIterable):
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) > rules.max_bytes:
                    return self._refuse("too_large")
        else:
            for chunk in chunks:
                buffer += chunk
                if len(buffer) > rules.max_bytes:
                    return self._refuse("too_large")
        return await self.accept_bytes(rules, bytes(buffer), filename=filename,
                                       declared_type=declared_type)

    async def accept_bytes(self, rules: FieldRules, data: bytes, *, filename: str,
                           declared_type: str | None = None) -> Attachment | Refusal:
        """The same pipeline for bytes already in memory (staff-entered paper submissions)."""
        if len(data) > rules.max_bytes:
            return self._refuse("too_large")
        if not data:
            return self._refuse("empty")
        mime = sniff(data, filename)
        if declared_type is not None and mime is not None and normalise(declared_type) != mime:
            _LOGGER.info("attachment claimed %s, is %s", normalise(declared_type)[:80], mime)
        if mime is None or not allowed(mime, rules.types):
            return self._refuse("wrong_type", detail=mime or "unknown")
        result: ScanResult = await self.scanner.scan(data)
        if result.verdict == "infected":
            return self._refuse("infected", signature=result.signature)
        if not result.clean:  # error, or anything a later verdict might add: fail closed
            return self._refuse(result.reason or "scanner_error")
        blob_id = secrets.token_urlsafe(18)
        sha256 = await self.store.put(blob_id, data)
        return Attachment(blob_id, sha256, len(data), mime, sanitise_filename(filename))

    async def read(self, attachment_id: str) -> bytes:
        """The plain bytes of a stored attachment (``FileStoreError`` when gone)."""
        return await self.store.get(attachment_id)

    async def delete(self, attachment_id: str) -> bool:
        """Remove a stored attachment (retention, a withdrawn submission)."""
        return await self.store.delete(attachment_id)

    @staticmethod
    def _refuse(code: str, *, signature: str | None = None, detail: str = "") -> Refusal:
        # code, signature and type only: never the filename or the content
        _LOGGER.info("attachment refused: %s %s %s", code, signature or "", detail)
        return refusal(code, signature)
