"""Device swap (issue 13 item 5): a broken counter display is replaced by a spare by editing its
URL in the hub's settings editor; the edge applies the pushed version and ``madoguchi doctor
--db`` (the configuration the edge applied, not the file it started with) shows it healthy.

Real parts: mosquitto, the hub and an edge with sync in this process (so the simulated devices'
fault switches are shared with the probe), the editor's form over HTTP, and the ``doctor`` CLI
in a subprocess for the ``--db`` option.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
from conftest import free_port
from settings_support import editor_fields, with_values
from staff_support import staff_cookie
from support import morning
from sync_support import REPO, Mosquitto, unique_site, until

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.devices.doctor import probe_configured
from edge.devices.profile_store import load_profiles
from edge.devices.transport.sim import sim_device
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig
from edge.sync.site_config import load_applied_config
from hub.app import start_hub
from hub.settings import HubSettings

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")


def site_toml(site: str) -> str:
    return f"""[site]
id = "{site}"
name = {{ ja = "石神井区民事務所", en = "Shakujii Residents Office" }}

[[services]]
code = "A"
name = {{ ja = "住民異動届", en = "Moving in or out" }}
range = [1, 999]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A"]

[[devices]]
id = "led-1"
kind = "display"
profile = "led-ascii-stx"
url = "sim://{site}-led-broken"
addresses = {{ "1" = 1 }}

[calendar]
national_holidays = false
year_end = []
"""


async def _display_state(config: SiteConfig) -> tuple[str, str]:
    rows = await probe_configured(config, load_profiles(), 1.0)
    row = next(r for r in rows if r.id == "led-1")
    return row.state, row.where


async def test_a_broken_display_is_swapped_for_a_spare_in_the_settings(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    site, prefix = unique_site("swap"), "mdg-swap"
    text = site_toml(site)
    (tmp_path / "site.toml").write_text(text, encoding="utf-8")
    db = tmp_path / "edge.db"
    hub = await start_hub(f"sqlite:///{tmp_path}/hub.db", broker.url, prefix, port=0,
                          settings=SETTINGS)
    try:
        await hub.set_config(site, text)
        edge = build_edge(parse_site_config(text), db, ManualClock(morning()),
                          sync=SyncOptions(broker.url, prefix=prefix))
        runner = await start_edge(edge, "127.0.0.1", free_port())
        try:
            async def applied(version: int) -> SiteConfig | None:
                got = load_applied_config(db, site)
                return got if got is not None and got.version == version else None

            v1 = await until(lambda: applied(1), "the edge applies version 1", 30)
            sim_device(f"{site}-led-broken").faults.unplugged = True  # the display breaks
            state, _ = await _display_state(v1)
            assert state != "ok"

            # staff put the spare's address in the settings editor and publish
            cookie = await staff_cookie(hub.store, SETTINGS, site=site)
            url = f"{hub.url}/admin/settings/{site}?lang=ja&part=devices"
            async with aiohttp.ClientSession(cookies=cookie) as http:
                async with http.get(url) as r:
                    fields = editor_fields(await r.text())
                async with http.post(url, data=with_values(
                        fields, "publish", **{"devices[0].url": f"sim://{site}-led-spare"}),
                        allow_redirects=False) as r:
                    assert r.status == 303, await r.text()
                    assert "published=2" in r.headers["Location"]

            v2 = await until(lambda: applied(2), "the edge applies version 2", 30)
            assert await _display_state(v2) == ("ok", f"sim://{site}-led-spare")
        finally:
            await runner.cleanup()
    finally:
        await hub.stop()
        broker.stop()

    # `madoguchi doctor --db` checks what the edge applied, not the file it was started with
    args = [sys.executable, "-m", "edge.cli", "doctor", "--config", str(tmp_path / "site.toml"),
            "--db", str(db), "--json", "--probe-s", "1"]
    run = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, cwd=REPO,
                                  timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    rows = {r["id"]: r for r in json.loads(run.stdout)["configured"]}
    assert rows["led-1"]["where"] == f"sim://{site}-led-spare"
    assert rows["led-1"]["state"] == "ok"
    assert "版 2" in run.stderr
