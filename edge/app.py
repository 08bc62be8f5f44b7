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
from edge.domain.clock import Clock, SystemClock
from edge.domain.model import SiteConfig
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.web.app import create_app

_LOGGER = logging.getLogger(__name__)
ROLLOVER_CHECK_S = 30.0


@dataclass
class Edge:
    config: SiteConfig
    writer: Writer
    app: web.Application


def build_edge(config: SiteConfig, db_path: str | Path, clock: Clock | None = None,
               *, durable: bool = True) -> Edge:
    store = EventStore(db_path, config.site, durable=durable)
    writer = Writer(store, config, clock or SystemClock(config.timezone))
    app = create_app(writer)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_rollover_loop(writer))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()

    app.cleanup_ctx.append(lifetime)
    return Edge(config, writer, app)


async def _rollover_loop(writer: Writer) -> None:
    """Open the new business day at midnight even if nobody presses anything."""
    while True:
        await asyncio.sleep(ROLLOVER_CHECK_S)
        if writer.needs_rollover():
            await writer.execute(None)


async def start_edge(edge: Edge, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(edge.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def run_edge(config_path: str | Path, db_path: str | Path, host: str, port: int) -> None:
    config = load_site_config(config_path)
    edge = build_edge(config, db_path)
    _LOGGER.info("edge %s on http://%s:%s (db %s)", config.site, host, port, db_path)
    print(f"madoguchi edge {config.site}: http://{host}:{port}/  (db {db_path})", flush=True)
    web.run_app(edge.app, host=host, port=port, access_log=None, print=None)
