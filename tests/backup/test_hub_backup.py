"""Hub backups: pg_dump of a live PostgreSQL restored into an empty database equals the original
(rows and an md5 per table), on SQLite too; damaged, foreign or misdirected restores refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from backup_support import fresh_database, new_keys, table_digests
from sqlalchemy import text
from store_support import hub_store

from edge.backup.errors import BackupError
from edge.backup.hub_db import backup_hub, report_restore, restore_hub
from edge.protocol import Envelope, uuid7
from hub.audit.service import audit_key, record
from hub.settings import HubSettings
from hub.store import HubStore

SITES = ("oizumi", "hikarigaoka", "shakujii")
QUEUE = {"service": "A", "status": "open", "waiting": 3, "second_wait": 0, "issued": 9,
         "open_counters": 1, "updated_at": datetime(2026, 11, 21, 1, 0, tzinfo=UTC)}


def event(site: str, seq: int) -> Envelope:
    return Envelope(1, site, seq, uuid7(), f"2026-11-21T09:{seq % 60:02d}:00+09:00",
                    "2026-11-21", "TicketIssued", {"ticket": f"t{seq}", "number": seq,
                                                   "note": "整理券 'quoted' \\ | ,"})


def config_text(site: str, version: int) -> str:
    return f'site = "{site}"  # v{version}\n'


async def fill(store: HubStore, keys: dict[str, bytes], kid: str, n: int) -> None:
    """Events, sites, configs, projections and audit rows (hash chained, keyed)."""
    key, key_id = audit_key(HubSettings(keys=keys, key_id=kid))
    for site in SITES:
        for start in range(1, n + 1, 1000):
            await store.insert_events(site, [event(site, s)
                                              for s in range(start, min(start + 1000, n + 1))])
        async with store.begin() as tx:
            await tx.upsert_site(site, online=True)
            await tx.replace_projection(site, [QUEUE], [{"counter": "1", "open": True}])
        await store.add_config(site, partial(config_text, site))
        await record(store, actor="cli:test", action="setting_changed", target=site,
                     detail={"version": 1}, key=key, key_id=key_id)


async def test_postgres_backup_restores_into_an_empty_database_equal_to_the_original(
        postgres_url: str, tmp_path: Path) -> None:
    keys, kid = new_keys()
    async with fresh_database(postgres_url, "bksrc") as src_url:
        store = await HubStore.open(src_url)
        try:
            await fill(store, keys, kid, 3000)
            stop = asyncio.Event()

            async def keep_writing() -> int:  # ingest goes on while the dump runs
                seq = 3000
                while not stop.is_set():
                    seq += 1
                    await store.insert_events("oizumi", [event("oizumi", seq)])
                return seq - 3000

            writer = asyncio.create_task(keep_writing())
            await asyncio.sleep(0.05)
            result = await backup_hub(src_url, tmp_path / "b", keys, kid)
            stop.set()
            written = await writer
        finally:
            await store.close()
        assert written > 0
        original = await table_digests(src_url)
        manifest = result.manifest
        assert manifest["dialect"] == "postgresql"
        assert manifest["revision"]
        assert manifest["tables"]["events"] < original["events"][0], "nothing written during"
        async with fresh_database(postgres_url, "bkdst") as dst_url:
            restored, counts = await restore_hub(result.path, dst_url, keys)
            text_report, same = report_restore(restored, counts)
            assert same, text_report
            assert counts == manifest["tables"]
            copy = await table_digests(dst_url)
            # the dump's snapshot: every table equal but events, which went on after it
            assert {t: d for t, d in copy.items() if t != "events"} == {
                t: d for t, d in original.items() if t != "events"}
            assert copy["events"][0] == manifest["tables"]["events"]
            assert sum(c for c, _ in copy.values()) > 9000
            # restored again over itself: refused, the database is not empty
            with pytest.raises(BackupError, match="not empty"):
                await restore_hub(result.path, dst_url, keys)
            assert await table_digests(dst_url) == copy


async def test_postgres_restore_equals_original_when_quiet(postgres_url: str,
                                                          tmp_path: Path) -> None:
    """Nothing written during the dump: every table, events included, identical."""
    keys, kid = new_keys()
    async with fresh_database(postgres_url, "bksrc") as src_url:
        store = await HubStore.open(src_url)
        try:
            await fill(store, keys, kid, 500)
        finally:
            await store.close()
        result = await backup_hub(src_url, tmp_path / "b", keys, kid)
        original = await table_digests(src_url)
        async with fresh_database(postgres_url, "bkdst") as dst_url:
            await restore_hub(result.path, dst_url, keys)
            assert await table_digests(dst_url) == original
            assert len(original) >= 10
            assert original["audit_log"][0] == len(SITES)


async def test_damaged_or_foreign_hub_backup_is_refused_before_pg_restore(
        postgres_url: str, tmp_path: Path) -> None:
    keys, kid = new_keys()
    async with fresh_database(postgres_url, "bksrc") as src_url:
        store = await HubStore.open(src_url)
        try:
            await fill(store, keys, kid, 200)
        finally:
            await store.close()
        result = await backup_hub(src_url, tmp_path / "b", keys, kid)
    data = result.path.read_bytes()
    damaged = tmp_path / "damaged.mbk"
    damaged.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])  # in the last chunk
    async with fresh_database(postgres_url, "bkdst") as dst_url:
        with pytest.raises(BackupError, match="altered"):
            await restore_hub(damaged, dst_url, keys)
        with pytest.raises(BackupError, match="not configured here"):
            await restore_hub(result.path, dst_url, new_keys("other")[0])
        assert await table_digests(dst_url) == {}, "something was restored"


async def test_sqlite_hub_backup_and_restore(tmp_path: Path) -> None:
    keys, kid = new_keys()
    src = f"sqlite:///{tmp_path}/hub/hub.db"
    store = await HubStore.open(src)
    try:
        await fill(store, keys, kid, 300)
        result = await backup_hub(src, tmp_path / "b", keys, kid)
    finally:
        await store.close()
    dst = f"sqlite:///{tmp_path}/restored/hub.db"
    restored, counts = await restore_hub(result.path, dst, keys)
    assert counts == restored.manifest["tables"]
    assert counts["events"] == 900
    store = await HubStore.open(dst, upgrade=False)
    try:
        async with store.read() as tx:
            assert [s["site"] for s in await tx.sites()] == sorted(SITES)
            rows = (await tx.conn.execute(text("SELECT count(*) FROM audit_log"))).scalar()
            assert rows == len(SITES)
    finally:
        await store.close()
    with pytest.raises(BackupError, match="not empty"):
        await restore_hub(result.path, dst, keys)


async def test_a_hub_in_its_own_schema_is_restored_with_that_schema(postgres_url: str,
                                                                   tmp_path: Path) -> None:
    keys, kid = new_keys()
    async with hub_store("postgresql", tmp_path, postgres_url, tag="bk") as db:
        await fill(db.store, keys, kid, 100)
        assert db.schema is not None
        result = await backup_hub(postgres_url, tmp_path / "b", keys, kid, schema=db.schema)
        original = await table_digests(postgres_url, db.schema)
    assert result.manifest["schema"] == db.schema
    async with fresh_database(postgres_url, "bkdst") as dst_url:
        await restore_hub(result.path, dst_url, keys)
        assert await table_digests(dst_url, db.schema) == original
        assert await table_digests(dst_url) == {}, "tables landed in public"
