"""``madoguchi bench hub --quick`` runs end to end (mosquitto, a hub process on PostgreSQL, real
edges syncing, wrk or the Python load process, SSE streams in a load process, 50 staff signing
in at once from a load process) and reports every figure.

Only the shape is checked: the speed targets belong to the benchmark's own output
(``meets_targets``), not to tests that run on busy CI machines.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench_support import quick_bench

from edge.bench.hub_rig import parse_wrk

FIGURES = ("status_json_requests_per_s", "status_json_p50_ms", "status_json_p99_ms",
           "status_json_requests_count", "status_json_body_bytes",
           "live_connections_count", "live_update_p50_ms", "live_update_p99_ms",
           "live_update_max_ms", "live_update_from_edge_p99_ms", "live_deliveries_count",
           "live_hub_cpu_per_update_s", "live_load_cpu_per_update_s",
           "webticket_round_trip_p50_ms", "webticket_round_trip_p99_ms",
           "webticket_concurrent_round_trip_p99_ms", "webticket_pow_bits",
           "pow_default_bits", "pow_default_solve_p50_ms", "pow_default_solve_p99_ms",
           "login_p50_ms", "login_p99_ms", "login_max_ms", "login_verify_ms",
           "login_argon2_floor_ms")


@pytest.mark.slow
def test_quick_hub_bench_prints_every_figure(tmp_path: Path, postgres_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    printed = quick_bench("hub", postgres_url, tmp_path, capsys, FIGURES)
    # wrk when installed (MADOGUCHI_STRICT=1 makes a missing wrk fail the bench)
    assert printed["status_json_load_tool"] == ("wrk" if shutil.which("wrk")
                                                else "python-aiohttp")
    assert printed["status_json_non_2xx_count"] == 0
    assert printed["live_update_p50_ms"] <= printed["live_update_p99_ms"] \
        <= printed["live_update_max_ms"]
    streams = printed["live_connections_count"]
    assert streams == 200
    assert printed["live_connections_failed_count"] == 0
    assert printed["live_connections_all_updates_count"] == streams
    assert printed["live_deliveries_count"] == streams * printed["live_events_count"]
    assert printed["webticket_failed_count"] == 0
    assert printed["webticket_in_edge_queue_count"] == printed["webticket_count"] == 20
    assert printed["webticket_pow_bits"] < printed["pow_default_bits"]
    # every one of the 50 sign-ins answered 303 and its session opened a staff-only API
    assert printed["login_count"] == printed["login_ok_count"] == 50
    assert printed["login_signed_in_count"] == 50
    assert printed["login_p50_ms"] <= printed["login_p99_ms"] <= printed["login_max_ms"]
    assert printed["login_argon2"].startswith("argon2id m=")
    assert set(printed["targets"]) == {"status_json_requests_per_s", "live_connections_count",
                                       "live_update_p99_ms", "webticket_round_trip_p99_ms",
                                       "login_p99_ms"}
    assert printed["targets"]["login_p99_ms"] == 300
    assert set(printed["meets_targets"]) == set(printed["targets"])
    assert all(isinstance(v, bool) for v in printed["meets_targets"].values())
    assert printed["load_average_1m"] >= 0


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8090/api/status
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.01ms    3.10ms  80.00ms   90.00%
  Latency Distribution
     50%   11.50ms
     75%   13.00ms
     90%   15.20ms
     99%    1.20s
  41000 requests in 10.00s, 300.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   4100.00
Transfer/sec:     30.00MB
"""


def test_wrk_output_is_read() -> None:
    got = parse_wrk(WRK_OUTPUT)
    assert got == {"requests": 41000.0, "requests_per_s": 4100.0, "p50_ms": 11.5,
                   "p99_ms": 1200.0, "non_2xx": 7.0, "socket_errors": 3.0}
    assert parse_wrk(WRK_OUTPUT.replace("99%    1.20s", "99%  850.00us"))["p99_ms"] == 0.85
