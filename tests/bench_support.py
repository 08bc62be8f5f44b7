"""The quick run every ``madoguchi bench`` test makes: on PostgreSQL and a private mosquitto."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import unavailable

from edge.cli import main


def quick_bench(name: str, postgres_url: str, tmp_path: Path,
                capsys: pytest.CaptureFixture[str], figures: Iterable[str]) -> dict[str, Any]:
    """``bench NAME --quick``'s JSON: printed and written alike, every figure a positive number."""
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        unavailable(f"mosquitto is not installed: bench {name} starts a private one")
    out = tmp_path / "bench.json"
    assert main(["bench", name, "--quick", "--pg", postgres_url, "--out", str(out)]) == 0
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    assert printed["bench"] == name
    assert printed["quick"] is True
    for figure in figures:
        value = printed[figure]
        assert isinstance(value, int | float), figure
        assert not isinstance(value, bool), figure
        assert value > 0, figure
    return printed
