"""One SQL statement without ``BEGIN``/``COMMIT`` around it (PostgreSQL), for the hot paths.

Why: on PostgreSQL, ``HubStore.read()``/``begin()`` cost three round trips for one statement
(``BEGIN``, the statement, ``COMMIT``), each a socket write and a wake-up of the server. A
resident's page opens the draft and the form row; with 200 residents at once those round trips
were about a third of the hub's CPU (issue 17's forms bench). A single statement is atomic and
sees one snapshot on its own, so running it in autocommit mode changes nothing but the cost.
Only for exactly one statement: anything that reads then writes, or writes twice, keeps its
transaction. SQLite (in-process, no round trips) keeps ``HubStore``'s transactions as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import HubStore


@asynccontextmanager
async def one_statement(store: HubStore, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection to run ONE statement on; ``write`` as ``HubStore.begin`` takes it."""
    if store.dialect != "postgresql":
        async with store.begin(write=write) as tx:
            yield tx.conn
        return
    async with store.engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")
