"""``madoguchi backup hub`` / ``restore hub``: pg_dump (or SQLite's backup API), sealed, 7 nights.

Why pg_dump and not pgBackRest: a ward runs one hub database of modest size (events, bookings,
notices: gigabytes, not terabytes), and the ward asked for daily backups (RPO one day), 7+
generations and a copy 100 km away. pg_dump gives exactly that from one client program with
no WAL archiving, repository or extra daemon to install and watch at a ward; pgBackRest's point
in time recovery would need that infrastructure for an RPO nobody asked for. The custom format is
compressed and restored with pg_restore into an empty database.

A dump runs under an exported snapshot (``pg_export_snapshot``) that the row counts in the
manifest were taken from, so "restored = backed up" is checkable table by table while the hub
keeps writing. The dump is streamed through the sealing (AES-256-GCM with the hub's keys); no
plaintext dump touches the disk. A restore first authenticates the whole file, then streams it
into pg_restore, so a damaged or foreign file is refused before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from edge.backup import container, sqlitefile
from edge.backup.edge_db import PAYLOAD, TZ, BackupResult, RestoreResult
from edge.backup.errors import BackupError
from edge.backup.files import (
    KEEP,
    copy_generations,
    discard,
    night_name,
    prune,
    swap_sqlite,
    write_atomically,
)
from hub.store.store import normalize_url

FORMAT = 1
PREFIX = "hub"
_TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
           "AND table_type = 'BASE TABLE' ORDER BY table_name")


def parse(url: str) -> URL:
    return make_url(normalize_url(url))


def pg_env(url: URL) -> dict[str, str]:
    """libpq settings for pg_dump/pg_restore: in the environment, so no password is in argv."""
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[var] = str(value)
    return env


def _engine_args(schema: str | None) -> dict[str, Any]:
    return {"connect_args": {"server_settings": {"search_path": schema}}} if schema else {}


async def pg_counts(conn: AsyncConnection, schema: str) -> dict[str, int]:
    names = (await conn.execute(text(_TABLES), {"s": schema})).scalars().all()
    return {str(n): int((await conn.execute(text(
        f'SELECT count(*) FROM "{schema}"."{n}"'))).scalar_one())  # noqa: S608 (catalog names)
        for n in names}


def _stream(proc: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        yield chunk


def _popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(cmd, stderr=subprocess.PIPE, **kwargs)
    except FileNotFoundError:
        raise BackupError(f"{cmd[0]} is not installed (apt-get install postgresql-client)",
                          f"{cmd[0]} がありません"
                          "（postgresql-client を導入してください）") from None


def _drain(stream: IO[bytes] | None) -> tuple[threading.Thread, list[bytes]]:
    """Read a child's stderr in a thread, so a chatty child cannot block on a full pipe."""
    assert stream is not None
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(stream.read()), daemon=True)
    reader.start()
    return reader, out


def _dump_into(out: BinaryIO, url: URL, schema: str | None, snapshot: str,
               manifest: dict[str, Any], keys: dict[str, bytes], key_id: str,
               trailer: dict[str, Any]) -> None:
    cmd = ["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-password"]
    if schema:
        cmd.append(f"--schema={schema}")
    with _popen(cmd, stdout=subprocess.PIPE, env=pg_env(url)) as proc:
        reader, errors = _drain(proc.stderr)
        trailer.update(container.write(out, manifest, _stream(proc), keys, key_id))
        code = proc.wait()
        reader.join()
    if code != 0:
        message = b"".join(errors).decode(errors="replace").strip()[:500]
        raise BackupError(f"pg_dump failed ({code}): {message}",
                          f"pg_dump が失敗しました（{code}）: {message}")


