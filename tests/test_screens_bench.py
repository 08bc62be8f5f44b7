"""``madoguchi bench screens --quick`` runs in real Chromium and reports every figure.

Only the shape is checked: speed targets belong to the benchmark's own output
(``meets_targets``), not to tests that run on busy CI machines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main

NAMES = ("call_to_monitor", "call_to_monitor_frame", "call_to_monitor_ws_message",
         "kiosk_tap_to_number", "clients30_call_to_monitor",
         "clients30_call_to_monitor_ws_message", "monitors30_call_to_monitor",
         "monitors30_call_to_monitor_frame", "monitors30_call_to_monitor_ws_message",
         "monitors30_call_to_last_monitor", "monitors30_kiosk_tap_to_number",
         "kiosk_tap_to_response", "monitors30_kiosk_tap_to_response")


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
        "monitors30_kiosk_tap_to_number_p95_ms"}
    assert all(isinstance(v, bool) for v in printed["meets_targets"].values())
    assert printed["chromium"]
