"""The hub's tables (SQLAlchemy Core). Alembic migrations create them; this is what code reads.

One schema runs on SQLite (default, the demo) and PostgreSQL (scale). Timestamps that the hub
makes are stored as UTC; the edge's own ``at`` stays the exact string it sent (with its offset),
because the envelope must come back byte-for-byte as the edge wrote it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

SITE = String(64)

events = Table(
    "events", metadata,
    Column("site", SITE, nullable=False),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("id", String(64), nullable=False),
    Column("at", String(40), nullable=False),  # the edge's ISO time with its offset, verbatim
    Column("day", String(10), nullable=False),
    Column("type", String(64), nullable=False),
    Column("data", Text, nullable=False),  # JSON text, as the edge serialised it
    Column("received_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("site", "seq", name="pk_events"),
    UniqueConstraint("id", name="uq_events_id"),
)

sites = Table(
    "sites", metadata,
    Column("site", SITE, primary_key=True),
    Column("last_seq_contiguous", BigInteger, nullable=False, default=0),
    Column("last_seq_received", BigInteger, nullable=False, default=0),
    Column("last_event_at", UtcDateTime, nullable=True),  # edge time of the last contiguous one
    Column("online", Boolean, nullable=False, default=False),
    Column("session", String(64), nullable=True),
    Column("status", Text, nullable=True),  # the last status payload (JSON), devices excluded
    Column("config_version_applied", Integer, nullable=True),
    Column("projection", String(16), nullable=False, default="no_config"),  # ok|no_config|error
    Column("updated_at", UtcDateTime, nullable=False),
)

site_configs = Table(
    "site_configs", metadata,
    Column("site", SITE, nullable=False),
    Column("version", Integer, nullable=False, autoincrement=False),
    Column("toml", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("site", "version", name="pk_site_configs"),
)

site_queues = Table(
    "site_queues", metadata,
    Column("site", SITE, nullable=False),
    Column("service", String(8), nullable=False),
    Column("status", String(8), nullable=False),  # open | closed | full
    Column("waiting", Integer, nullable=False),
    Column("second_wait", Integer, nullable=False),  # waiting at stage >= 2 (Q15)
    Column("issued", Integer, nullable=False),
    Column("open_counters", Integer, nullable=False),
    Column("estimate_low_s", Integer, nullable=True),
    Column("estimate_high_s", Integer, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("site", "service", name="pk_site_queues"),
)

site_counters = Table(
    "site_counters", metadata,
    Column("site", SITE, nullable=False),
    Column("counter", String(16), nullable=False),
    Column("open", Boolean, nullable=False),
    Column("current_number", Integer, nullable=True),
    Column("current_service", String(8), nullable=True),
    PrimaryKeyConstraint("site", "counter", name="pk_site_counters"),
)

site_devices = Table(
    "site_devices", metadata,
    Column("site", SITE, nullable=False),
    Column("device", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # ok | degraded | offline | error
    Column("reason", String(64), nullable=True),
    Column("since", String(40), nullable=True),  # as the edge reported it
    PrimaryKeyConstraint("site", "device", name="pk_site_devices"),
)

PROJECTION_TABLES = (site_queues, site_counters, site_devices)

# --- residents (web status, web tickets, notices) --------------------------------------------

web_access = Table(  # W8: page views per page per hour (site time), for statistics
    "web_access", metadata,
    Column("page", String(32), nullable=False),
    Column("site", SITE, nullable=False, server_default=""),  # "" for pages of no one site
    Column("hour", String(13), nullable=False),  # "YYYY-MM-DDTHH", Asia/Tokyo
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("page", "site", "hour", name="pk_web_access"),
)

web_tickets = Table(  # W4: tickets taken online, for the fairness rules (cap, one per contact)
    "web_tickets", metadata,
    Column("id", String(64), primary_key=True),
    Column("site", SITE, nullable=False),
    Column("service", String(8), nullable=False),
    Column("day", String(10), nullable=False),
    Column("number", Integer, nullable=True),
    Column("token", String(64), nullable=True),  # the ticket's capability (not personal data)
    Column("contact_hash", String(64), nullable=True),  # HMAC of the contact; erased when done
    Column("state", String(16), nullable=False),  # active | done
    Column("created_at", UtcDateTime, nullable=False),
)

notify_subscriptions = Table(  # W5-W7: one registered contact for one ticket
    "notify_subscriptions", metadata,
    Column("id", String(64), primary_key=True),
    Column("site", SITE, nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False),  # sha256 of the ticket token
    Column("channel", String(8), nullable=False),  # email | sms
    Column("contact_ct", Text, nullable=True),  # AES-GCM ciphertext (base64); NULL once erased
    Column("key_id", String(16), nullable=True),
    Column("lang", String(8), nullable=False),
    Column("ahead_n", Integer, nullable=False),
    Column("sent_ahead_at", UtcDateTime, nullable=True),
    Column("sent_called_at", UtcDateTime, nullable=True),
    Column("erased_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

Index("ix_web_tickets_site_day", web_tickets.c.site, web_tickets.c.day, web_tickets.c.service)
Index("ix_web_tickets_contact", web_tickets.c.contact_hash)
Index("ix_web_tickets_token", web_tickets.c.token)
Index("ix_notify_site", notify_subscriptions.c.site, notify_subscriptions.c.ticket_id)

# --- event integrity (issue 12 item 7): what ingest refused to fold or store, and why ------------

event_quarantine = Table(  # events set aside: a conflicting seq, or one the fold cannot apply
    "event_quarantine", metadata,
    Column("qid", Integer, primary_key=True, autoincrement=True),
    Column("site", SITE, nullable=False),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("id", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("day", String(10), nullable=False),
    Column("type", String(64), nullable=False),
    Column("data", Text, nullable=False),  # the event itself, nothing more
    Column("reason", String(32), nullable=False),  # a stable code (hub.ingest.integrity)
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("site", "seq", "id", "reason", name="uq_event_quarantine"),
)

ingest_alerts = Table(  # for the staff pages: one row per refusal or quarantine, no payload
    "ingest_alerts", metadata,
    Column("aid", Integer, primary_key=True, autoincrement=True),
    Column("site", SITE, nullable=False),
    Column("reason", String(32), nullable=False),  # a stable code (hub.ingest.integrity)
    Column("seq", BigInteger, nullable=True),
    Column("detail", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

Index("ix_event_quarantine_site", event_quarantine.c.site, event_quarantine.c.seq)
Index("ix_ingest_alerts_site", ingest_alerts.c.site, ingest_alerts.c.created_at)
