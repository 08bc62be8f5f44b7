"""Staff accounts, their roles per site, sessions and login failures (migration ``v0006_staff``).

On the hub's one ``metadata``. Nothing secret is stored readable: passwords and recovery codes as
argon2id hashes, TOTP secrets sealed (AES-GCM, ``hub.notify.crypto``), sessions by the SHA-256 of
their id (the cookie holds the id; the database never does).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from hub.store.schema import UtcDateTime, metadata

staff = Table(
    "staff", metadata,
    Column("id", String(36), primary_key=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("name", String(128), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("totp_sealed", Text, nullable=True),  # confirmed TOTP secret, sealed
    Column("totp_pending", Text, nullable=True),  # secret shown at enrolment, not yet confirmed
    Column("disabled", Boolean, nullable=False),
    Column("networks", Text, nullable=False),  # allowed client ranges, comma-separated; "" any
    Column("failed", Integer, nullable=False),  # consecutive failures (reset on success)
    Column("failed_since_login", Integer, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_login_at", UtcDateTime, nullable=True),
    Column("last_logout_at", UtcDateTime, nullable=True),
)

staff_roles = Table(
    "staff_roles", metadata,
    Column("staff_id", String(36), nullable=False),
    Column("site", String(64), nullable=False),  # a site id, or "*" for every site
    Column("role", String(32), nullable=False),
    PrimaryKeyConstraint("staff_id", "site", "role", name="pk_staff_roles"),
)

staff_recovery = Table(
    "staff_recovery", metadata,
    Column("staff_id", String(36), nullable=False),
    Column("code_hash", Text, nullable=False),  # argon2id of a one-time recovery code
    Column("used_at", UtcDateTime, nullable=True),
)
Index("ix_staff_recovery_staff", staff_recovery.c.staff_id)

staff_sessions = Table(
    "staff_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 hex of the cookie's session id
    Column("staff_id", String(36), nullable=False),
    Column("stage", String(8), nullable=False),  # "mfa", "enrol" or "ok"
    Column("created_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("ip", String(64), nullable=True),
    Column("prev_login_at", UtcDateTime, nullable=True),  # shown after login
    Column("prev_logout_at", UtcDateTime, nullable=True),
    Column("prev_failed", Integer, nullable=False),
)
Index("ix_staff_sessions_staff", staff_sessions.c.staff_id)

login_failures = Table(  # per client address
    "staff_login_failures", metadata,
    Column("address", String(64), primary_key=True),
    Column("failed", Integer, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)
