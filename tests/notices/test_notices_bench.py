"""``madoguchi bench notices --quick``: the whole flow (split, sign with a local TSA, send to
aiosmtpd, residents downloading from the portal's own process) on small sizes, on PostgreSQL
(``quick_bench``) and on SQLite (the default store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench_support import quick_bench

from edge.bench.notices import QUICK, TARGETS
from edge.cli import main

FIGURES = (*TARGETS, "signed_count", "mails_sent_count", "portal_downloads_count",
           "portal_download_p50_ms", "portal_pdf_bytes_max")


def _check(printed: dict[str, Any]) -> None:
    """The counts are the quick sizes (every part signed, every mail accepted, every download a
    PDF) and every target is judged."""
    assert printed["split_parts_count"] == printed["signed_count"] == QUICK.residents
    assert printed["split_pages_count"] == 2 * QUICK.residents
    assert printed["mails_sent_count"] == QUICK.mails
    assert printed["portal_residents_count"] == QUICK.portal_residents
    assert printed["portal_downloads_count"] == QUICK.portal_residents * QUICK.downloads_each
    assert printed["portal_download_p50_ms"] <= printed["portal_download_p99_ms"]
    assert set(printed["targets"]) == set(printed["meets_targets"]) == set(TARGETS)
    for name, ok in printed["meets_targets"].items():
        assert ok == (printed[name] <= TARGETS[name]), name


def test_quick_notices_bench_on_postgresql(tmp_path: Path, postgres_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    printed = quick_bench("notices", postgres_url, tmp_path, capsys, FIGURES)
    assert printed["store"] == "postgresql"
    _check(printed)


def test_quick_notices_bench_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "notices", "--quick"]) == 0
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert printed["store"] == "sqlite"
    for figure in FIGURES:
        assert isinstance(printed[figure], int | float), figure
        assert printed[figure] > 0, figure
    _check(printed)
