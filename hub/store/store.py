"""The hub store: every site's events exactly once, site presence, configs and projections.

Why this shape: ingest runs one transaction per group of MQTT messages (insert, contiguous seq,
projection rows, site row), so an ack can only ever cover committed events. Inserts are
idempotent on ``(site, seq)`` (``INSERT ... ON CONFLICT DO NOTHING`` on both SQLite and
PostgreSQL), which is what makes duplicated and replayed deliveries harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import hub.audit.tables  # noqa: F401  (module-owned tables on the same metadata, for Alembic)
from edge.protocol import ENVELOPE_VERSION, Envelope
from hub.auth import tables as _staff_tables  # noqa: F401  (same reason: staff, sessions)
from hub.fleet import tables as _fleet_tables  # noqa: F401  (same reason: alerts)
from hub.reservations import tables as _reservation_tables  # noqa: F401  (same: bookings)
from hub.stats import tables as _stats_tables  # noqa: F401  (same: statistics)
from hub.store import migrate
from hub.store.schema import events, site_configs, site_counters, site_devices, site_queues, sites

_LOGGER = logging.getLogger(__name__)

DEFAULT_URL = "sqlite+aiosqlite:///var/hub.db"
CHUNK = 500  # rows per INSERT: well under both backends' bound-parameter limits
SCAN_CHUNK = 2000  # seqs read per query while looking for the first gap


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``sqlite:///`` URLs and pick the async drivers."""
    for plain, driver in (("postgresql://", "postgresql+asyncpg://"),
                          ("postgres://", "postgresql+asyncpg://"),
                          ("sqlite://", "sqlite+aiosqlite://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


_CLOCK: list[Callable[[], datetime]] = []  # empty: the wall clock


def now_utc() -> datetime:
    """The hub's "now". The wall clock, unless ``use_clock`` set another (``madoguchi demo --at``
    runs the hub on the sites' simulated clock so both agree on opening hours and expiries)."""
    return _CLOCK[-1]().astimezone(UTC) if _CLOCK else datetime.now(UTC)


def use_clock(clock: Callable[[], datetime] | None) -> None:
    """Make ``now_utc`` follow ``clock`` (an aware datetime) in this process; None: wall clock."""
    _CLOCK[:] = [] if clock is None else [clock]


def _insert(dialect: str) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_update`` on both."""
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True, slots=True)
class InsertResult:
    inserted: int
    duplicates: int  # already stored, same id: a re-delivery
    conflicts: tuple[int, ...]  # seqs NOT stored because another event holds that seq or id


class Tx:
    """One transaction's worth of store operations."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.insert = _insert(self.dialect)

    # --- events ------------------------------------------------------------------------------
    async def insert_events(self, site: str, envs: Sequence[Envelope],
                            received_at: datetime | None = None) -> InsertResult:
        """Store new events, skip ones already stored; say which could not be stored."""
        at = received_at or now_utc()
        inserted: set[int] = set()
        if envs:
            rows = [{"site": site, "seq": e.seq, "id": e.id, "at": e.at, "day": e.day,
                     "type": e.type, "data": e.data_json(), "received_at": at} for e in envs]
            # one cached statement, executemany: SQLAlchemy batches it into multi-row INSERTs
            stmt = self.insert(events).on_conflict_do_nothing().returning(events.c.seq)
            result = await self.conn.execute(stmt, rows)
            inserted.update(r[0] for r in result)
        skipped = [e for e in envs if e.seq not in inserted]
        conflicts: list[int] = []
        for part in _chunks(skipped):
            # a conflict: another id at that seq, or the same id with other content (a forgery
            # reusing the id must not pass as a re-delivery)
            stored = {int(r[0]): tuple(r[1:]) for r in (await self.conn.execute(
                select(events.c.seq, events.c.id, events.c.at, events.c.day, events.c.type,
                       events.c.data).where(
                    events.c.site == site, events.c.seq.in_([e.seq for e in part]))
            )).all()}
            conflicts.extend(e.seq for e in part if stored.get(e.seq) != (
                e.id, e.at, e.day, e.type, e.data_json()))
        return InsertResult(len(inserted), len(skipped) - len(conflicts), tuple(conflicts))

    async def _has(self, site: str, seq: int) -> bool:
        row = await self.conn.execute(
            select(events.c.seq).where(events.c.site == site, events.c.seq == seq))
        return row.first() is not None

    async def contiguous_seq(self, site: str, start: int = 0) -> int:
        """Highest seq with no gap from 1. ``start``: a seq known contiguous (saves the scan).

        Why a plain range scan read in chunks and not a ``NOT EXISTS (seq + 1)`` anti-join:
        PostgreSQL caches a generic plan for the prepared statement, and one made while the
        table was empty (a new schema, no ANALYZE yet) joined every row of the site per row
        scanned: each ingest group cost O(site's events), 1-5 s per group after 20k events.
        """
        if start > 0 and not await self._has(site, start):
            start = 0
        top = start
        while True:
            seqs = (await self.conn.execute(
                select(events.c.seq).where(events.c.site == site, events.c.seq > top)
                .order_by(events.c.seq).limit(SCAN_CHUNK))).scalars().all()
            for seq in seqs:
                if seq != top + 1:
                    return top
                top = seq
            if len(seqs) < SCAN_CHUNK:
                return top

    async def max_seq(self, site: str) -> int:
        row = await self.conn.execute(select(func.max(events.c.seq)).where(events.c.site == site))
        return int(row.scalar() or 0)

    async def events(self, site: str, after: int = 0, upto: int | None = None,
                     limit: int | None = None) -> list[Envelope]:
        stmt = (select(events.c.seq, events.c.id, events.c.at, events.c.day, events.c.type,
                       events.c.data)
                .where(events.c.site == site, events.c.seq > after).order_by(events.c.seq))
        if upto is not None:
            stmt = stmt.where(events.c.seq <= upto)
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = (await self.conn.execute(stmt)).all()
        return [Envelope(ENVELOPE_VERSION, site, seq, eid, at, day, kind, json.loads(data))
                for seq, eid, at, day, kind, data in rows]

    async def last_day_opened(self, site: str, upto: int) -> int | None:
        """Seq of the latest DayOpened at or before ``upto``: where today's fold starts."""
        row = await self.conn.execute(
            select(func.max(events.c.seq)).where(
                events.c.site == site, events.c.type == "DayOpened", events.c.seq <= upto))
        value = row.scalar()
        return None if value is None else int(value)

    # --- sites -------------------------------------------------------------------------------
    async def site(self, site: str) -> dict[str, Any] | None:
        row = (await self.conn.execute(select(sites).where(sites.c.site == site))).first()
        return None if row is None else dict(row._mapping)

    async def sites(self) -> list[dict[str, Any]]:
        rows = await self.conn.execute(select(sites).order_by(sites.c.site))
        return [dict(r._mapping) for r in rows]

    async def upsert_site(self, site: str, **values: Any) -> None:
        values.setdefault("updated_at", now_utc())
        stmt = self.insert(sites).values(site=site, **values)
        await self.conn.execute(
            stmt.on_conflict_do_update(index_elements=[sites.c.site], set_=values))

    # --- projections -------------------------------------------------------------------------
    async def replace_projection(self, site: str, queues: list[dict[str, Any]],
                                 counters: list[dict[str, Any]]) -> None:
        for table, rows in ((site_queues, queues), (site_counters, counters)):
            await self.conn.execute(table.delete().where(table.c.site == site))
            if rows:
                await self.conn.execute(table.insert(), [{"site": site, **r} for r in rows])

    async def replace_devices(self, site: str, devices: list[dict[str, Any]]) -> None:
        await self.conn.execute(site_devices.delete().where(site_devices.c.site == site))
        if devices:
            await self.conn.execute(site_devices.insert(),
                                    [{"site": site, **d} for d in devices])

    async def projection(self, site: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name, table, order in (("queues", site_queues, site_queues.c.service),
                                   ("counters", site_counters, site_counters.c.counter),
                                   ("devices", site_devices, site_devices.c.device)):
            rows = await self.conn.execute(
                select(table).where(table.c.site == site).order_by(order))
            out[name] = [{k: v for k, v in r._mapping.items() if k != "site"} for r in rows]
        return out

    async def devices(self) -> dict[str, list[dict[str, Any]]]:
        """Every site's devices, for the overview."""
        out: dict[str, list[dict[str, Any]]] = {}
        rows = await self.conn.execute(
            select(site_devices).order_by(site_devices.c.site, site_devices.c.device))
        for r in rows:
            out.setdefault(r.site, []).append(dict(r._mapping))
        return out

    # --- configs -----------------------------------------------------------------------------
    async def next_config_version(self, site: str) -> int:
        row = await self.conn.execute(
            select(func.max(site_configs.c.version)).where(site_configs.c.site == site))
        return int(row.scalar() or 0) + 1

    async def add_config(self, site: str, version: int, toml: str) -> None:
        await self.conn.execute(site_configs.insert().values(
            site=site, version=version, toml=toml, created_at=now_utc()))

    async def config(self, site: str, version: int | None = None) -> tuple[int, str] | None:
        """A site's config text: the given version, or the newest."""
        stmt = select(site_configs.c.version, site_configs.c.toml).where(
            site_configs.c.site == site)
        if version is not None:
            stmt = stmt.where(site_configs.c.version == version)
        row = (await self.conn.execute(
            stmt.order_by(site_configs.c.version.desc()).limit(1))).first()
        return None if row is None else (int(row[0]), str(row[1]))

    async def config_versions(self) -> dict[str, int]:
        """Newest config version of every site that has one."""
        rows = await self.conn.execute(
            select(site_configs.c.site, func.max(site_configs.c.version))
            .group_by(site_configs.c.site))
        return {str(s): int(v) for s, v in rows}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an ack promises the events survive a power cut
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA secure_delete=ON")  # freed pages and cells keep no old bytes (contacts)
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the lock up front: a read-then-write transaction cannot fail half-way."""
    immediate = conn.get_execution_options().get("hub_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


POOL_SIZE = 15
POOL_OVERFLOW = 5


class HubStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.revision: str | None = None

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, *, schema: str | None = None,
                   upgrade: bool = True) -> HubStore:
        """Connect, and bring the schema to the newest migration.

        ``schema`` (PostgreSQL only): keep the tables in that schema (created if missing), e.g.
        one per test run or per deployment sharing a database.
        """
        url = normalize_url(url)
        parsed = make_url(url)
        # Connections kept open: SQLAlchemy's default (5, overflow 10) closed and reopened a
        # connection for most requests once more than 5 ran at once (100 residents downloading:
        # a new aiosqlite thread or PostgreSQL login, and the PRAGMAs, per request). 15 stay
        # open, 5 more at a peak: two hub processes hold at most 40 of PostgreSQL's 100.
        kwargs: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            else:  # one in-memory database per connection: SQLAlchemy's own single pool
                kwargs = {}
        elif schema is not None:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        engine = create_async_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        _insert(engine.dialect.name)  # refuse other databases now, not at the first event
        store = cls(engine)
        if schema is not None and engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        if upgrade:
            store.revision = await migrate.upgrade(engine)
        return store

    @asynccontextmanager
    async def begin(self, write: bool = True) -> AsyncIterator[Tx]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self.engine.connect() as conn:
            if write:
                await conn.execution_options(hub_write=True)
            async with conn.begin():
                yield Tx(conn)

    def read(self) -> AbstractAsyncContextManager[Tx]:
        return self.begin(write=False)

    async def close(self) -> None:
        await self.engine.dispose()

    # --- one-call conveniences (each its own transaction) ---------------------------------------
    async def insert_events(self, site: str, envs: Sequence[Envelope]) -> InsertResult:
        async with self.begin() as tx:
            return await tx.insert_events(site, envs)

    async def contiguous_seq(self, site: str) -> int:
        async with self.read() as tx:
            return await tx.contiguous_seq(site)

    async def events(self, site: str, after: int = 0, limit: int | None = None) -> list[Envelope]:
        async with self.read() as tx:
            return await tx.events(site, after, limit=limit)

    async def add_config(self, site: str, toml_for: Callable[[int], str]) -> tuple[int, str]:
        """Store the next config version; ``toml_for(version)`` gives the text to store."""
        async with self.begin() as tx:
            version = await tx.next_config_version(site)
            body = toml_for(version)
            await tx.add_config(site, version, body)
            return version, body

    async def config(self, site: str, version: int | None = None) -> tuple[int, str] | None:
        async with self.read() as tx:
            return await tx.config(site, version)
