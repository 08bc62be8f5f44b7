"""Run the Alembic migrations from code at hub start (works from an installed wheel).

The script folder is found next to this file rather than through an ``alembic.ini``, and the
migrations run on a connection of the hub's own async engine (Alembic's "connection sharing"
recipe), so there is nothing for an operator to run by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision shipped with this code."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def _upgrade(connection: Connection, target: str) -> None:
    command.upgrade(alembic_config(connection), target)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, target: str = "head") -> str | None:
    """Bring the database to ``target`` (default: the newest); return the revision now in it."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:  # its INFO lines say nothing an operator needs
        alembic_log.setLevel(logging.WARNING)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, target)
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
