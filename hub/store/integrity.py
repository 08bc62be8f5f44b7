"""Store operations of event integrity: quarantine, alerts, replacing a held event, enrolment.

Why apart from ``store.py``: these run only on the rare paths (a conflict, a fold failure, a
refused payload), and the staff pages will read ``alerts``/``quarantined`` without touching the
ingest's hot path. Every function takes the ingest's open transaction (``Tx``), so a quarantine
and the event that displaced it commit together.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from edge.protocol import ENVELOPE_VERSION, Envelope
from hub.store.schema import event_quarantine, events, ingest_alerts, site_configs, sites
from hub.store.store import Tx, now_utc


def _row(env: Envelope) -> dict[str, Any]:
    return {"site": env.site, "seq": env.seq, "id": env.id, "at": env.at, "day": env.day,
            "type": env.type, "data": env.data_json()}


async def stored(tx: Tx, site: str, seqs: list[int]) -> dict[int, Envelope]:
    """The stored events at ``seqs`` (for comparing a conflicting delivery with)."""
    if not seqs:
        return {}
    rows = await tx.conn.execute(
        select(events.c.seq, events.c.id, events.c.at, events.c.day, events.c.type,
               events.c.data).where(events.c.site == site, events.c.seq.in_(seqs)))
    return {int(seq): Envelope(ENVELOPE_VERSION, site, int(seq), eid, at, day, kind,
                               json.loads(data))
            for seq, eid, at, day, kind, data in rows}


async def id_stored(tx: Tx, event_id: str) -> bool:
    row = await tx.conn.execute(select(events.c.seq).where(events.c.id == event_id).limit(1))
    return row.first() is not None


async def quarantine(tx: Tx, env: Envelope, reason: str, at: datetime | None = None) -> bool:
    """Set ``env`` aside; False if this very event was already quarantined for this reason."""
    stmt = tx.insert(event_quarantine).values(
        **_row(env), reason=reason, received_at=at or now_utc()
    ).on_conflict_do_nothing().returning(event_quarantine.c.qid)
    return (await tx.conn.execute(stmt)).first() is not None


async def replace_held(tx: Tx, old: Envelope, new: Envelope, at: datetime) -> None:
    """Put ``new`` where the held (never acked, never folded) ``old`` was stored."""
    await tx.conn.execute(events.delete().where(events.c.site == old.site,
                                                events.c.seq == old.seq))
    await tx.conn.execute(events.insert().values(**_row(new), received_at=at))


async def alert(tx: Tx, site: str, reason: str, seq: int | None, detail: str,
                at: datetime | None = None) -> None:
    await tx.conn.execute(ingest_alerts.insert().values(
        site=site, reason=reason, seq=seq, detail=detail[:200], created_at=at or now_utc()))


async def alerts(tx: Tx, site: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first (for a staff page)."""
    stmt = select(ingest_alerts).order_by(ingest_alerts.c.aid.desc()).limit(limit)
    if site is not None:
        stmt = stmt.where(ingest_alerts.c.site == site)
    return [dict(r._mapping) for r in await tx.conn.execute(stmt)]


async def quarantined(tx: Tx, site: str) -> list[dict[str, Any]]:
    rows = await tx.conn.execute(select(event_quarantine).where(event_quarantine.c.site == site)
                                 .order_by(event_quarantine.c.qid))
    return [dict(r._mapping) for r in rows]


async def enrolled(tx: Tx, site: str) -> bool:
    """Known to this hub: it holds a config for the site (``hub config set`` / the config API),
    or the site row exists (enrolled before this rule, or accepted while enrolment was open)."""
    for table in (site_configs, sites):
        row = await tx.conn.execute(select(func.count()).select_from(table)
                                    .where(table.c.site == site))
        if int(row.scalar() or 0):
            return True
    return False
