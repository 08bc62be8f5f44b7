"""Backup tests: keys, a fresh PostgreSQL database per test, per-table checksums, damage."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.store import normalize_url


def new_keys(key_id: str = "k1") -> tuple[dict[str, bytes], str]:
    return {key_id: secrets.token_bytes(32)}, key_id


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path: Path, offset: int) -> None:
    """Flip one bit pattern of the byte at ``offset`` (negative: from the end)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def database_url(postgres_url: str, name: str) -> str:
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(postgres_url: str, tag: str = "bk") -> AsyncIterator[str]:
    """A new, empty database on the test server (dropped after, connections or not)."""
    name = f"{tag}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield database_url(postgres_url, name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def table_digests(url: str, schema: str = "public") -> dict[str, tuple[int, str]]:
    """Rows and an md5 of all rows (as text, in text order: a total order, PK or not) per
    table: two databases with equal digests hold the same data."""
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            names = (await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "AND table_type = 'BASE TABLE'"), {"s": schema})).scalars().all()
            out: dict[str, tuple[int, str]] = {}
            for n in names:
                row = (await conn.execute(text(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), "
                    f"'')) FROM \"{schema}\".\"{n}\" t"))).one()
                out[str(n)] = (int(row[0]), str(row[1]))
            return out
    finally:
        await engine.dispose()
