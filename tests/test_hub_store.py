"""Hub store on SQLite (temp file) and on the real PostgreSQL (a schema of its own per test):
migrations, idempotent inserts, contiguous seq with gaps, conflicts, config versions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from edge.config import ConfigError
from edge.protocol import Envelope, uuid7
from hub.configs import store_config, with_version
from hub.store import HubStore, normalize_url
from hub.store.migrate import head
from hub.store.schema import metadata

SITES_DIR = Path(__file__).resolve().parent.parent / "sites"
SITE = "oizumi"


def env(seq: int, site: str = SITE, eid: str | None = None, kind: str = "CounterOpened",
        data: dict[str, object] | None = None) -> Envelope:
    return Envelope(1, site, seq, eid or uuid7(), f"2026-11-21T09:{seq % 60:02d}:00+09:00",
                    "2026-11-21", kind, data if data is not None else {"counter": "1"})


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubStore]:
    if request.param == "sqlite":
        s = await HubStore.open(f"sqlite:///{tmp_path}/hub/hub.db")
        yield s
        await s.close()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"hubtest_{uuid.uuid4().hex[:12]}"
    s = await HubStore.open(url, schema=schema)
    try:
        yield s
    finally:
        async with s.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await s.close()


async def test_migrated_to_head_and_schema_matches_code(store: HubStore) -> None:
    assert store.revision == head()

    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(ctx, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_the_forms_steps_go_down_and_up_again(store: HubStore) -> None:
    """0011 creates every forms table, later steps only theirs if missing: going down to 0010
    removes each once (no "table does not exist"), and up again gives the code's schema."""
    from alembic import command
    from sqlalchemy import inspect

    from hub.store.migrate import alembic_config, upgrade

    def down(conn: Connection) -> list[str]:
        command.downgrade(alembic_config(conn), "0010")
        return list(inspect(conn).get_table_names())

    async with store.engine.begin() as conn:
        left = await conn.run_sync(down)
    assert left, "nothing left below the forms"
    assert not [t for t in left if t.startswith("forms_")], left
    assert await upgrade(store.engine) == head()

    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(ctx, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_open_twice_is_a_no_op(store: HubStore, tmp_path: Path) -> None:
    await store.insert_events(SITE, [env(1)])
    from hub.store import migrate

    assert await migrate.upgrade(store.engine) == head()
    assert [e.seq for e in await store.events(SITE)] == [1]


async def test_insert_is_idempotent_and_round_trips(store: HubStore) -> None:
    events = [env(1, kind="DayOpened", data={"day": "2026-11-21"}),
              env(2, data={"counter": "1", "名前": "窓口", "nested": {"a": [1, 2.5, None]}}),
              env(3)]
    first = await store.insert_events(SITE, events)
    assert (first.inserted, first.duplicates, first.conflicts) == (3, 0, ())
    again = await store.insert_events(SITE, [*events, *events])
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 6, ())
    assert await store.events(SITE) == events  # same seqs, ids, times, types, data
    assert await store.contiguous_seq(SITE) == 3


async def test_contiguous_seq_with_gaps(store: HubStore) -> None:
    assert await store.contiguous_seq(SITE) == 0
    await store.insert_events(SITE, [env(s) for s in (2, 3, 5)])
    assert await store.contiguous_seq(SITE) == 0  # seq 1 missing: nothing is contiguous
    await store.insert_events(SITE, [env(1)])
    assert await store.contiguous_seq(SITE) == 3
    await store.insert_events(SITE, [env(4), env(7)])
    assert await store.contiguous_seq(SITE) == 5
    async with store.read() as tx:
        assert await tx.contiguous_seq(SITE, start=3) == 5  # hint: scan from a known seq
        assert await tx.contiguous_seq(SITE, start=6) == 5  # a wrong hint is not trusted
        assert await tx.max_seq(SITE) == 7
    await store.insert_events(SITE, [env(6)])
    assert await store.contiguous_seq(SITE) == 7


async def test_sites_are_independent(store: HubStore) -> None:
    await store.insert_events("site-a", [env(s, "site-a") for s in (1, 2, 3)])
    await store.insert_events("site-b", [env(s, "site-b") for s in (1, 3)])
    assert await store.contiguous_seq("site-a") == 3
    assert await store.contiguous_seq("site-b") == 1
    assert [e.site for e in await store.events("site-b")] == ["site-b", "site-b"]


