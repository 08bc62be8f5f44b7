"""``madoguchi bench stats``: the synthetic fiscal year is what an edge writes, and the quick
run (2 sites x 3 days) reports every figure.

Only the shape of the bench's output is checked: the speed targets belong to the benchmark's
own output (``meets_targets``), not to tests that run on busy CI machines.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from bench_support import quick_bench
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.bench.stats_data import (
    FY_END,
    FY_START,
    MIN_TICKETS,
    business_days,
    day_rows,
    schedule,
    site_plans,
)
from edge.bench.ward import default_folder
from edge.domain.state import State, apply
from edge.protocol import Envelope
from hub.stats.rollup import Cells, Tally

FIGURES = ("fy_report_p95_ms", "fy_csv_export_s", "rollup_rebuild_s",
           "ingest_with_rollups_events_per_s", "estimate_in_range_ratio_x10",
           "data_tickets", "data_events", "fy_report_p50_ms", "fy_csv_export_rows")
PER_DAY = ("estimate_in_range_ratio", "estimate_mid_mae_s", "baseline_mid_mae_s")
STAFF_ACTIONS = frozenset({"CounterOpened", "CounterClosed", "TicketCalled", "TicketRecalled",
                           "TicketAbsent", "TicketTransferred", "TicketFinished", "DayClosed"})
PLANS = site_plans(default_folder())


def test_the_year_is_the_wards_sites_and_enough_tickets() -> None:
    assert len(PLANS) == 18
    year = schedule(site_plans(default_folder()), None)
    assert sum(n for _p, _d, n in year) >= MIN_TICKETS
    days = {d for _p, d, _n in year}
    assert min(days) >= FY_START
    assert max(days) <= FY_END
    assert date(2025, 5, 5) not in days  # こどもの日
    assert date(2025, 12, 30) not in days  # the year-end closure


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(site=st.integers(0, len(PLANS) - 1), nth=st.integers(0, 200),
       tickets=st.integers(1, 700))
def test_a_generated_day_is_what_an_edge_writes(site: int, nth: int, tickets: int) -> None:
    """Seqs from 1 without gaps, time never going back, unique ids, data serialised as the edge
    does, a login on staff actions; every event folds with the edge's own ``apply``; the
    statistics count every ticket issued."""
    plan = replace(PLANS[site], seq=0, tickets=0, rng=random.Random(nth))
    day = business_days(plan.config)[nth]
    rows = day_rows(plan, day, tickets)
    state = State(plan.config)
    envs = []
    for i, (seq, eid, at, kind, data) in enumerate(rows, start=1):
        assert seq == i
        raw = json.loads(data)
        assert data == json.dumps(raw, ensure_ascii=False, separators=(",", ":"),
                                  sort_keys=True)
        if kind in STAFF_ACTIONS:
            assert raw["staff"]
        env = Envelope(1, plan.site, seq, eid, at, day.isoformat(), kind, raw)
        apply(state, env)  # raises on an event the edge could not have written
        envs.append(env)
    assert [e.type for e in envs[:1]] == ["DayOpened"]
    assert envs[-1].type == "DayClosed"
    times = [datetime.fromisoformat(e.at) for e in envs]
    assert times == sorted(times)
    assert len({e.id for e in envs}) == len(envs)
    cells: Cells = {}
    Tally().feed(envs, cells)
    assert sum(c.n for k, c in cells.items() if k[1] == "issued") == tickets
    assert not state.day_open
    assert not any(c.open for c in state.counters.values())


@pytest.mark.slow
def test_quick_stats_bench_prints_every_figure(tmp_path: Path, postgres_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    printed = quick_bench("stats", postgres_url, tmp_path, capsys, FIGURES)
    for name in PER_DAY:
        assert set(printed[name]) == {"mm3_day", "ward_day"}, name
        assert all(isinstance(v, int | float) and v >= 0 for v in printed[name].values()), name
    assert printed["data_sites"] == 2
    assert printed["data_site_days"] == 6
    assert printed["rollup_rebuild_events"] == printed["data_events"] > printed["data_tickets"]
    assert printed["fy_reports_count"] == len(printed["fy_report_each_ms"]) == 4
    for name in ("fy_report_p95_ms", "fy_csv_export_s", "rollup_rebuild_s",
                 "ingest_with_rollups_events_per_s", "estimate_in_range_ratio",
                 "estimate_mid_mae_s", "estimate_in_range_ratio_x10"):
        assert name in printed["targets"], name
        assert isinstance(printed["meets_targets"][name], bool), name
