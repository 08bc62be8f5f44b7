"""Composition root of the edge daemon: config -> store -> writer -> web, and their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from edge.config import load_site_config
from edge.devices.manager import DeviceManager
from edge.domain.clock import Clock, SystemClock
from edge.domain.model import SiteConfig
from edge.domain.state import State
from edge.domain.views import active_menu, menus_by_kiosk
from edge.protocol import DEFAULT_PREFIX
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, load_applied_config
from edge.watchdog import run_until_signal
from edge.web.api import DEVICES, RESERVATIONS, STAFF
from edge.web.app import create_app
from edge.web.live import LIVE

_LOGGER = logging.getLogger(__name__)
ROLLOVER_CHECK_S = 30.0


@dataclass(frozen=True)
class SyncOptions:
    """How this edge reaches the broker (from the CLI or the env file of `provision site`)."""

    url: str  # mqtt://host:1883 or mqtts://host:8883
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    prefix: str = DEFAULT_PREFIX
    mqtt5: bool = True  # False for the embedded amqtt broker (MQTT 3.1.1 only)
    # sync time stamps and command expiry; None: the wall clock. The demo passes its simulated
    # clock (``--at``), shared with the hub, so hub commands are not taken for expired
    now: Callable[[], datetime] | None = None

    @classmethod
    def from_env(cls, url: str | None = None) -> SyncOptions | None:
        env = os.environ
        url = url or env.get("MADOGUCHI_MQTT_URL")
        if not url:
            return None
        return cls(url, env.get("MADOGUCHI_MQTT_USERNAME"), env.get("MADOGUCHI_MQTT_PASSWORD"),
                   env.get("MADOGUCHI_MQTT_CA"), env.get("MADOGUCHI_MQTT_PREFIX", DEFAULT_PREFIX),
                   env.get("MADOGUCHI_MQTT_PROTOCOL", "5") != "3.1.1")


@dataclass
class Edge:
    config: SiteConfig
    writer: Writer
    app: web.Application
    devices: DeviceManager | None = None
    sync: SyncClient | None = None


def build_edge(config: SiteConfig, db_path: str | Path, clock: Clock | None = None,
               *, durable: bool = True, preview_dir: Path | None = None,
               sync: SyncOptions | None = None) -> Edge:
    """``preview_dir``: save a PNG of every printed ticket there (the demo's paper);
    ``sync``: relay events to the hub over MQTT (without it the edge runs alone)."""
    store = EventStore(db_path, config.site, durable=durable)
    writer = Writer(store, config, clock or SystemClock(config.timezone))
    app = create_app(writer)
    devices = _devices(writer, config, app, preview_dir)
    client = None
    if sync is not None:
        client = SyncClient(
            writer, config, sync.url, prefix=sync.prefix, username=sync.username,
            password=sync.password, ca_file=sync.ca_file, mqtt5=sync.mqtt5,
            on_config=lambda cfg: _apply_config(writer, app, cfg),
            devices=None if devices is None else devices.board.views,
            now=sync.now or _wall_utc, staff=app[STAFF],
            reservations=app[RESERVATIONS])
        if devices is not None:
            devices.board.subscribe(lambda _h: client.devices_changed())

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_rollover_loop(writer, app))
        if devices is not None:
            await devices.start()
        if client is not None:
            await client.start()
        yield
        if client is not None:
            await client.stop()
        if devices is not None:
            await devices.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()

    app.cleanup_ctx.append(lifetime)
    return Edge(config, writer, app, devices, client)


def _wall_utc() -> datetime:
    return datetime.now(UTC)


def _apply_config(writer: Writer, app: web.Application, config: SiteConfig) -> None:
    """A config pushed by the hub: queues follow at once (devices on the next restart)."""
    writer.apply_config(config)
    app[LIVE].poke()
    _LOGGER.info("applied config version %s from the hub", config.version)


def _devices(writer: Writer, config: SiteConfig, app: web.Application,
             preview_dir: Path | None) -> DeviceManager | None:
    if not config.devices and config.voice is None:
        return None
    from edge.devices.profile_store import load_profiles

    # the phrase cache lives beside the database, not in /tmp: a reboot that empties /tmp would
    # cost minutes of CPU re-rendering a day's numbers with Open JTalk
    db = writer.store.path
    cache = None if db == ":memory:" else Path(db).parent / "voice-cache"
    manager = DeviceManager(writer, config, load_profiles(), preview_dir=preview_dir,
                            voice_cache=cache)
    manager.build()
    app[DEVICES] = manager
    hub = app[LIVE]
    hub.extras["devices"] = manager.board.views
    manager.board.subscribe(lambda _h: hub.poke())
    return manager


async def _rollover_loop(writer: Writer, app: web.Application) -> None:
    """Open the new business day at midnight even if nobody presses anything, and push the
    state when the kiosk menu's schedule switches (nothing is committed then)."""
    def menus(s: State) -> tuple[str | None, dict[str, str | None]]:
        now = writer.clock.now()
        return active_menu(s, now), menus_by_kiosk(s, now)

    menu = writer.read(menus)
    while True:
        await asyncio.sleep(ROLLOVER_CHECK_S)
        if writer.needs_rollover():
            await writer.execute(None)
        now_menu = writer.read(menus)
        if now_menu != menu:
            menu = now_menu
            app[LIVE].poke()


async def start_edge(edge: Edge, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(edge.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def run_edge(config_path: str | Path, db_path: str | Path, host: str, port: int,
             sync: SyncOptions | None = None) -> None:
    config = load_site_config(config_path)
    pushed = load_applied_config(db_path, config.site)
    if pushed is not None and pushed.version >= config.version:
        _LOGGER.info("using config version %s pushed by the hub", pushed.version)
        config = pushed
    edge = build_edge(config, db_path, sync=sync)
    from edge.web.discovery import enable_discovery

    enable_discovery(edge.app, config.site, config.name.get("ja"), host, port)
    _LOGGER.info("edge %s on http://%s:%s (db %s)", config.site, host, port, db_path)
    print(f"madoguchi edge {config.site}: http://{host}:{port}/  (db {db_path})", flush=True)
    asyncio.run(_serve(edge, host, port))


async def _serve(edge: Edge, host: str, port: int) -> None:
    """Listen, then tell systemd (Type=notify) READY=1 and ping its watchdog while the event
    loop runs and the writer thread answers (edge/watchdog.py); stop on Ctrl-C or SIGTERM."""
    runner = await start_edge(edge, host, port)
    try:
        await run_until_signal(edge.writer.responsive)
    finally:
        await runner.cleanup()
