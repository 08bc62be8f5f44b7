"""Search and CSV export of the audit trail, for the admin page and ``madoguchi hub audit export``.

Search pages by id (newest first, ``before_id`` for the next page): constant cost per page at any
table size, unlike OFFSET. The CSV is UTF-8 with a BOM so that Excel (the ward's admin PCs) opens
the Japanese text correctly, and cells that a spreadsheet would run as a formula are defused. An
export is itself audited (``export``) before the first row is handed out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select

from hub.audit.chain import Row, canonical_at
from hub.audit.service import READ_CHUNK, append
from hub.audit.tables import audit_log
from hub.store.store import HubStore

BOM = "\ufeff"
COLUMNS = ("id", "at_utc", "actor", "action", "target", "detail", "ip", "key_id", "prev", "mac")
MAX_PAGE = 500
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Query:
    """Filters; every one optional. ``since`` inclusive, ``until`` exclusive (aware datetimes).

    ``actor``, ``action``, ``target``: exact. ``target_text`` (the admin page's "target" box):
    the target contains it, case-insensitively, OR the target is one of ``target_ids`` (the
    staff ids whose login matched it: account rows name the account by id, staff search by
    login). Substring matching uses no index; paging newest first keeps it to one page's scan
    when matches are common, and a bounded scan of the table when they are rare.
    """

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    target_text: str | None = None
    target_ids: tuple[str, ...] = ()

    def filters(self) -> dict[str, str]:
        """The filters as text, for the ``export`` and ``personal_data_viewed`` rows' detail."""
        out = {k: v for k, v in (("actor", self.actor), ("action", self.action),
                                 ("target", self.target), ("target_text", self.target_text))
               if v}
        out.update({k: v.isoformat() for k, v in (("since", self.since), ("until", self.until))
                    if v is not None})
        return out


def _where(stmt: Select[Any], query: Query) -> Select[Any]:
    c = audit_log.c
    for column, value in ((c.actor, query.actor), (c.action, query.action),
                          (c.target, query.target)):
        if value:
            stmt = stmt.where(column == value)
    if query.target_text or query.target_ids:
        either: list[ColumnElement[bool]] = \
            [c.target.in_(query.target_ids)] if query.target_ids else []
        if query.target_text:
            either.append(c.target.icontains(query.target_text, autoescape=True))
        stmt = stmt.where(or_(*either))
    if query.since is not None:
        stmt = stmt.where(c.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(c.at < query.until)
    return stmt


def to_row(r: Any) -> Row:
    """A selected ``audit_log`` row as a ``Row``."""
    return Row(int(r.id), r.at, r.actor, r.action, r.target, r.detail, r.ip, r.key_id,
               r.prev, r.mac)


async def search(store: HubStore, query: Query, *, limit: int = 100,
                 before_id: int | None = None, after_id: int | None = None) -> list[Row]:
    """One page of matching rows, newest first. Older page: pass the page's last (smallest)
    id as ``before_id``; newer page: its first (largest) id as ``after_id`` (the rows just
    above it, still returned newest first)."""
    stmt = _where(select(audit_log), query)
    if before_id is not None:
        stmt = stmt.where(audit_log.c.id < before_id)
    if after_id is not None:
        stmt = stmt.where(audit_log.c.id > after_id)
    order = audit_log.c.id.asc() if after_id is not None and before_id is None \
        else audit_log.c.id.desc()
    stmt = stmt.order_by(order).limit(max(1, min(limit, MAX_PAGE)))
    async with store.read() as tx:
        found = [to_row(r) for r in (await tx.conn.execute(stmt)).all()]
    return sorted(found, key=lambda r: r.id, reverse=True)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_lines(rows: Sequence[Row], header: bool = False) -> str:
    """CSV text for ``rows`` (CRLF line ends, as Excel writes them), header first if asked."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_cell(v) for v in (r.id, canonical_at(r.at), r.actor, r.action,
                                             r.target, r.detail, r.ip, r.key_id, r.prev, r.mac)])
    return buf.getvalue()


async def export_csv(store: HubStore, query: Query, *, actor: str | None, ip: str | None,
                     key: bytes, key_id: str) -> AsyncIterator[str]:
    """The matching rows as CSV text chunks, oldest first, the first chunk starting with a BOM
    and the header. The export is recorded (who, the filters) before any row is produced, and
    the rows are read after it, so the export row itself is in an unfiltered export."""
    async with store.begin() as tx:
        await append(tx, actor=actor, action="export", target="audit_log",
                     detail={"filters": query.filters(), "format": "csv"}, ip=ip, key=key,
                     key_id=key_id)
    yield BOM + csv_lines([], header=True)
    after = 0
    while True:
        stmt = _where(select(audit_log), query).where(audit_log.c.id > after)
        async with store.read() as tx:
            batch = [to_row(r) for r in (await tx.conn.execute(
                stmt.order_by(audit_log.c.id).limit(READ_CHUNK))).all()]
        if batch:
            yield csv_lines(batch)
            after = batch[-1].id
        if len(batch) < READ_CHUNK:
            return
