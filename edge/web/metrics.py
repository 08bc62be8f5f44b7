"""``GET /metrics``: Prometheus text format for wards that run Prometheus (issue 13 item 4).

Access, deny by default: ``/metrics`` answers only a client that presents
``Authorization: Bearer <MADOGUCHI_METRICS_TOKEN>`` or whose address is in one of the networks
in ``MADOGUCHI_METRICS_ALLOW`` (comma-separated, e.g. ``10.20.0.5/32,10.20.1.0/24``); with
neither set it answers 403 (a JSON error, as every refusal) to everybody. It is declared
``public`` to the route table because it is no staff or kiosk action; this check is its gate.
The values carry no personal data (counts, device states, the mini-PC's load), but they map
the ward's devices, so they are not for everyone. The hub's ``/metrics`` (hub/fleet) uses the
same check and variables.

Why prometheus-client: the exposition format has escaping and type rules that a library
already gets right; the values are gathered per scrape (a fresh registry with one collector),
so nothing is kept between scrapes and no global registry is touched.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge import __version__
from edge.devices.health import STATES
from edge.httpkit.errors import ApiError
from edge.sync.outbox import counts
from edge.sync.presence import DISK_PATH, host
from edge.web.access import declare
from edge.web.api import DEVICES, WRITER

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricsAccess:
    token: str | None = None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MetricsAccess:
        """Raises ValueError on a network that is not one (the process must not start with a
        gate other than the one written down)."""
        env = os.environ if env is None else env
        nets = tuple(ipaddress.ip_network(n.strip(), strict=False)
                     for n in env.get("MADOGUCHI_METRICS_ALLOW", "").split(",") if n.strip())
        return cls(env.get("MADOGUCHI_METRICS_TOKEN") or None, nets)

    def allows(self, remote: str | None, authorization: str) -> bool:
        if self.token and authorization.startswith("Bearer "):
            given = authorization.removeprefix("Bearer ").strip().encode()
            if hmac.compare_digest(given, self.token.encode()):
                return True
        if remote and self.networks:
            try:
                addr = ipaddress.ip_address(remote)
            except ValueError:
                return False
            return any(addr in n for n in self.networks)
        return False


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def exposition(families: Iterable[Metric]) -> bytes:
    """The text of ``families`` in the Prometheus format (a registry of its own per call)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def gauge(name: str, doc: str, labels: Iterable[str] = (),
          samples: Iterable[tuple[Iterable[str], float]] = ()) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in samples:
        fam.add_metric(list(values), value)
    return fam


def edge_families(site: str, last_seq: int, outbox: int, devices: list[dict[str, Any]],
                  host_stats: Mapping[str, Any]) -> list[Metric]:
    out: list[Metric] = [
        gauge("madoguchi_edge_info", "This edge (value 1)", ["site", "version"],
              [((site, __version__), 1)]),
        gauge("madoguchi_edge_last_seq", "Seq of the newest event in this site's log",
              samples=[((), last_seq)]),
        gauge("madoguchi_edge_outbox_events", "Events not yet acknowledged by the hub",
              samples=[((), outbox)]),
        gauge("madoguchi_edge_device_state", "1 for each device's current state "
              "(ok, degraded, offline, error)", ["device", "kind", "state"],
              [((str(d["id"]), str(d["kind"]), s), float(d["state"] == s))
               for d in devices for s in STATES]),
    ]
    for key, name, doc in (("disk_pct", "madoguchi_edge_disk_used_percent", "Disk use (%)"),
                           ("mem_pct", "madoguchi_edge_memory_used_percent",
                            "Memory in use (%)"),
                           ("load1", "madoguchi_edge_load1", "1-minute load average")):
        if isinstance(host_stats.get(key), int | float):
            out.append(gauge(name, doc, samples=[((), float(host_stats[key]))]))
    return out


def not_allowed() -> ApiError:
    """The 403 (JSON, as every refusal of the edge and the hub)."""
    return ApiError(403, "metrics_not_allowed", "Metrics are not open to this client (a token "
                    "or an allowed address is needed)",
                    "このクライアントにはメトリクスを公開していません（トークンか許可されたアドレスが必要です）")


async def get_metrics(request: web.Request) -> web.Response:
    access: MetricsAccess = request.app[ACCESS_KEY]
    if not access.allows(request.remote, request.headers.get("Authorization", "")):
        raise not_allowed()
    writer = request.app[WRITER]
    last_seq, outbox = writer.read(lambda _s: counts(writer.store))
    manager = request.app.get(DEVICES)
    devices = manager.board.views() if manager is not None else []
    body = exposition(edge_families(writer.store.site, last_seq, outbox, devices,
                                    host(DISK_PATH)))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE,
                                            "Cache-Control": "no-store"})


ACCESS_KEY: web.AppKey[MetricsAccess] = web.AppKey("metrics_access", MetricsAccess)


def add_metrics(app: web.Application) -> None:
    """Register ``GET /metrics`` with its gate read from the environment now."""
    app[ACCESS_KEY] = MetricsAccess.from_env()
    app.router.add_get("/metrics", get_metrics)
    declare(app, "GET", "/metrics", "public")  # gated by MetricsAccess in the handler
