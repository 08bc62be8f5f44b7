"""Composition root of the edge daemon: config -> store -> writer -> web, and their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from edge.config import load_site_config
from edge.devices.manager import DeviceManager
from edge.domain.clock import Clock, SystemClock
from edge.domain.model import SiteConfig
from edge.domain.views import active_menu
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.web.api import DEVICES
from edge.web.app import create_app
from edge.web.live import LIVE

_LOGGER = logging.getLogger(__name__)
ROLLOVER_CHECK_S = 30.0


@dataclass
class Edge:
    config: SiteConfig
    writer: Writer
    app: web.Application
    devices: DeviceManager | None = None


def build_edge(config: SiteConfig, db_path: str | Path, clock: Clock | None = None,
               *, durable: bool = True, preview_dir: Path | None = None) -> Edge:
    """``preview_dir``: save a PNG of every printed ticket there (the demo's paper)."""
    store = EventStore(db_path, config.site, durable=durable)
    writer = Writer(store, config, clock or SystemClock(config.timezone))
    app = create_app(writer)
    devices = _devices(writer, config, app, preview_dir)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_rollover_loop(writer, app))
        if devices is not None:
            await devices.start()
        yield
        if devices is not None:
            await devices.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()

    app.cleanup_ctx.append(lifetime)
    return Edge(config, writer, app, devices)


def _devices(writer: Writer, config: SiteConfig, app: web.Application,
             preview_dir: Path | None) -> DeviceManager | None:
    if not config.devices and config.voice is None:
        return None
    from edge.devices.profile_store import load_profiles

    manager = DeviceManager(writer, config, load_profiles(), preview_dir=preview_dir)
    manager.build()
    app[DEVICES] = manager
    hub = app[LIVE]
    hub.extras["devices"] = manager.board.views
    manager.board.subscribe(lambda _h: hub.poke())
    return manager


async def _rollover_loop(writer: Writer, app: web.Application) -> None:
    """Open the new business day at midnight even if nobody presses anything, and push the
    state when the kiosk menu's schedule switches (nothing is committed then)."""
    menu = writer.read(lambda s: active_menu(s, writer.clock.now()))
    while True:
        await asyncio.sleep(ROLLOVER_CHECK_S)
        if writer.needs_rollover():
            await writer.execute(None)
        now_menu = writer.read(lambda s: active_menu(s, writer.clock.now()))
        if now_menu != menu:
            menu = now_menu
            app[LIVE].poke()


async def start_edge(edge: Edge, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(edge.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def run_edge(config_path: str | Path, db_path: str | Path, host: str, port: int) -> None:
    config = load_site_config(config_path)
    edge = build_edge(config, db_path)
    from edge.web.discovery import enable_discovery

    enable_discovery(edge.app, config.site, config.name.get("ja"), host, port)
    _LOGGER.info("edge %s on http://%s:%s (db %s)", config.site, host, port, db_path)
    print(f"madoguchi edge {config.site}: http://{host}:{port}/  (db {db_path})", flush=True)
    web.run_app(edge.app, host=host, port=port, access_log=None, print=None)
