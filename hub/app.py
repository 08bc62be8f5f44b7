"""Composition root of the hub: store -> ingest (MQTT) -> web, and their lifetimes.

``start_hub`` runs everything inside the caller's event loop (the demo and tests start it
in-process); ``run_hub`` is the blocking CLI entry that stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from edge.protocol import DEFAULT_PREFIX
from edge.watchdog import loop_alive, run_until_signal
from hub.configs import store_config
from hub.ingest import Ingest, MqttSettings
from hub.kit.runtime import RUNTIME
from hub.notify.api import NOTIFIER
from hub.notify.senders import Sender
from hub.notify.service import Notifier
from hub.settings import HubSettings
from hub.store import DEFAULT_URL, HubStore
from hub.store.store import use_clock
from hub.web import create_app

_LOGGER = logging.getLogger(__name__)

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
DEFAULT_PORT = 8090


@dataclass
class Hub:
    store: HubStore
    ingest: Ingest | None
    runner: web.AppRunner
    host: str
    port: int
    notifier: Notifier | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def set_config(self, site: str, toml: str, source: str = "<string>") -> int:
        """Validate and store the site's next config version and publish it (retained).
        Raises ``edge.config.ConfigError`` listing every problem."""
        version, body = await store_config(self.store, site, toml, source)
        if self.ingest is not None:
            self.ingest.publish_config(site, version, body)
            await self.ingest.refold(site)
            await self.ingest.settled()
        return version

    async def stop(self) -> None:
        if self.notifier is not None:
            await self.notifier.stop()
        await self.runner.cleanup()
        if self.ingest is not None:
            await self.ingest.stop()
        await self.store.close()


async def start_hub(db_url: str = DEFAULT_URL, mqtt_url: str | None = DEFAULT_MQTT_URL,
                    prefix: str = DEFAULT_PREFIX, port: int = DEFAULT_PORT,
                    host: str = "127.0.0.1", *, schema: str | None = None,
                    mqtt: MqttSettings | None = None, replay_interval_s: float = 5.0,
                    settings: HubSettings | None = None,
                    senders: dict[str, Sender] | None = None,
                    extra_routes: Callable[[web.Application], None] | None = None,
                    clock: Callable[[], datetime] | None = None) -> Hub:
    """Open (and migrate) the store, start ingest and the web server; returns once listening.

    ``mqtt_url`` None: web only (no broker). ``port`` 0: any free port (see ``Hub.port``).
    The broker need not be up yet: ingest connects in the background and retries.
    ``senders`` replace the notice senders built from ``settings`` (the demo's mail sink),
    ``extra_routes`` adds routes before the app starts (the demo's sink page), ``clock`` makes
    the hub's "now" follow a simulated clock (process-wide: ``hub.store.store.use_clock``).
    """
    if clock is not None:
        use_clock(clock)
    store = await HubStore.open(db_url, schema=schema)
    ingest = None
    notifier = None
    try:
        if mqtt is not None or mqtt_url is not None:
            link = mqtt or MqttSettings.from_url(mqtt_url or DEFAULT_MQTT_URL)
            ingest = Ingest(store, link, prefix, replay_interval_s=replay_interval_s)
            await ingest.start()
        app = create_app(store, ingest, settings)
        live = app[RUNTIME].live
        if live is not None:  # notices follow the live state that ingest folds
            notifier = app[NOTIFIER] = Notifier(store, live, app[RUNTIME].settings,
                                                senders=senders)
            await notifier.start()
        if extra_routes is not None:
            extra_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        if notifier is not None:
            await notifier.stop()
        if ingest is not None:
            await ingest.stop()
        await store.close()
        raise
    addresses = runner.addresses  # the bound socket tells the real port when 0 was asked
    bound = int(addresses[0][1]) if addresses else port
    _LOGGER.info("hub on http://%s:%s (db %s)", host, bound, store.engine.url.render_as_string())
    return Hub(store, ingest, runner, host, bound, notifier)


def run_hub(db_url: str = DEFAULT_URL, mqtt_url: str | None = DEFAULT_MQTT_URL,
            prefix: str = DEFAULT_PREFIX, port: int = DEFAULT_PORT,
            host: str = "127.0.0.1") -> int:
    """Run until Ctrl-C / SIGTERM."""

    async def main() -> None:
        hub = await start_hub(db_url, mqtt_url, prefix, port, host)
        print(f"madoguchi hub: {hub.url}/staff/sites  (API {hub.url}/api/sites)", flush=True)
        try:  # under systemd (Type=notify, WatchdogSec=): READY=1 now, pings while it runs
            await run_until_signal(loop_alive)
        finally:
            await hub.stop()

    asyncio.run(main())
    return 0
