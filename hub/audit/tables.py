"""The audit tables, on the hub's one ``metadata`` (the migration ``v0005_audit`` creates them).

Kept out of ``hub.store.schema`` so the audit module owns its tables; ``hub.audit`` imports this
module, and ``hub.store.store`` imports it too so that every user of ``metadata`` (Alembic's
comparison in the tests, ``HubStore``) sees these tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from hub.store.schema import UtcDateTime, metadata

audit_log = Table(
    "audit_log", metadata,
    # assigned as last id + 1 under the append lock, so a gap always means a removed row
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=True),  # a staff id, "system", or None (anonymous)
    Column("action", String(64), nullable=False),  # a stable code: hub.audit.service.ACTIONS
    Column("target", String(200), nullable=True),  # what was acted on: an account, a setting
    Column("detail", Text, nullable=False),  # canonical JSON, secrets and contacts dropped
    Column("ip", String(64), nullable=True),
    Column("key_id", String(16), nullable=False),  # which hub key the MAC was made with
    Column("prev", String(64), nullable=False),  # the previous row's mac (hex); genesis: zeros
    Column("mac", String(64), nullable=False),  # HMAC-SHA256 over this row's fields and prev
)

audit_settings = Table(  # staff-set audit settings, e.g. the retention period in days
    "audit_settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(128), nullable=True),
)

Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_actor", audit_log.c.actor, audit_log.c.id)
Index("ix_audit_log_action", audit_log.c.action, audit_log.c.id)
