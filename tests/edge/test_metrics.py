"""The edge's ``/metrics`` (Prometheus text) and its gate, on a real edge with a simulated
printer; and the gate's rule on its own (deny by default)."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import aiohttp
import pytest
from conftest import free_port
from fleet_support import site_toml
from support import morning

from edge.app import build_edge, start_edge
from edge.config import parse_site_config
from edge.devices.transport.sim import SIMS, sim_device
from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.web.metrics import MetricsAccess


def test_the_gate_denies_by_default() -> None:
    assert not MetricsAccess().allows("127.0.0.1", "")
    assert not MetricsAccess().allows("127.0.0.1", "Bearer ")
    token = MetricsAccess(token="t0ken")
    assert token.allows(None, "Bearer t0ken")
    assert not token.allows("127.0.0.1", "Bearer t0ke")
    assert not token.allows("127.0.0.1", "Basic t0ken")
    nets = MetricsAccess.from_env({"MADOGUCHI_METRICS_ALLOW": "10.20.0.5/32, 10.30.0.0/16"})
    assert nets.networks == (ipaddress.ip_network("10.20.0.5/32"),
                             ipaddress.ip_network("10.30.0.0/16"))
    assert nets.allows("10.30.4.2", "")
    assert nets.allows("10.20.0.5", "")
    assert not nets.allows("10.20.0.6", "")
    assert not nets.allows("not-an-ip", "")
    with pytest.raises(ValueError, match="does not appear to be"):
        MetricsAccess.from_env({"MADOGUCHI_METRICS_ALLOW": "10.20.0.300/32"})


async def test_edge_metrics_show_outbox_and_device_health(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_METRICS_TOKEN", "edge-scrape")
    monkeypatch.delenv("MADOGUCHI_METRICS_ALLOW", raising=False)
    monkeypatch.setattr("edge.devices.printer.service.POLL_S", 0.1)
    SIMS.pop("metrics-printer", None)
    config = parse_site_config(site_toml("metrics-site", printer="metrics-printer"))
    edge = build_edge(config, tmp_path / "e.db", ManualClock(morning()))
    sim_device("metrics-printer").faults.paper_out = True
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    try:
        await edge.writer.execute(c.OpenCounter("1"))
        await edge.writer.execute(c.Issue("A"))
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert r.status == 403
            for _ in range(100):  # the first poll sees the paper out
                async with http.get(url, headers={"Authorization": "Bearer edge-scrape"}) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                    body = await r.text()
                if 'state="error"} 1.0' in body:
                    break
                await asyncio.sleep(0.05)
        assert 'madoguchi_edge_device_state{device="printer-k1",kind="printer",state="error"} ' \
            '1.0' in body
        assert 'madoguchi_edge_device_state{device="printer-k1",kind="printer",state="ok"} ' \
            '0.0' in body
        last_seq = edge.writer.state.seq
        assert f"madoguchi_edge_last_seq {float(last_seq)}" in body
        assert f"madoguchi_edge_outbox_events {float(last_seq)}" in body  # no hub: all unsent
        assert 'madoguchi_edge_info{site="metrics-site"' in body
        assert "madoguchi_edge_disk_used_percent " in body
    finally:
        await runner.cleanup()
