"""The attachment pipeline end to end with a real clamd: only clean files of an allowed type and
size are stored, and stored sealed; everything else is refused with the resident's sentence and
leaves the store empty."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from clamd_support import SIGNATURE, Clamd, eicar, pdf, png, start_clamd
from conftest import free_port
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.attachments import (
    AAD,
    REFUSALS,
    Attachment,
    AttachmentIntake,
    FieldRules,
    Refusal,
    sanitise_filename,
)
from hub.forms.scan import ClamdClient
from hub.kit.sealedfiles import FileStoreError, SealedFileStore
from hub.notices.files import FileStore

PDF_ONLY = FieldRules(types=frozenset({"application/pdf"}))
PDF_OR_TEXT = FieldRules(types=frozenset({"application/pdf", "text/plain"}))
KEYS = {"k1": os.urandom(32)}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


@pytest.fixture
def intake(clamd: Clamd, tmp_path: Path) -> AttachmentIntake:
    return AttachmentIntake.open(tmp_path / "files", KEYS, "k1", clamd.client(concurrency=8))


def stored(intake: AttachmentIntake) -> list[Path]:
    return sorted(p for p in intake.store.root.rglob("*") if p.is_file())


async def test_eicar_is_refused_with_a_clear_message_and_nothing_is_stored(
        intake: AttachmentIntake) -> None:
    got = await intake.accept(PDF_OR_TEXT, [eicar()], filename="eicar.com.txt",
                              declared_type="text/plain")
    assert isinstance(got, Refusal)
    assert got.code == "infected"
    assert got.ja == "ファイルからウイルスが検出されたため、受け付けできませんでした。"
    assert got.en == "This file contains a virus and was not accepted."
    assert got.message("ja") == got.ja
    assert got.message("en") == got.en
    assert got.signature is not None
    assert got.signature.startswith(SIGNATURE)
    # the same string inside a real PDF, for a PDF-only field: passes the type, fails the scan
    inside = await intake.accept(PDF_ONLY, [pdf(text=eicar())], filename="申請書.pdf")
    assert isinstance(inside, Refusal)
    assert inside.code == "infected"
    assert stored(intake) == []


async def test_a_clean_pdf_is_stored_sealed_and_reads_back(intake: AttachmentIntake) -> None:
    data = pdf(50_000, text=b"juminhyo")
    got = await intake.accept(PDF_ONLY, [data[:1000], data[1000:]],
                              filename="C:\\Users\\yamada\\住民票 (写し).pdf",
                              declared_length=len(data), declared_type="application/pdf")
    assert isinstance(got, Attachment), got
    assert (got.size, got.mime) == (len(data), "application/pdf")
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.filename == "住民票 (写し).pdf"
    files = stored(intake)
    assert len(files) == 1
    assert got.id in files[0].name
    on_disk = files[0].read_bytes()
    assert on_disk != data
    assert b"juminhyo" not in on_disk
    assert b"%PDF" not in on_disk
    assert await intake.read(got.id) == data
    # sealed for forms: the notices' store over the same folder cannot open it
    with pytest.raises(FileStoreError):
        FileStore(intake.store.root, KEYS, "k1").get_sync(got.id)
    assert await intake.delete(got.id)
    assert stored(intake) == []


async def test_a_png_named_pdf_and_sent_as_pdf_is_refused(intake: AttachmentIntake) -> None:
    got = await intake.accept(PDF_ONLY, [png()], filename="scan.pdf",
                              declared_type="application/pdf")
    assert isinstance(got, Refusal)
    assert got.code == "wrong_type"
    assert got.ja == REFUSALS["wrong_type"].ja
    assert stored(intake) == []
    # the same PNG where images are allowed is fine: the bytes decide, both ways
    ok = await intake.accept(FieldRules(types=frozenset({"image/*"})), [png()],
                             filename="scan.pdf", declared_type="application/pdf")
    assert isinstance(ok, Attachment)
    assert ok.mime == "image/png"


async def test_a_scanner_that_is_down_refuses_every_file(tmp_path: Path) -> None:
    down = ClamdClient(host="127.0.0.1", port=free_port(), connect_timeout=1.0)
    intake = AttachmentIntake.open(tmp_path / "files", KEYS, "k1", down)
    got = await intake.accept(PDF_ONLY, [pdf()], filename="a.pdf")
    assert isinstance(got, Refusal)
    assert got.code == "scanner_unavailable"
    assert "try again later" in got.en
    assert "時間をおいて" in got.ja
    assert stored(intake) == []


async def test_too_large_is_refused_before_or_while_reading(intake: AttachmentIntake,
                                                            clamd: Clamd) -> None:
    small = FieldRules(max_bytes=10_000, types=frozenset({"application/pdf"}))
    pulled = 0

    async def chunks(n: int) -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(n):
            pulled += 1
            yield b"%PDF-1.7\n" + b"0" * 4000

    declared = await intake.accept(small, chunks(100), filename="big.pdf",
                                   declared_length=400_000)
    assert isinstance(declared, Refusal)
    assert declared.code == "too_large"
    assert pulled == 0  # refused from the declared length: not a byte read
    streamed = await intake.accept(small, chunks(100), filename="big.pdf")
    assert isinstance(streamed, Refusal)
    assert streamed.code == "too_large"
    assert pulled == 3  # stopped at the first chunk over the limit
    in_memory = await intake.accept_bytes(small, pdf(10_001), filename="big.pdf")
    assert isinstance(in_memory, Refusal)
    assert in_memory.code == "too_large"
    # within the field's limit but over clamd's StreamMaxLength: not scanned, not accepted
    roomy = FieldRules(max_bytes=clamd.stream_max * 2, types=frozenset({"application/pdf"}))
    over = await intake.accept(roomy, [pdf(clamd.stream_max + 10_000)], filename="a.pdf")
    assert isinstance(over, Refusal)
    assert over.code == "scan_size_limit"
    empty = await intake.accept(PDF_ONLY, [], filename="a.pdf")
    assert isinstance(empty, Refusal)
    assert empty.code == "empty"
    assert stored(intake) == []


async def test_twenty_simultaneous_1mb_pdfs_are_all_scanned_and_stored(
        intake: AttachmentIntake) -> None:
    files = [pdf(1024 * 1024, text=b"applicant %d" % i) for i in range(20)]
    started = time.monotonic()
    results = await asyncio.gather(*(intake.accept(PDF_ONLY, [f], filename=f"{i}.pdf")
                                     for i, f in enumerate(files)))
    elapsed = time.monotonic() - started
    assert all(isinstance(r, Attachment) for r in results), results
    accepted = [r for r in results if isinstance(r, Attachment)]
    assert len({r.id for r in accepted}) == 20
    assert len(stored(intake)) == 20
    for r, f in zip(accepted, files, strict=True):
        assert r.sha256 == hashlib.sha256(f).hexdigest()
    assert await intake.read(accepted[7].id) == files[7]
    assert elapsed < 30, f"20 scans of 1 MB took {elapsed:.1f} s"


async def test_bytes_are_not_mistaken_for_chunks(intake: AttachmentIntake) -> None:
    """Iterating bytes gives ints: a caller passing a whole file to ``accept`` is told so."""
    with pytest.raises(TypeError, match="accept_bytes"):
        await intake.accept(PDF_ONLY, pdf(), filename="a.pdf")  # type: ignore[arg-type]
    assert isinstance(await intake.accept_bytes(PDF_ONLY, pdf(), filename="a.pdf"), Attachment)


def test_the_store_must_be_the_forms_own(tmp_path: Path, clamd: Clamd) -> None:
    other = SealedFileStore(tmp_path, KEYS, "k1", b"madoguchi/notices/file/v1")
    with pytest.raises(ValueError, match="forms' AAD"):
        AttachmentIntake(other, clamd.client())
    assert AAD == b"madoguchi/forms/file/v1"


def test_every_refusal_speaks_both_languages() -> None:
    for code, r in REFUSALS.items():
        assert r.code == code
        assert r.en
        assert r.ja
        assert r.en != r.ja


def test_filenames_as_browsers_send_them() -> None:
    assert sanitise_filename("/home/a/b.pdf") == "b.pdf"
    assert sanitise_filename("..\\..\\windows\\win.ini") == "win.ini"
    assert sanitise_filename("...") == "file"
    assert sanitise_filename(".bashrc") == "bashrc"
    assert sanitise_filename("a\x00b<>.pdf") == "a_b__.pdf"
    kana = "\u30cf\u309a\u30b9\u30db\u309a\u30fc\u30c8.pdf"  # decomposed パスポート (macOS)
    assert sanitise_filename(kana) == "パスポート.pdf"
    long = sanitise_filename("あ" * 300 + ".pdf")
    assert len(long) == 120
    assert long.endswith(".pdf")


@given(st.text(max_size=400))
def test_a_sanitised_name_is_always_safe(name: str) -> None:
    out = sanitise_filename(name)
    assert 0 < len(out) <= 120
    assert not any(c in out for c in '/\\<>:"|?*')
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in out)
    assert not out.startswith((".", " "))
