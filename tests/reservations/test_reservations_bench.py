"""``madoguchi bench reservations --quick`` runs end to end (mosquitto, a hub process on
PostgreSQL, 500 residents posting the booking form at the publication moment, wrk or Python
clients on the ○/△/× page) and reports every figure. The speed targets belong to the bench's
own output (``meets_targets``); what is checked here holds on any machine: no slot overbooked,
every place asked for taken, none taken without a reservation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main

FIGURES = ("rush_attempts_count", "rush_overbooked_count", "rush_booked_count", "rush_p99_ms",
           "availability_requests_per_s")


@pytest.mark.slow
def test_quick_reservations_bench(tmp_path: Path, postgres_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "reservations", "--quick", "--pg", postgres_url,
                 "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    for name in FIGURES:
        assert isinstance(printed[name], int | float), name
    assert printed["rush_attempts_count"] == 500
    assert printed["rush_overbooked_count"] == 0
    assert printed["rush_places_unheld"] == 0
    assert printed["rush_booked_count"] == printed["rush_bookable_count"]
    assert sum(printed["rush_outcomes"].values()) == 500
    assert set(printed["rush_outcomes"]) <= {"booked", "just_taken"}
    assert printed["availability_requests_per_s"] > 0
    assert set(printed["targets"]) == {"rush_overbooked_count", "rush_p99_ms",
                                       "availability_requests_per_s"}
