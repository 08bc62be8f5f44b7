"""LAN discovery with zeroconf (mDNS/DNS-SD): ``_madoguchi._tcp``.

The edge advertises itself so a monitor or operator PC on the office LAN finds it without
typing an IP address, and browses for other edges (a branch with two floors, or a second PC).
The TXT record carries only public facts (site id, API path, protocol version, and "https" when
the edge serves TLS, so a browsing PC opens the right URL): no secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from aiohttp import web
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from edge.web.api import json_response

_LOGGER = logging.getLogger(__name__)
SERVICE = "_madoguchi._tcp.local."


def _local_ipv4(host: str) -> list[str]:
    if host not in ("0.0.0.0", ""):
        return [host]
    addrs = {ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    return sorted(a for a in addrs if isinstance(a, str) and not a.startswith("127.")) \
        or ["127.0.0.1"]


class Discovery:
    def __init__(self, site: str, name: str, host: str, port: int,
                 interfaces: list[str] | None = None, scheme: str = "http") -> None:
        self.site, self.name, self.port, self.scheme = site, name, port, scheme
        self.addresses = _local_ipv4(host)
        self.interfaces = interfaces
        self.found: dict[str, dict[str, Any]] = {}
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._registered = False

    async def start(self) -> None:
        kwargs: dict[str, Any] = {"ip_version": IPVersion.V4Only}
        if self.interfaces is not None:
            kwargs["interfaces"] = self.interfaces
        try:
            self._zc = AsyncZeroconf(**kwargs)
            self._info = AsyncServiceInfo(
                SERVICE, f"{self.site}.{SERVICE}", port=self.port,
                addresses=[socket.inet_aton(a) for a in self.addresses],
                properties={"site": self.site, "api": "/api", "v": "1",
                            "scheme": self.scheme},
                server=f"madoguchi-{self.site}.local.")
            await self._zc.async_register_service(self._info, allow_name_change=True)
            self._registered = True
            self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE,
                                                handlers=[self._on_change])
        except OSError as exc:  # no multicast on this network: the edge works without it
            _LOGGER.warning("zeroconf discovery unavailable: %s", exc)

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        """Called on the event loop: resolving must not block it, so it is a task."""
        if state_change is ServiceStateChange.Removed:
            self.found.pop(name, None)
            return
        task = asyncio.ensure_future(self._resolve(zeroconf, service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, 3000):
            return
        props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        addrs = info.parsed_addresses()
        scheme = "https" if props.get("scheme") == "https" else "http"  # older edges: none
        self.found[name] = {"site": props.get("site", ""), "api": props.get("api", "/api"),
                            "addresses": addrs, "port": info.port,
                            "url": f"{scheme}://{addrs[0]}:{info.port}/" if addrs else None,
                            "self": props.get("site") == self.site}

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            if self._info is not None and self._registered:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()

    def view(self) -> dict[str, Any]:
        return {"service": SERVICE, "site": self.site,
                "edges": sorted(self.found.values(), key=lambda e: (e["site"], e["url"] or ""))}


DISCOVERY: web.AppKey[Discovery] = web.AppKey("discovery", Discovery)


def enable_discovery(app: web.Application, site: str, name: str, host: str, port: int,
                     interfaces: list[str] | None = None, scheme: str = "http") -> Discovery:
    """Advertise on start, stop on cleanup; ``GET /api/discovery`` lists the edges found."""
    d = Discovery(site, name, host, port, interfaces, scheme)
    app[DISCOVERY] = d

    async def ctx(_app: web.Application) -> Any:
        # in the background: registering probes the LAN for name clashes (about 1.2 s), and the
        # edge must serve its kiosks and counters without waiting for it (start-up, issue 18)
        starting = asyncio.create_task(d.start(), name="zeroconf-start")
        yield
        if not starting.done():
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await d.stop()

    app.cleanup_ctx.append(ctx)
    return d


async def get_discovery(request: web.Request) -> web.Response:
    d = request.app.get(DISCOVERY)
    return json_response({"service": SERVICE, "site": None, "edges": []} if d is None
                         else d.view())
