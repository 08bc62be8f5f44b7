"""A real ClamAV daemon for tests (``hub.forms.localclamd``: its own clamd, config and EICAR
signature database in a temp dir), and test files (PDF, PNG).

A missing clamd FAILS the test (never skips): the attachment engine's promise is that every
file is scanned, which no fake can show.
"""

from __future__ import annotations

from typing import Any

import pytest

from hub.forms import localclamd
from hub.forms.localclamd import SIGNATURE, Clamd, write_database
from hub.forms.samples import eicar, pdf, png

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
