"""What the hub shows about sites, read from the store (the web holds no state of its own, so
several web processes can serve one database)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edge.config import ConfigError, parse_site_config
from edge.domain.model import SiteConfig
from hub.store import HubStore
from hub.store.store import now_utc

DEVICE_STATES = ("ok", "degraded", "offline", "error")
PRIVATE_KEYS = frozenset({"token"})  # a ticket's token is its holder's secret (QR payload)


class ConfigCache:
    """Parsed site configs by (site, version): names and service labels for the pages."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, int], SiteConfig | None] = {}

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._parsed

    def cached(self, site: str, version: int) -> SiteConfig | None:
        return self._parsed.get((site, version))

    def get(self, site: str, version: int, text: str) -> SiteConfig | None:
        key = (site, version)
        if key not in self._parsed:
            try:
                self._parsed[key] = parse_site_config(text, f"hub:{site}@v{version}")
            except ConfigError:
                self._parsed[key] = None
        return self._parsed[key]


def device_summary(devices: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s: sum(1 for d in devices if d["state"] == s) for s in DEVICE_STATES}
    worst = next((s for s in reversed(DEVICE_STATES) if counts[s]), "ok" if devices else None)
    problems = [{"device": d["device"], "kind": d["kind"], "state": d["state"],
                 "reason": d["reason"]} for d in devices if d["state"] != "ok"]
    return {"total": len(devices), **counts, "worst": worst, "problems": problems}


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="seconds")


def site_summary(site: str, row: dict[str, Any] | None, desired: int | None,
                 devices: list[dict[str, Any]], config: SiteConfig | None,
                 now: datetime) -> dict[str, Any]:
    row = row or {}
    status: dict[str, Any] = json.loads(row["status"]) if row.get("status") else {}
    last_event_at: datetime | None = row.get("last_event_at")
    applied = row.get("config_version_applied")
    versions = status.get("versions") if isinstance(status.get("versions"), dict) else {}
    return {
        "site": site,
        "name": None if config is None else config.name.values,
        "online": bool(row.get("online", False)),
        "last_seq": row.get("last_seq_contiguous", 0),
        "last_seq_received": row.get("last_seq_received", 0),
        "last_event_at": _iso(last_event_at),
        "lag_s": None if last_event_at is None
        else max(0, round((now - last_event_at).total_seconds())),
        "outbox": status.get("outbox"),
        "edge_last_seq": status.get("last_seq"),
        "status_at": status.get("at"),
        "software": (versions or {}).get("software"),
        "config": {"desired": desired, "applied": applied,
                   "in_sync": desired is None or desired == applied},
        "devices": device_summary(devices),
        "projection": row.get("projection", "no_config"),
        "updated_at": _iso(row.get("updated_at")),
    }


async def all_sites(store: HubStore, configs: ConfigCache) -> list[dict[str, Any]]:
    """Every site the hub knows: from its events or status, or from a config set for it."""
    async with store.read() as tx:
        rows = {r["site"]: r for r in await tx.sites()}
        desired = await tx.config_versions()
        devices = await tx.devices()
        texts = {s: await tx.config(s, v) for s, v in desired.items() if (s, v) not in configs}
    now = now_utc()
    out = []
    for site in sorted(set(rows) | set(desired)):
        found = texts.get(site)
        config = configs.get(site, *found) if found is not None else \
            configs.cached(site, desired[site]) if site in desired else None
        out.append(site_summary(site, rows.get(site), desired.get(site),
                                devices.get(site, []), config, now))
    return out


async def one_site(store: HubStore, configs: ConfigCache, site: str) -> dict[str, Any] | None:
    """A site's summary with its queues, counters and devices; None if the hub never heard of
    it."""
    async with store.read() as tx:
        row = await tx.site(site)
        found = await tx.config(site)
        if row is None and found is None:
            return None
        rows = await tx.projection(site)
    config = None if found is None else configs.get(site, *found)
    out = site_summary(site, row, None if found is None else found[0], rows["devices"], config,
                       now_utc())
    services = {} if config is None else config.services
    counters = {} if config is None else config.counters
    out["queues"] = [{
        **{k: v for k, v in q.items() if k != "updated_at"},
        "name": services[q["service"]].name.values if q["service"] in services else None,
        "estimate": None if q["estimate_low_s"] is None
        else {"low_s": q["estimate_low_s"], "high_s": q["estimate_high_s"]},
        "updated_at": _iso(q["updated_at"]),
    } for q in rows["queues"]]
    out["counters"] = [{
        **c, "name": counters[c["counter"]].name.values if c["counter"] in counters else None,
    } for c in rows["counters"]]
    out["devices_list"] = rows["devices"]
    return out


def public_envelope(env: dict[str, Any]) -> dict[str, Any]:
    """An event as the API shows it: without ticket tokens."""
    return {**env, "data": {k: v for k, v in env["data"].items() if k not in PRIVATE_KEYS}}
