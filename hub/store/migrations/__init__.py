"""Alembic migrations of the hub store (run in code by ``hub.store.migrate``)."""