async def test_conflicting_events_are_reported_not_stored(store: HubStore) -> None:
    original = env(1)
    await store.insert_events(SITE, [original])
    other_id = await store.insert_events(SITE, [env(1)])  # same seq, another event
    assert other_id.conflicts == (1,)
    reused_id = await store.insert_events(SITE, [env(2, eid=original.id)])  # id at another seq
    assert reused_id.conflicts == (2,)
    assert await store.events(SITE) == [original]


async def test_large_batches_are_chunked(store: HubStore) -> None:
    events = [env(s) for s in range(1, 1301)]
    result = await store.insert_events(SITE, events)
    assert result.inserted == 1300
    assert await store.contiguous_seq(SITE) == 1300
    page = await store.events(SITE, after=1000, limit=50)
    assert [e.seq for e in page] == list(range(1001, 1051))


async def test_site_rows_and_projections(store: HubStore) -> None:
    when = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    async with store.begin() as tx:
        await tx.upsert_site(SITE, online=True, session="s1", last_event_at=when)
        await tx.upsert_site(SITE, last_seq_contiguous=9)
        await tx.replace_projection(SITE, [{
            "service": "A", "status": "open", "waiting": 3, "second_wait": 1, "issued": 7,
            "open_counters": 2, "estimate_low_s": 60, "estimate_high_s": 300,
            "updated_at": when}], [{"counter": "1", "open": True, "current_number": 5,
                                     "current_service": "A"}])
        await tx.replace_devices(SITE, [{"device": "p1", "kind": "printer", "state": "degraded",
                                         "reason": "paper_near_end", "since": "x"}])
    async with store.read() as tx:
        row = await tx.site(SITE)
        assert row is not None
        assert (row["online"], row["session"], row["last_seq_contiguous"]) == (True, "s1", 9)
        assert row["last_event_at"] == when
        assert row["last_event_at"].tzinfo is not None
        assert row["projection"] == "no_config"
        proj = await tx.projection(SITE)
    assert proj["queues"][0]["waiting"] == 3
    assert proj["counters"] == [{"counter": "1", "open": True, "current_number": 5,
                                 "current_service": "A"}]
    assert proj["devices"][0]["reason"] == "paper_near_end"
    async with store.begin() as tx:
        await tx.replace_projection(SITE, [], [])
        assert (await tx.projection(SITE))["queues"] == []


async def test_config_versions(store: HubStore) -> None:
    source = (SITES_DIR / "oizumi.toml").read_text(encoding="utf-8")
    v1, body1 = await store_config(store, SITE, source)
    v2, body2 = await store_config(store, SITE, source.replace("大泉区民事務所", "大泉"))
    assert (v1, v2) == (1, 2)
    assert "version = 2\n" in body2
    assert "大泉\"" in body2
    assert await store.config(SITE) == (2, body2)
    assert await store.config(SITE, 1) == (1, body1)
    async with store.read() as tx:
        assert await tx.config_versions() == {SITE: 2}
    with pytest.raises(ConfigError, match="別の拠点"):
        await store_config(store, "nerima-main", source)
    with pytest.raises(ConfigError):
        await store_config(store, SITE, source.replace("[site]", "[site]\nbogus = 1"))
    assert await store.config(SITE) == (2, body2)  # refused configs store nothing


def test_with_version_sets_only_the_top_level_key() -> None:
    assert with_version("version = 1\n[site]\nid = 'x'\n", 4) == "version = 4\n[site]\nid = 'x'\n"
    added = with_version("# comment\n[site]\nversion = 9\n", 2)
    assert added == "# comment\nversion = 2\n[site]\nversion = 9\n"
    assert with_version("a = 1", 3) == "a = 1\nversion = 3\n"


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_url("sqlite:///var/hub.db") == "sqlite+aiosqlite:///var/hub.db"
    assert normalize_url("sqlite+aiosqlite:///x") == "sqlite+aiosqlite:///x"


def test_other_databases_are_refused() -> None:
    from hub.store.store import _insert

    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        _insert("mysql")
