"""Configuration pushed by the hub: check, persist, and read back at start-up.

The hub owns configuration (no multi-master): its retained ``config`` message carries the whole
site TOML with a monotonic version. A version is applied once; the applied TOML is kept in the
edge database (``meta``) and in a file next to it, so a restarted edge runs the last configuration
it accepted even when the hub is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import ConfigError, parse_site_config
from edge.domain.model import SiteConfig
from edge.protocol import ConfigMessage, WireError
from edge.store.store import EventStore

_LOGGER = logging.getLogger(__name__)

META_VERSION = "sync.config_version"
META_TOML = "sync.config_toml"


def config_file(db_path: str | Path) -> Path:
    """``<db>.hub-config.toml`` next to the database, e.g. ``edge.hub-config.toml``."""
    p = Path(db_path)
    return p.with_name(p.stem + ".hub-config.toml")


@dataclass(frozen=True, slots=True)
class Pushed:
    """A config message that passed the envelope checks (its TOML is not parsed yet)."""

    version: int
    toml: str


def parse_message(raw: dict[str, Any]) -> Pushed | str:
    """The version and TOML of a ``config`` message (``edge.protocol.ConfigMessage``, what the
    hub builds with), or what is wrong with it."""
    try:
        msg = ConfigMessage.from_raw(raw)
    except WireError as exc:
        return str(exc)
    return Pushed(msg.version, msg.toml)


def check(pushed: Pushed, site: str, base: Path | None) -> SiteConfig | str:
    """The parsed configuration with the hub's version, or the problem list (refused)."""
    try:
        cfg = parse_site_config(pushed.toml, f"hub config v{pushed.version}", base=base)
    except ConfigError as exc:
        return str(exc)
    if cfg.site != site:
        return f"config is for site {cfg.site!r}, not {site!r}"
    # the message's version is authoritative: the TOML's own `version` key may lag behind
    return dataclasses.replace(cfg, version=pushed.version)


def persist(store: EventStore, pushed: Pushed) -> None:
    """Record the applied config in ``meta`` and in the file next to the database."""
    store.set_meta(META_TOML, pushed.toml)
    store.set_meta(META_VERSION, str(pushed.version))
    if store.path == ":memory:":
        return
    path = config_file(store.path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"# applied from the hub: version {pushed.version}\n{pushed.toml}",
                   encoding="utf-8")
    os.replace(tmp, path)


def applied_version(store: EventStore) -> int | None:
    raw = store.meta(META_VERSION)
    return int(raw) if raw is not None and raw.isdigit() else None


def load_applied_config(db_path: str | Path, site: str) -> SiteConfig | None:
    """The last configuration the hub pushed and this edge accepted, or None.

    For start-up: prefer it over the local TOML file once the hub has configured the site.
    Reads ``meta`` without the store (no migration, nothing written).
    """
    path = Path(db_path)
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            rows = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN (?, ?)", (META_VERSION, META_TOML)
            ).fetchall())
    except sqlite3.Error:
        return None
    if META_VERSION not in rows or META_TOML not in rows:
        return None
    got = check(Pushed(int(rows[META_VERSION]), rows[META_TOML]), site, path.parent)
    return got if isinstance(got, SiteConfig) else None


OnConfig = Callable[[SiteConfig], Awaitable[None] | None]
RunDb = Callable[[Callable[[EventStore], None]], Awaitable[None]]


class ConfigFollower:
    """Applies each newer pushed version once, in arrival order; remembers the last refusal."""

    def __init__(self, site: str, base: Path | None, on_config: OnConfig | None,
                 changed: Callable[[], None]) -> None:
        self.site = site
        self.base = base
        self.version: int | None = None  # the hub config applied (None: never)
        self.error: dict[str, Any] | None = None
        self.applied = 0
        self._on_config = on_config
        self._changed = changed
        self._lock = asyncio.Lock()

    async def handle(self, raw: dict[str, Any], run_db: RunDb) -> None:
        async with self._lock:
            pushed = parse_message(raw)
            if isinstance(pushed, str):
                self._refuse(raw.get("version"), pushed)
                return
            if self.version is not None and pushed.version <= self.version:
                return  # the retained copy of what we run, or an older one
            if self.error is not None and self.error["version"] == pushed.version:
                return  # the same refused version again (redelivered on reconnect)
            got = await asyncio.to_thread(check, pushed, self.site, self.base)
            if isinstance(got, str):
                self._refuse(pushed.version, got)
                return
            await run_db(lambda st: persist(st, pushed))
            self.version, self.error = pushed.version, None
            self.applied += 1
            _LOGGER.info("applied hub config version %d", pushed.version)
            if self._on_config is not None:
                try:
                    result = self._on_config(got)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    _LOGGER.exception("applying hub config version %d failed", pushed.version)
                    self.error = {"version": pushed.version,
                                  "message": f"apply failed: {type(exc).__name__}"}
            self._changed()

    def _refuse(self, version: object, message: str) -> None:
        _LOGGER.warning("refused hub config version %s, keeping version %s:\n%s",
                        version, self.version, message)
        self.error = {"version": version, "message": message}
        self._changed()