async def _backup_pg(url: URL, schema: str | None, folder: Path, keys: dict[str, bytes],
                     key_id: str, now: datetime) -> tuple[Path, dict[str, Any]]:
    engine = create_async_engine(url, **_engine_args(schema))
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snap = str((await conn.execute(text("SELECT pg_export_snapshot()"))).scalar())
                current = str((await conn.execute(text("SELECT current_schema()"))).scalar())
                counts = await pg_counts(conn, current)
                rev = None
                if "alembic_version" in counts:
                    rev = (await conn.execute(text(
                        f'SELECT version_num FROM "{current}".alembic_version'))).scalar()  # noqa: S608
                manifest = {"format": FORMAT, "kind": "hub", "dialect": "postgresql",
                            "payload": "pg_dump-custom", "database": url.database,
                            "schema": current, "revision": rev, "tables": counts,
                            "created_at": now.isoformat()}
                path = folder / night_name(PREFIX, now)
                trailer: dict[str, Any] = {}
                # the snapshot lives as long as this transaction: pg_dump runs inside it
                await asyncio.to_thread(write_atomically, path, lambda f: _dump_into(
                    f, url, schema, snap, manifest, keys, key_id, trailer))
        return path, {**manifest, **trailer}
    finally:
        await engine.dispose()


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory hub database cannot be backed up",
                          "メモリ上のハブDBはバックアップできません")
    return Path(url.database)


def _backup_sqlite(url: URL, folder: Path, keys: dict[str, bytes], key_id: str,
                   now: datetime) -> tuple[Path, dict[str, Any]]:
    db = _sqlite_path(url)
    tmp = db.with_name(f".{db.name}.backup-{os.getpid()}")
    try:
        sqlitefile.snapshot(db, tmp)
        counts = sqlitefile.table_counts(tmp)
        manifest = {"format": FORMAT, "kind": "hub", "dialect": "sqlite", "payload": PAYLOAD,
                    "database": db.name, "schema": None, "tables": counts,
                    "created_at": now.isoformat()}
        path = folder / night_name(PREFIX, now)
        trailer: dict[str, Any] = {}
        write_atomically(path, lambda f: trailer.update(container.write(
            f, manifest, sqlitefile.deflate(sqlitefile.file_chunks(tmp)), keys, key_id)))
    finally:
        discard(tmp)
    return path, {**manifest, **trailer}


async def backup_hub(db_url: str, folder: Path, keys: dict[str, bytes], key_id: str, *,
                     schema: str | None = None, now: datetime | None = None, keep: int = KEEP,
                     copy_to: str | None = None) -> BackupResult:
    t0 = time.perf_counter()
    now = now or datetime.now(TZ)
    url = parse(db_url)
    if url.get_backend_name() == "postgresql":
        path, manifest = await _backup_pg(url, schema, folder, keys, key_id, now)
    else:
        path, manifest = await asyncio.to_thread(_backup_sqlite, url, folder, keys, key_id, now)
    removed = prune(folder, PREFIX, keep)
    copied = None
    if copy_to:
        copied = await asyncio.to_thread(copy_generations, folder, PREFIX, copy_to)
    return BackupResult(path, manifest, time.perf_counter() - t0, removed, copied)


async def _refuse_nonempty(url: URL, schema: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text(_TABLES), {"s": schema})).scalars().all()
    finally:
        await engine.dispose()
    if tables:
        raise BackupError(
            f"database {url.database!r} is not empty (schema {schema!r} has {len(tables)} "
            "tables): restore only into an empty database; refused, nothing was changed",
            f"データベース {url.database!r} は空ではありません（スキーマ {schema!r} に"
            f"{len(tables)} 個の表）。空のデータベースにのみ復元できます。何も変更していません")


def _pg_restore(backup: Path, url: URL, keys: dict[str, bytes]) -> None:
    cmd = ["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction",
           "--no-password", f"--dbname={url.database}"]
    with _popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                env=pg_env(url)) as proc:
        assert proc.stdin is not None
        reader, errors = _drain(proc.stderr)
        try:
            container.verify(backup, keys, proc.stdin.write)
        except (BackupError, BrokenPipeError):
            proc.kill()  # --single-transaction: nothing stays
            raise
        finally:
            if not proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
        code = proc.wait()
        reader.join()
    if code != 0:
        message = b"".join(errors).decode(errors="replace").strip()[:500]
        raise BackupError(f"pg_restore failed ({code}): {message}",
                          f"pg_restore が失敗しました（{code}）: {message}")


