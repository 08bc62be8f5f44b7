"""Targets of a benchmark run, judged in one place so that every ``madoguchi bench`` says the
same thing the same way (DESIGN.md "Interfaces")."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def judge(result: dict[str, Any], targets: Mapping[str, float],
          at_least: Collection[str] = ()) -> None:
    """Add ``targets`` (those this run measured) and ``meets_targets`` to ``result``: a figure
    meets its target when it is at most the target, or at least it for names in ``at_least``."""
    measured = {k: v for k, v in targets.items() if k in result}
    result["targets"] = measured
    result["meets_targets"] = {
        k: bool(result[k] >= v if k in at_least else result[k] <= v) for k, v in measured.items()}
