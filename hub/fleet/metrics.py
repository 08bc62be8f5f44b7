"""The hub's Prometheus families (the route and its gate: ``routes.hub_metrics``).

Gathered per scrape from the same site views as the fleet page (one store read), the ingest
counters and the open incidents. Labels hold site ids, device ids, kinds and rule codes only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric

from edge.devices.health import STATES
from edge.web.metrics import gauge
from hub.fleet.service import Incident

if TYPE_CHECKING:
    from hub.fleet.job import Fleet, SiteView
    from hub.ingest import Ingest


def hub_families(views: Sequence[SiteView], ingest: Ingest | None, fleet: Fleet | None,
                 incidents: Sequence[Incident]) -> list[Metric]:
    online = [v for v in views if v.online and v.heard]
    out: list[Metric] = [
        gauge("madoguchi_hub_sites", "Sites the hub knows, by connection", ["state"],
              [(("online",), len(online)), (("offline",), len(views) - len(online))]),
        gauge("madoguchi_hub_site_online", "1 if the site is online", ["site"],
              [((v.site,), float(v in online)) for v in views]),
        gauge("madoguchi_hub_site_outbox_events", "Events the site has not yet had "
              "acknowledged (its last status)", ["site"],
              [((v.site,), v.outbox) for v in views if v.outbox is not None]),
        gauge("madoguchi_hub_site_sync_lag_seconds", "0 when the hub holds every event the "
              "site has; else the age of the newest event it holds", ["site"],
              [((v.site,), v.lag_s) for v in views if v.lag_s is not None]),
        gauge("madoguchi_hub_devices", "Devices by site, kind and state", ["site", "kind",
                                                                            "state"],
              [((site, kind, state), n) for (site, kind, state), n in sorted(Counter(
                  (v.site, str(d["kind"]), str(d["state"])) for v in views for d in v.devices
                  if d["state"] in STATES).items())]),
    ]
    for key, name, doc in (("disk_pct", "madoguchi_hub_site_disk_used_percent",
                            "The site PC's disk use (%)"),
                           ("mem_pct", "madoguchi_hub_site_memory_used_percent",
                            "The site PC's memory in use (%)"),
                           ("load1", "madoguchi_hub_site_load1",
                            "The site PC's 1-minute load average")):
        out.append(gauge(name, doc, ["site"], [((v.site,), float(v.host[key])) for v in views
                                               if isinstance(v.host.get(key), int | float)]))
    out.append(gauge("madoguchi_hub_site_clock_offset_seconds", "Hub clock less the site's "
                     "(estimate: hub/fleet/README.md)", ["site"],
                     [((v.site,), v.clock_offset_s) for v in views
                      if v.clock_offset_s is not None]))
    by_rule = Counter((i.site, i.rule) for i in incidents)
    out.append(gauge("madoguchi_hub_alerts_open", "Open alert incidents", ["site", "rule"],
                     [((s, r), n) for (s, r), n in sorted(by_rule.items())]))
    out.append(gauge("madoguchi_hub_alerts_open_total", "Open alert incidents, all sites",
                     samples=[((), len(incidents))]))
    if ingest is not None:
        stats = asdict(ingest.stats)
        fam = CounterMetricFamily("madoguchi_hub_ingest", "Ingest counters since the hub "
                                  "started", labels=["what"])
        for what, value in stats.items():
            if isinstance(value, int):
                fam.add_metric([what], value)
        out.append(fam)
        out.append(gauge("madoguchi_hub_ingest_connected", "1 if ingest is connected to the "
                         "broker", samples=[((), float(ingest.link.connected))]))
    if fleet is not None:
        fam = CounterMetricFamily("madoguchi_hub_alerts", "Alert transitions and e-mails "
                                  "since the hub started", labels=["what"])
        for what, n in fleet.counts.items():
            fam.add_metric([what], n)
        out.append(fam)
    return out