async def restore_hub(backup: Path, db_url: str, keys: dict[str, bytes]) -> tuple[
        RestoreResult, dict[str, int]]:
    """Restore into the empty database ``db_url``; returns the result and the row counts now
    in each table (compare with ``manifest['tables']``)."""
    t0 = time.perf_counter()
    url = parse(db_url)
    dialect = "postgresql" if url.get_backend_name() == "postgresql" else "sqlite"
    if dialect == "sqlite":
        return await asyncio.to_thread(_restore_sqlite, backup, url, keys, t0)
    # first pass: authenticate all of it before pg_restore sees a byte
    opened = await asyncio.to_thread(container.verify, backup, keys)
    manifest = opened.manifest
    container.expect(manifest, "kind", "hub", "not a hub backup",
                     "ハブのバックアップではありません")
    container.expect(manifest, "dialect", dialect, "backup of another kind of database",
                     "別の種類のデータベースのバックアップです")
    container.expect(manifest, "payload", "pg_dump-custom", "unknown payload",
                     "未対応の形式です")
    schema = str(manifest.get("schema") or "public")
    await _refuse_nonempty(url, schema)
    await asyncio.to_thread(_pg_restore, backup, url, keys)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            counts = await pg_counts(conn, schema)
    finally:
        await engine.dispose()
    return RestoreResult(manifest, time.perf_counter() - t0, None), counts


def _restore_sqlite(backup: Path, url: URL, keys: dict[str, bytes], t0: float) -> tuple[
        RestoreResult, dict[str, int]]:
    db = _sqlite_path(url)
    if db.exists() and sqlitefile.table_counts(db):
        raise BackupError(f"{db} is not empty: restore only into a new file; refused",
                          f"{db} は空ではありません。"
                          "新しいファイルにのみ復元できます。中止しました")
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restore-{os.getpid()}")
    discard(tmp)
    try:
        with tmp.open("wb") as out:
            inflate = sqlitefile.Inflate(out)
            manifest = container.verify(backup, keys, inflate.write).manifest
            inflate.finish()
            out.flush()
            os.fsync(out.fileno())
        container.expect(manifest, "kind", "hub", "not a hub backup",
                         "ハブのバックアップではありません")
        container.expect(manifest, "dialect", "sqlite", "backup of another kind of database",
                         "別の種類のデータベースのバックアップです")
        container.expect(manifest, "payload", PAYLOAD, "unknown payload", "未対応の形式です")
        sqlitefile.check(tmp)
        counts = sqlitefile.table_counts(tmp)
        swap_sqlite(tmp, db, datetime.now(TZ).strftime("%Y%m%dT%H%M%S"))
    except BaseException:
        discard(tmp)
        raise
    return RestoreResult(manifest, time.perf_counter() - t0, None), counts


def report_restore(result: RestoreResult, counts: dict[str, int]) -> tuple[str, bool]:
    """The per-table report, and whether every table holds what the manifest says."""
    wanted: dict[str, int] = result.manifest.get("tables", {})
    same = wanted == counts
    lines = [f"restored the hub backup of {result.manifest['created_at']} in "
             f"{result.seconds:.1f} s / {result.manifest['created_at']} のハブのバックアップを"
             "復元しました", f"  {'table / 表':<32} {'rows / 行数':>12}  backup / 元"]
    for name in sorted(set(wanted) | set(counts)):
        got, want = counts.get(name), wanted.get(name)
        mark = "" if got == want else "  <- DIFFERS / 不一致"
        lines.append(f"  {name:<32} {got if got is not None else '-':>12}  "
                     f"{want if want is not None else '-'}{mark}")
    lines.append("all tables match the backup / すべての表がバックアップと一致" if same else
                 "SOME TABLES DIFFER / 一致しない表があります")
    return "\n".join(lines), same
