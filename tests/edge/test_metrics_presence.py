"""The mini-PC figures in the ``status`` presence (disk, memory, load, CPUs): read from
``/proc`` and ``statvfs``, validated by the wire model the hub uses, left out when unreadable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.protocol import Status, WireError
from edge.sync import presence
from hub.ingest import validate


def test_host_figures_are_in_the_online_status_and_pass_the_hubs_model(tmp_path: Path) -> None:
    status = presence.online("pres-site", "s1", datetime.now(UTC), 1, 1, 0, 0, None,
                             config_error=None, sync_error=None, disk_path=str(tmp_path))
    host = status["host"]
    assert 0 <= host["disk_pct"] <= 100
    assert 0 <= host["mem_pct"] <= 100
    assert host["load1"] >= 0
    assert host["cpus"] >= 1
    kept = validate.status(json.dumps(status).encode(), "pres-site").payload
    assert kept["host"] == host  # the hub stores it as sent (the fleet page reads it)


def test_meminfo_is_read_and_an_unreadable_one_is_left_out(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        8000000 kB\nMemFree:  100 kB\n"
                       "MemAvailable:    2000000 kB\n", encoding="ascii")
    assert presence.host(str(tmp_path), str(meminfo))["mem_pct"] == 75.0
    meminfo.write_text("garbage\n", encoding="ascii")
    assert "mem_pct" not in presence.host(str(tmp_path), str(meminfo))
    assert "disk_pct" not in presence.host(str(tmp_path / "missing"), str(meminfo))


@pytest.mark.parametrize(("host", "where"), [
    ({"disk_pct": 101.0}, "host.disk_pct must be a percentage (0-100)"),
    ({"mem_pct": -1}, "host.mem_pct must be a percentage (0-100)"),
    ({"load1": "high"}, "host.load1"),
    ({"cpus": 0}, "host.cpus must be a positive integer"),
    ([1, 2], "host must be an object"),
])
def test_a_bad_host_block_is_refused_with_its_rule(host: object, where: str) -> None:
    raw = {"v": 1, "site": "pres-site", "online": True, "session": "s",
           "at": "2026-12-07T09:00:00+09:00", "host": host}
    with pytest.raises(WireError) as caught:
        Status.from_raw(raw)
    assert str(caught.value).startswith(where)


def test_an_older_edge_without_host_still_fits() -> None:
    raw = {"v": 1, "site": "pres-site", "online": True, "session": "s",
           "at": "2026-12-07T09:00:00+09:00"}
    assert Status.from_raw(raw).host is None
