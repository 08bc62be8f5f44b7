"""``madoguchi bench sync --quick`` runs end to end (mosquitto, a hub process on PostgreSQL,
20 simulated sites) and reports every figure.

Only the shape is checked: the speed targets belong to the benchmark's own output
(``meets_targets``), not to tests that run on busy CI machines.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import unavailable

from edge.cli import main

FIGURES = ("event_to_hub_api_p50_ms", "event_to_hub_api_p99_ms", "event_to_hub_api_max_ms",
           "latency_offered_events_per_s", "hub_api_poll_mean_ms", "backlog_acked_s",
           "backlog_events_per_s", "hub_ingest_s", "hub_ingest_events_per_s")


@pytest.mark.slow
def test_quick_sync_bench_prints_every_figure(tmp_path: Path, postgres_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        unavailable("mosquitto is not installed: bench sync starts a private one")
    out = tmp_path / "bench.json"
    assert main(["bench", "sync", "--quick", "--pg", postgres_url, "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    assert printed["bench"] == "sync"
    assert printed["quick"] is True
    for name in FIGURES:
        value = printed[name]
        assert isinstance(value, int | float), name
        assert not isinstance(value, bool), name
        assert value > 0, name
    assert printed["event_to_hub_api_p50_ms"] <= printed["event_to_hub_api_p99_ms"] \
        <= printed["event_to_hub_api_max_ms"]
    assert printed["latency_sites"] == 20
    assert printed["latency_events"] > 0
    assert printed["backlog_events"] >= 5_000
    assert "backlog_20k_acked_s" not in printed  # quick mode replays a smaller backlog
    assert printed["hub_ingest_events"] == 20 * 500
    assert printed["hub_db"] == "postgresql"
    assert set(printed["targets"]) == {"event_to_hub_api_p99_ms", "hub_ingest_events_per_s"}
    assert set(printed["meets_targets"]) == set(printed["targets"])
    assert all(isinstance(v, bool) for v in printed["meets_targets"].values())
    assert printed["cpu_count"] >= 1
    assert printed["load_average_1m"] >= 0
