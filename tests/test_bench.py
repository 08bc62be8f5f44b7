"""``madoguchi bench edge --quick`` runs end to end and reports every figure.

Only the shape is checked here: speed targets belong to the benchmark's own output
(``meets_targets``), not to unit tests that run on busy CI machines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main

FIGURES = (
    "issue_p50_ms", "issue_p99_ms", "issue_max_ms", "issue_offered_per_s", "commands_per_s",
    "rss_mb", "rss_peak_mb", "rebuild_s", "rebuild_events", "startup_load_s",
)


@pytest.mark.slow
def test_quick_bench_prints_one_json_object(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "edge", "--quick", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed

    for name in FIGURES:
        value = printed[name]
        assert isinstance(value, int | float), name
        assert not isinstance(value, bool), name
        assert value > 0, name
    assert printed["issue_errors"] == 0
    assert printed["commands_errors"] == 0
    assert printed["rebuild_events"] >= 20_000
    assert "rebuild_100k_s" not in printed  # quick mode generates fewer than 100k events
    assert set(printed["meets_targets"]) == set(printed["targets"])
    assert all(isinstance(v, bool) for v in printed["meets_targets"].values())
    assert printed["cpu_count"] >= 1
    assert printed["python"]
    assert printed["machine"]


DEVICE_FIGURES = ("render_kanji_p99_ms", "render_raster_p99_ms", "render_star_p99_ms",
                  "call_to_display_p99_ms", "call_to_audio_p99_ms")


@pytest.mark.slow
def test_quick_devices_bench_measures_every_figure(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "devices", "--quick", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    for name in DEVICE_FIGURES:
        assert isinstance(printed[name], float), name
        assert printed[name] > 0, name
    assert printed["call_to_display_n"] == 40
    assert printed["voice_engine"] == printed["voice_engines"]["ja"] == "open-jtalk"
    assert set(printed["meets_targets"]) == set(printed["targets"]) == set(DEVICE_FIGURES) - {
        "render_star_p99_ms"}
