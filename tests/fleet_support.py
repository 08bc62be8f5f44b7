"""Helpers for the fleet tests: the SMTP sink (``mail_support``), a site with a simulated printer, a
hub site row with a status as an edge would send it, and the staff forms' CSRF token."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from hub.store import HubStore

FAST_FLEET = {  # seconds instead of minutes: what the e2e tests run the watcher with
    "MADOGUCHI_FLEET_TICK_S": "0.2", "MADOGUCHI_FLEET_HOLD_S": "1",
    "MADOGUCHI_FLEET_CLEAR_S": "3", "MADOGUCHI_FLEET_FLAP_RISES": "4",
    "MADOGUCHI_FLEET_FLAP_WINDOW_S": "60", "MADOGUCHI_FLEET_STALE_S": "6",
    "MADOGUCHI_FLEET_MINUTE_S": "1",
}


def site_toml(site: str, printer: str | None = None) -> str:
    """One service, one counter; a kiosk printer on ``sim://<printer>`` if given; open all
    day every day (no weekly hours, no holidays, no year-end closure), open access."""
    devices = "" if printer is None else f"""
[[devices]]
id = "printer-k1"
kind = "printer"
profile = "epson-tm-t88vi"
url = "sim://{printer}"
kiosk = "k1"
"""
    return f"""version = 1

[site]
id = "{site}"
access = "open"
name = {{ ja = "練馬区民事務所", en = "Nerima Office" }}
timezone = "Asia/Tokyo"

[[services]]
code = "A"
name = {{ ja = "住民異動", en = "Moving" }}
range = [1, 99]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A"]
{devices}
[calendar]
national_holidays = false
year_end = []
"""


def status(site: str, *, online: bool = True, at: str = "2026-12-07T09:00:00.000+09:00",
           outbox: int = 0, disk: float = 42.0) -> str:
    return json.dumps({"v": 1, "site": site, "online": online, "session": "s", "at": at,
                       "last_seq": 0, "outbox": outbox,
                       "host": {"disk_pct": disk, "mem_pct": 51.5, "load1": 0.4, "cpus": 2}})


async def put_site(store: HubStore, site: str, devices: list[dict[str, Any]] | None = None,
                   **kw: Any) -> None:
    """A site row as ingest writes it from an edge's status (and its devices)."""
    async with store.begin() as tx:
        await tx.upsert_site(site, online=kw.get("online", True), session="s",
                             status=status(site, **kw))
        if devices is not None:
            await tx.replace_devices(site, devices)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return html.unescape(found.group(1))
