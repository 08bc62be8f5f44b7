"""Alembic environment: runs on the connection that ``hub.store.migrate`` hands over.

The hub migrates itself at start (no ``alembic.ini``, no CLI), inside its async engine's
``run_sync``, so this file only configures the given connection.
"""

from __future__ import annotations

from alembic import context

from hub.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run hub migrations through hub.store.migrate.upgrade()")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
