"""``madoguchi bench screens --quick`` runs in real Chromium and reports every figure.

The speed figures are checked for shape only: speed targets belong to the benchmark's own output
(``meets_targets``), not to tests that run on busy CI machines. The monitor's legibility in a
15-counter hall (``monitor15_*``) does not depend on the machine's load, so its targets are
checked here too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main

NAMES = ("call_to_monitor", "call_to_monitor_frame", "call_to_monitor_ws_message",
         "kiosk_tap_to_number", "clients30_call_to_monitor",
         "clients30_call_to_monitor_ws_message", "monitors30_call_to_monitor",
         "monitors30_call_to_monitor_frame", "monitors30_call_to_monitor_ws_message",
         "monitors30_call_to_last_monitor", "monitors30_kiosk_tap_to_number",
         "kiosk_tap_to_response", "monitors30_kiosk_tap_to_response",
         "settings_publish_to_kiosk")


@pytest.mark.slow
def test_quick_screens_bench_prints_every_figure(tmp_path: Path, chromium_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MADOGUCHI_CHROMIUM", str(chromium_path))
    out = tmp_path / "bench.json"
    assert main(["bench", "screens", "--quick", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    assert printed["bench"] == "screens"
    assert printed["quick"] is True
    for name in NAMES:
        for stat in ("p50", "p95", "p99", "max"):
            value = printed[f"{name}_{stat}_ms"]
            assert isinstance(value, int | float), (name, stat)
            assert not isinstance(value, bool)
            assert value > 0, (name, stat)
        assert printed[f"{name}_p50_ms"] <= printed[f"{name}_p95_ms"]
        assert printed[f"{name}_p95_ms"] <= printed[f"{name}_max_ms"]
        assert printed[f"{name}_n"] > 0
    assert printed["monitors"] == 30
    # every monitor saw every call
    assert printed["monitors30_call_to_monitor_n"] % 30 == 0
    assert 0 <= printed["clock_offset_uncertainty_ms"] < 50
    assert printed["clients30_messages"] > 0  # the 29 extra websocket clients got the pushes
    assert printed["edge_cpu_s"] > 0
    assert set(printed["meets_targets"]) == set(printed["targets"]) == {
        "call_to_monitor_p95_ms", "kiosk_tap_to_number_p95_ms",
        "clients30_call_to_monitor_p95_ms", "monitors30_call_to_monitor_p95_ms",
        "monitors30_kiosk_tap_to_number_p95_ms", "monitor15_number_height_pct_min",
        "monitor15_counter_height_pct_min", "monitor15_clipped",
        "settings_publish_to_kiosk_p95_ms"}
    assert all(isinstance(v, bool) for v in printed["meets_targets"].values())
    check_legibility(printed)
    assert printed["chromium"]


def check_legibility(printed: dict[str, Any]) -> None:
    """The 15-counter hall: every call shown, the big rows large enough and nothing clipped."""
    assert printed["monitor15_calling"] == 15
    for shape in ("", "_en", "_portrait"):
        assert 4 <= printed[f"monitor15{shape}_rows"] <= 8, shape
        assert printed[f"monitor15{shape}_clipped"] == 0, shape
        number = printed[f"monitor15{shape}_number_height_pct_min"]
        assert number >= 8.0, (shape, number)
        counter = printed[f"monitor15{shape}_counter_height_pct_min"]
        assert counter >= 6.0, (shape, counter)
        # the second-language label is readable, not a 10 px footnote (1 % = 10.8 px)
        sub = printed[f"monitor15{shape}_sub_height_pct_min"]
        assert sub >= 1.8, (shape, sub)
        # ink height is below the text box's (about 0.73 em of 1.45 em for digits)
        assert number < printed[f"monitor15{shape}_number_box_pct_min"], shape
    targets = printed["meets_targets"]
    assert targets["monitor15_number_height_pct_min"] is True
    assert targets["monitor15_counter_height_pct_min"] is True
    assert targets["monitor15_clipped"] is True
