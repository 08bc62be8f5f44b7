"""Audit trail service: append, verify, prune and the retention setting (no aiohttp here).

Appends are serialised so the chain never forks: each append reads the last row and writes the
next id with the last MAC as ``prev``, so two appenders must never read the same last row.
- PostgreSQL: ``pg_advisory_xact_lock`` on a fixed key, taken first in the transaction and
  released at commit. Chosen over ``SELECT … FOR UPDATE`` on the last row because that locks
  nothing while the table is empty (two first rows), and a waiter woken after the holder commits
  re-checks only the row it locked, the old last row, so it would chain onto it a second time.
- SQLite: ``HubStore.begin()`` opens write transactions with ``BEGIN IMMEDIATE``, which already
  admits one writer at a time across processes; nothing more is needed.

``detail`` must never hold passwords, TOTP secrets or recovery codes, session ids or CSRF tokens,
or residents' contacts (phones, e-mails, names): pass ids and codes instead. Keys named like
those are dropped defensively (``hub.audit.chain.clean_detail``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text

from hub.audit.chain import (
    CHECKPOINT,
    GENESIS,
    Row,
    VerifyResult,
    Walk,
    clean_detail,
    detail_json,
    mac_of,
)
from hub.audit.tables import audit_log, audit_settings
from hub.settings import HubSettings
from hub.store.store import HubStore, Tx, now_utc
from hub.webticket.pow import derive_key

# stable action codes; other modules may add theirs (a code is [a-z_]{1,64})
ACTIONS = frozenset({
    "login", "login_failed", "lockout", "logout", "session_expired", "mfa_enrolled",
    "mfa_reset", "account_created", "account_changed", "account_disabled", "account_enabled",
    "role_changed", "setting_changed", "export", "personal_data_viewed", "audit_verified",
    CHECKPOINT,
    # written by other modules: hub/siteconfig (settings editor), hub/fleet (alerts)
    "config_published", "config_conflict", "config_rolled_back", "fleet_rules_changed",
    "fleet_recipient_added", "fleet_recipient_removed", "reservation_ids_imported",
    "reservation_slots_created", "reservation_slot_changed", "reservation_data_erased",
    # hub/stats: a statistics export (period, sites, columns), a CSV column set saved/deleted
    "stats_exported", "stats_columns_saved", "stats_columns_deleted",
    # hub/notices: staff actions on notices, residents' portal sign-ins and downloads
    "notice_created",
    "notice_changed",
    "notice_recipients_imported",
    "notice_pdfs_prepared",
    "notice_signed",
    "notice_sent",
    "notice_recontacted",
    "notice_closed",
    "notice_exported",
    "notice_purged",
    "notice_viewed",
    "notice_portal_login",
    "notice_code_locked",
    "notice_downloaded",
    # hub/forms: staff actions on forms and applications, residents' sign-ins and submissions
    "form_created",
    "form_changed",
    "form_published",
    "form_closed",
    "form_copied",
    "form_exported",
    "form_imported",
    "form_secret_created",
    "form_submitted",
    "form_staff_entered",
    "form_submission_viewed",
    "form_status_changed",
    "form_submissions_exported",
    "form_file_downloaded",
    "form_api_read",
    "form_purged",
    "form_retention_warned",
    "form_resident_login",
    "form_code_locked",
})
PURPOSE = "audit"
LOCK_KEY = int.from_bytes(hashlib.sha256(b"madoguchi/audit/append").digest()[:8], "big",
                          signed=True)  # the advisory lock's 64-bit key
READ_CHUNK = 1000

# Retention (A3, seed 004 §3.5.1(ア)①: "3年分のアクセスログを記録し、閲覧可能とすること。また、
# 格納したデータを一定期間で自動削除する設定を職員が容易にできること"): rows are kept 3 years; staff
# may set a longer period, never a shorter one: the tender's 3 years is the floor.
DAY = timedelta(days=1)
MIN_RETENTION_DAYS = 1096  # 3 years, leap day included
DEFAULT_RETENTION_DAYS = MIN_RETENTION_DAYS
MAX_RETENTION_DAYS = 3653  # 10 years
RETENTION_SETTING = "retention_days"


class AuditError(ValueError):
    """A request the audit trail refuses; carries texts safe to show, in ja and en."""

    def __init__(self, code: str, message_en: str, message_ja: str) -> None:
        super().__init__(message_en)
        self.code, self.message_en, self.message_ja = code, message_en, message_ja


def audit_key(settings: HubSettings) -> tuple[bytes, str]:
    """The audit HMAC key for new rows (derived from the hub's current key) and its id."""
    return derive_key(settings.key, PURPOSE), settings.key_id


def audit_keys(settings: HubSettings) -> dict[str, bytes]:
    """Every configured key's audit key by id: what ``verify`` needs after a key rotation."""
    return {kid: derive_key(secret, PURPOSE) for kid, secret in settings.keys.items()}


def _check_action(action: str) -> None:
    if not (0 < len(action) <= 64 and all(c.islower() or c == "_" for c in action)):
        raise AuditError("bad_action", f"action must be a code of a-z and _, got {action!r}",
                         "操作コードは英小文字と _ で指定してください")


async def _lock(tx: Tx) -> None:
    if tx.dialect == "postgresql":
        await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


async def _head(tx: Tx) -> tuple[int, str]:
    row = (await tx.conn.execute(
        select(audit_log.c.id, audit_log.c.mac).order_by(audit_log.c.id.desc()).limit(1))).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


async def _append_locked(tx: Tx, *, actor: str | None, action: str, target: str | None,
                         detail: str, ip: str | None, key: bytes, key_id: str,
                         at: datetime) -> int:
    last_id, last_mac = await _head(tx)
    row_id = last_id + 1
    actor, target, ip = (None if v is None else v[:n] for v, n in
                         ((actor, 128), (target, 200), (ip, 64)))
    mac = mac_of(key, row_id, at, actor, action, target, detail, ip, key_id, last_mac)
    await tx.conn.execute(audit_log.insert().values(
        id=row_id, at=at, actor=actor, action=action, target=target, detail=detail, ip=ip,
        key_id=key_id, prev=last_mac, mac=mac))
    return row_id


async def append(tx: Tx, *, actor: str | None, action: str, target: str | None = None,
                 detail: Mapping[str, Any] | None = None, ip: str | None = None,
                 key: bytes, key_id: str, at: datetime | None = None) -> int:
    """Append one row inside the caller's write transaction (so an account change and its audit
    row commit together, or neither); return its id. On PostgreSQL the append lock is held until
    that transaction ends: keep it short."""
    _check_action(action)
    await _lock(tx)
    when = at or now_utc()  # microseconds at most: both backends keep them exactly
    return await _append_locked(tx, actor=actor, action=action, target=target,
                                detail=detail_json(clean_detail(detail)), ip=ip, key=key,
                                key_id=key_id, at=when)


@dataclass(frozen=True)
class Entry:
    """One row for :func:`append_many` (``detail`` is cleaned as in :func:`append`)."""

    actor: str | None
    action: str
    target: str | None = None
    detail: Mapping[str, Any] | None = None
    ip: str | None = None


async def append_many(tx: Tx, entries: Sequence[Entry], *, key: bytes, key_id: str,
                      at: datetime | None = None) -> None:
    """Append rows in order inside the caller's transaction with one lock, one read of the
    chain's head and one multi-row insert: for work that groups many small writes into one
    commit (the notice portal's downloads), where a transaction per row would queue on the
    chain's lock. The chain is the same as from one :func:`append` per row."""
    if not entries:
        return
    for e in entries:
        _check_action(e.action)
    await _lock(tx)
    when = at or now_utc()
    last_id, last_mac = await _head(tx)
    rows = []
    for e in entries:
        last_id += 1
        actor, target, ip = (None if v is None else v[:n] for v, n in
                             ((e.actor, 128), (e.target, 200), (e.ip, 64)))
        detail = detail_json(clean_detail(e.detail))
        mac = mac_of(key, last_id, when, actor, e.action, target, detail, ip, key_id, last_mac)
        rows.append({"id": last_id, "at": when, "actor": actor, "action": e.action,
                     "target": target, "detail": detail, "ip": ip, "key_id": key_id,
                     "prev": last_mac, "mac": mac})
        last_mac = mac
    await tx.conn.execute(audit_log.insert(), rows)


async def record(store: HubStore, *, actor: str | None, action: str, target: str | None = None,
                 detail: Mapping[str, Any] | None = None, ip: str | None = None,
                 key: bytes, key_id: str) -> None:
    """Append one row to the audit trail in its own transaction.

    ``detail`` must not hold passwords, TOTP secrets, session ids or contacts (dropped anyway).
    """
    async with store.begin() as tx:
        await append(tx, actor=actor, action=action, target=target, detail=detail, ip=ip,
                     key=key, key_id=key_id)


def _row(r: Any) -> Row:
    return Row(int(r.id), r.at, r.actor, r.action, r.target, r.detail, r.ip, r.key_id,
               r.prev, r.mac)


async def rows(tx: Tx, after: int = 0, chunk: int = READ_CHUNK) -> AsyncIterator[Row]:
    """Every row in id order, read in chunks (keyset paging: constant memory)."""
    while True:
        batch = (await tx.conn.execute(
            select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id)
            .limit(chunk))).all()
        for r in batch:
            yield _row(r)
        if len(batch) < chunk:
            return
        after = int(batch[-1].id)


