"""Hub storage: SQLAlchemy Core on SQLite (default) or PostgreSQL, migrated by Alembic at start."""

from hub.store.store import DEFAULT_URL, HubStore, InsertResult, Tx, normalize_url

__all__ = ["DEFAULT_URL", "HubStore", "InsertResult", "Tx", "normalize_url"]
