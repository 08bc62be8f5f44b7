"""The hub's store on SQLite or on the real PostgreSQL (a schema of its own, dropped after), for
tests that must hold on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from hub.store import HubStore


@dataclass
class Db:
    store: HubStore
    url: str
    schema: str | None  # None: SQLite


@asynccontextmanager
async def hub_store(kind: str, tmp_path: Path, postgres_url: str | None = None,
                    tag: str = "t") -> AsyncIterator[Db]:
    """``kind`` "sqlite" (a file under ``tmp_path``) or "postgresql" (``postgres_url``)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/hub/hub.db"
        store = await HubStore.open(url)
        try:
            yield Db(store, url, None)
        finally:
            await store.close()
        return
    assert postgres_url is not None, "the postgresql kind needs the postgres_url fixture"
    schema = f"{tag}_{uuid.uuid4().hex[:12]}"
    store = await HubStore.open(postgres_url, schema=schema)
    try:
        yield Db(store, postgres_url, schema)
    finally:
        async with store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await store.close()