async def verify_tx(tx: Tx, keys: Mapping[str, bytes]) -> VerifyResult:
    walker = Walk(keys)
    async for row in rows(tx):
        broken = walker.feed(row)
        if broken is not None:
            return broken
    return walker.finish()


async def verify(store: HubStore, keys: Mapping[str, bytes]) -> VerifyResult:
    """Walk the whole chain; the result names the first altered, removed or reordered row.

    One snapshot for the whole walk, read in chunks: REPEATABLE READ on PostgreSQL (a prune
    committing half-way must not look like removed rows), a deferred transaction in WAL mode on
    SQLite (a snapshot already). No lock is held, so logins are not blocked while it runs.
    """
    async with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return await verify_tx(Tx(conn), keys)


async def retention_days(store: HubStore) -> int:
    """The staff-set retention period, or the default (3 years)."""
    async with store.read() as tx:
        value = (await tx.conn.execute(select(audit_settings.c.value).where(
            audit_settings.c.name == RETENTION_SETTING))).scalar()
    try:
        return max(MIN_RETENTION_DAYS, min(MAX_RETENTION_DAYS, int(str(value))))
    except ValueError:
        return DEFAULT_RETENTION_DAYS


def check_retention(days: int) -> int:
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise AuditError(
            "retention_out_of_range",
            f"the retention period must be {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS} days "
            "(at least 3 years)",
            f"保存期間は {MIN_RETENTION_DAYS}〜{MAX_RETENTION_DAYS} 日"
            "（3年以上）で指定してください")
    return days


