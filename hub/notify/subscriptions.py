"""``notify_subscriptions`` rows: register, read the live ones, mark sent, erase, re-key.

Why every update is guarded (``erased_at IS NULL``, ``sent_*_at IS NULL``): a mark is taken only
by the transaction that changes the row, so two evaluations racing (a registration and an ingest
change, or two hub processes) can never both send the same notice.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from hub.notify import crypto
from hub.store import HubStore, Tx
from hub.store.schema import notify_subscriptions as subs
from hub.store.store import now_utc

MAX_AGE = timedelta(hours=24)  # a safety net: no contact outlives a day, whatever happened


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Sub:
    id: str
    site: str
    ticket_id: str
    channel: str
    contact_ct: str
    lang: str
    ahead_n: int
    sent_ahead: bool
    sent_called: bool

    def __repr__(self) -> str:  # the ciphertext stays out of logs too
        return f"Sub(id={self.id!r}, site={self.site!r}, channel={self.channel!r})"


def _erased() -> dict[str, Any]:
    return {"contact_ct": None, "key_id": None, "erased_at": now_utc()}


async def register(store: HubStore, keys: dict[str, bytes], key_id: str, *, site: str,
                   ticket_id: str, token: str, channel: str, contact: str, lang: str,
                   ahead_n: int) -> str:
    """Store one encrypted subscription for the ticket; older ones of the ticket are erased in
    the same transaction (one subscription per ticket). An "ahead" notice already sent for the
    ticket is not sent again (re-registering must not become a way to send messages to any
    address). Returns the new id."""
    sid = uuid.uuid4().hex
    sealed = crypto.seal(keys, key_id, sid, contact)
    async with store.begin() as tx:
        sent_ahead = (await tx.conn.execute(select(func.max(subs.c.sent_ahead_at)).where(
            subs.c.site == site, subs.c.ticket_id == ticket_id))).scalar()
        await tx.conn.execute(update(subs).where(
            subs.c.site == site, subs.c.ticket_id == ticket_id,
            subs.c.erased_at.is_(None)).values(**_erased()))
        await tx.conn.execute(subs.insert().values(
            id=sid, site=site, ticket_id=ticket_id, token_hash=token_hash(token),
            channel=channel, contact_ct=sealed, key_id=key_id, lang=lang, ahead_n=ahead_n,
            sent_ahead_at=sent_ahead, created_at=now_utc()))
    return sid


async def live(tx: Tx, sites: set[str] | None = None) -> list[Sub]:
    """Subscriptions still holding a contact (of ``sites``, or all)."""
    stmt = select(subs.c.id, subs.c.site, subs.c.ticket_id, subs.c.channel, subs.c.contact_ct,
                  subs.c.lang, subs.c.ahead_n, subs.c.sent_ahead_at, subs.c.sent_called_at
                  ).where(subs.c.erased_at.is_(None), subs.c.contact_ct.is_not(None))
    if sites is not None:
        stmt = stmt.where(subs.c.site.in_(sorted(sites)))
    rows = (await tx.conn.execute(stmt.order_by(subs.c.created_at))).all()
    return [Sub(r.id, r.site, r.ticket_id, r.channel, r.contact_ct, r.lang, r.ahead_n,
                r.sent_ahead_at is not None, r.sent_called_at is not None) for r in rows]


async def mark(tx: Tx, sid: str, *, sent: str | None, erase: bool) -> bool:
    """Record that ``sent`` (ahead | called | None) is being sent and/or erase the contact.
    False: another transaction got there first (nothing to send)."""
    values: dict[str, Any] = _erased() if erase else {}
    stmt = update(subs).where(subs.c.id == sid, subs.c.erased_at.is_(None))
    if sent == "ahead":
        values["sent_ahead_at"] = now_utc()
        stmt = stmt.where(subs.c.sent_ahead_at.is_(None))
    elif sent == "called":
        values["sent_called_at"] = now_utc()
        stmt = stmt.where(subs.c.sent_called_at.is_(None))
    result = await tx.conn.execute(stmt.values(**values))
    return bool(result.rowcount)


async def erase_stale(tx: Tx, now: datetime | None = None) -> int:
    """Erase contacts older than ``MAX_AGE`` (their day is over, whatever the folds say)."""
    cutoff = (now or now_utc()) - MAX_AGE
    result = await tx.conn.execute(update(subs).where(
        subs.c.erased_at.is_(None), subs.c.created_at < cutoff).values(**_erased()))
    return int(result.rowcount or 0)


async def rotate(store: HubStore, keys: dict[str, bytes], key_id: str,
                 batch: int = 500) -> tuple[int, int]:
    """Re-seal every live contact not sealed with ``key_id``. Returns (re-sealed, unreadable):
    an unreadable row (its key is gone) is erased, since nobody can ever use it again."""
    done = lost = 0
    while True:
        async with store.begin() as tx:
            rows = (await tx.conn.execute(
                select(subs.c.id, subs.c.contact_ct).where(
                    subs.c.erased_at.is_(None), subs.c.contact_ct.is_not(None),
                    or_(subs.c.key_id.is_(None), subs.c.key_id != key_id))
                .limit(batch))).all()
            if not rows:
                return done, lost
            for sid, sealed in rows:
                try:
                    new = crypto.reseal(keys, key_id, sid, sealed)
                except crypto.CryptoError:
                    await tx.conn.execute(update(subs).where(subs.c.id == sid)
                                          .values(**_erased()))
                    lost += 1
                    continue
                await tx.conn.execute(update(subs).where(
                    and_(subs.c.id == sid, subs.c.contact_ct == sealed))
                    .values(contact_ct=new, key_id=key_id))
                done += 1
