"""``madoguchi bench sync --quick`` runs end to end (mosquitto, a hub process on PostgreSQL,
20 simulated sites, then the ward's sites of ``sites/ward/``) and reports every figure.

Only the shape is checked: the speed targets belong to the benchmark's own output
(``meets_targets``), not to tests that run on busy CI machines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_support import quick_bench

from edge.bench.load import BenchError
from edge.bench.ward import (
    OPEN_CALENDAR,
    default_folder,
    open_every_day,
    step_plan,
    ward_folder,
    ward_tomls,
)
from edge.config import parse_site_config
from edge.paths import data_dir

FIGURES = ("event_to_hub_api_p50_ms", "event_to_hub_api_p99_ms", "event_to_hub_api_max_ms",
           "latency_offered_events_per_s", "hub_api_poll_mean_ms", "backlog_acked_s",
           "backlog_events_per_s", "hub_ingest_s", "hub_ingest_events_per_s")
WARD_FIGURES = ("ward18_event_to_hub_api_p50_ms", "ward18_event_to_hub_api_p99_ms",
                "ward18_event_to_hub_api_max_ms", "ward18_offered_events_per_s",
                "ward18_event_to_broker_p99_ms", "ward18_event_to_hub_received_p99_ms",
                "ward18_hub_api_poll_mean_ms")
WARD = data_dir("sites") / "ward"


@pytest.mark.slow
def test_quick_sync_bench_prints_every_figure(tmp_path: Path, postgres_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    printed = quick_bench("sync", postgres_url, tmp_path, capsys, FIGURES)
    assert printed["event_to_hub_api_p50_ms"] <= printed["event_to_hub_api_p99_ms"] \
        <= printed["event_to_hub_api_max_ms"]
    assert printed["latency_sites"] == 20
    assert printed["latency_events"] > 0
    assert printed["backlog_events"] >= 5_000
    assert "backlog_20k_acked_s" not in printed  # quick mode replays a smaller backlog
    assert printed["hub_ingest_events"] == 20 * 500
    assert printed["hub_db"] == "postgresql"
    # the ward run: every site of sites/ward producing events at once
    for name in WARD_FIGURES:
        value = printed[name]
        assert isinstance(value, int | float), name
        assert not isinstance(value, bool), name
        assert value > 0, name
    assert printed["ward18_event_to_hub_api_p50_ms"] <= printed["ward18_event_to_hub_api_p99_ms"] \
        <= printed["ward18_event_to_hub_api_max_ms"]
    assert printed["ward18_sites"] == printed["ward18_sites_producing"] \
        == len(list(WARD.glob("*.toml")))
    assert printed["ward18_events"] >= printed["ward18_sites"]
    assert set(printed["targets"]) == {"event_to_hub_api_p99_ms", "hub_ingest_events_per_s",
                                       "ward18_event_to_hub_api_p99_ms"}
    assert set(printed["meets_targets"]) == set(printed["targets"])
    assert all(isinstance(v, bool) for v in printed["meets_targets"].values())
    assert printed["cpu_count"] >= 1
    assert printed["load_average_1m"] >= 0


# --- the ward run's sites (no services needed) --------------------------------------------------

def test_ward_sites_open_every_day_with_their_own_config() -> None:
    """Every ward TOML as stored for the bench: its own id and counters, a calendar that
    closes no day (the bench runs on the wall clock), every site able to make events."""
    tomls = ward_tomls(WARD)
    assert len(tomls) == len(list(WARD.glob("*.toml")))
    for site, toml in tomls.items():
        cfg = parse_site_config(toml)
        assert cfg.site == site
        assert not cfg.calendar.national_holidays
        assert not cfg.calendar.closed
        assert not cfg.calendar.special
        assert step_plan(cfg), site
        kiosk = {c for c, s in cfg.services.items() if s.kiosk}
        for cid, svc in step_plan(cfg):
            assert svc in cfg.counters[cid].services
            assert svc in kiosk


def test_open_every_day_replaces_the_calendar() -> None:
    base = (data_dir("sites") / "nerima-main.toml").read_text("utf-8")
    closing = base + ('\n[calendar]\nnational_holidays = true\nyear_end = ["12-29", "01-03"]\n'
                      'closed = [2027-01-04]\n'
                      'special = [{ date = 2026-12-26, closed = true }]\n')
    assert parse_site_config(closing).calendar.closed  # the input does close days
    opened = parse_site_config(open_every_day(closing))
    assert not opened.calendar.national_holidays
    assert not opened.calendar.year_end
    assert not opened.calendar.closed
    assert not opened.calendar.special
    assert len(re.findall(r"(?m)^\[calendar\]", open_every_day(closing))) == 1
    kept = parse_site_config(open_every_day(base))
    assert (kept.site, kept.services, kept.counters, kept.devices) == (
        (want := parse_site_config(base)).site, want.services, want.counters, want.devices)
    assert open_every_day(base).endswith(OPEN_CALENDAR)


def test_ward_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no ward site configs"):
        ward_tomls(tmp_path)
    one = sorted(WARD.glob("*.toml"))[0].read_text("utf-8")
    (tmp_path / "a.toml").write_text(one, encoding="utf-8")
    (tmp_path / "b.toml").write_text(one, encoding="utf-8")
    with pytest.raises(BenchError, match="appears twice"):
        ward_tomls(tmp_path)
    assert default_folder() == WARD
    with ward_folder(tmp_path):  # bench sync --ward FOLDER
        assert default_folder() == tmp_path
    assert default_folder() == WARD