async def set_retention_days(store: HubStore, days: int, *, actor: str | None,
                             ip: str | None, key: bytes, key_id: str) -> None:
    """Staff set the deletion period; the change itself is audited in the same transaction."""
    check_retention(days)
    old = await retention_days(store)
    async with store.begin() as tx:
        stmt = tx.insert(audit_settings).values(name=RETENTION_SETTING, value=str(days),
                                                updated_at=now_utc(), updated_by=actor)
        await tx.conn.execute(stmt.on_conflict_do_update(
            index_elements=[audit_settings.c.name],
            set_={"value": str(days), "updated_at": now_utc(), "updated_by": actor}))
        await append(tx, actor=actor, action="setting_changed", target="audit.retention_days",
                     detail={"setting": "audit.retention_days", "old": old, "new": days},
                     ip=ip, key=key, key_id=key_id)


async def prune(store: HubStore, keys: Mapping[str, bytes], older_than: datetime, *,
                key_id: str, actor: str | None = "system", now: datetime | None = None,
                enforce_minimum: bool = True) -> int:
    """Delete the rows older than ``older_than`` and chain a checkpoint row recording the last
    deleted id and MAC, so the rest stays verifiable; return how many rows were deleted.

    Refuses a broken chain (deleting would destroy the evidence) and, unless told otherwise (the
    tests), a cut-off newer than the minimum retention. Only a prefix of the chain is deleted:
    every row from the first one at or after ``older_than`` on is kept, even if a later row has
    an earlier time (a clock step back).
    """
    current = now or now_utc()
    if enforce_minimum and older_than > current - MIN_RETENTION_DAYS * DAY:
        raise AuditError("retention_too_short",
                         "rows younger than 3 years cannot be deleted",
                         "3年を経過していない記録は削除できません")
    async with store.begin() as tx:
        await _lock(tx)
        state = await verify_tx(tx, keys)
        if not state.ok:
            raise AuditError("chain_broken", "the audit chain is broken, nothing was deleted: "
                             + state.message_en,
                             "監査ログの連鎖が壊れているため削除しませんでした: "
                             + state.message_ja)
        keep_from = (await tx.conn.execute(
            select(func.min(audit_log.c.id)).where(audit_log.c.at >= older_than))).scalar()
        through = (int(keep_from) - 1) if keep_from is not None else state.head_id
        if through is None:
            return 0
        cut = (await tx.conn.execute(
            select(audit_log.c.mac).where(audit_log.c.id == through))).first()
        if cut is None:
            return 0  # nothing older than the cut-off (or already pruned up to there)
        result = await tx.conn.execute(delete(audit_log).where(audit_log.c.id <= through))
        deleted = int(result.rowcount or 0)
        await _append_locked(
            tx, actor=actor, action=CHECKPOINT, target=None,
            detail=detail_json({"pruned_through": through, "pruned_mac": str(cut[0]),
                                "rows": deleted, "older_than": older_than.isoformat()}),
            ip=None, key=keys[key_id], key_id=key_id, at=current)
        return deleted


async def prune_expired(store: HubStore, settings: HubSettings, *,
                        now: datetime | None = None) -> int:
    """Delete what the staff-set retention period no longer covers (the daily job's call: the
    hub's scheduler or ``madoguchi hub audit prune`` from a timer)."""
    current = now or now_utc()
    days = await retention_days(store)
    return await prune(store, audit_keys(settings), current - days * DAY,
                       key_id=settings.key_id, now=current)
