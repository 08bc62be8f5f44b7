"""Recording the portal's downloads with group commit.

Every download must be recorded before its bytes are sent: the recipient's ``opened_at`` and
count (what staff follow live) and a row in the hash-chained audit trail. One transaction per
download queues every resident behind the audit chain's lock, so 100 residents downloading at
once waited seconds. Here a download adds its record to the next batch and waits for that
batch's commit; one task writes a batch at a time (one lock, one chain-head read, multi-row
statements), and what arrives meanwhile forms the next batch. The guarantee is unchanged (no
bytes before the record is committed; a failed commit refuses the downloads of its batch), and
the cost per download falls with the load.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, func, literal, update

from hub.audit.service import Entry, append_many, audit_key
from hub.notices.tables import notice_recipients, notices
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.schema import UtcDateTime

R = notice_recipients
BATCH_MAX = 500  # rows per transaction; a larger backlog is written in several


@dataclass(frozen=True)
class Download:
    recipient_id: str
    notice_id: str
    file_id: str
    at: datetime
    ip: str | None


@dataclass
class DownloadLog:
    """One per process (``Notices.downloads``)."""

    store: HubStore
    hub: HubSettings
    _pending: list[tuple[Download, asyncio.Future[None]]] = field(default_factory=list)
    _writer: asyncio.Task[None] | None = None

    async def record(self, item: Download) -> None:
        """Return once ``item`` is committed; raise what the commit raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
            try:
                await self._write([item for item, _done in batch])
            except Exception as exc:  # every waiter of the batch is refused with the cause
                for _item, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _item, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _write(self, batch: list[Download]) -> None:
        key, key_id = audit_key(self.hub)
        at = max(d.at for d in batch)
        async with self.store.begin() as tx:
            await tx.conn.execute(
                update(R).where(R.c.id == bindparam("rid")).values(
                    opened_at=func.coalesce(R.c.opened_at, bindparam("at", type_=UtcDateTime())),
                    downloads=R.c.downloads + 1, updated_at=bindparam("at")),
                [{"rid": d.recipient_id, "at": d.at} for d in batch])
            await tx.conn.execute(
                update(notices).where(notices.c.id.in_({d.notice_id for d in batch}))
                .values(updated_at=literal(at, UtcDateTime())))
            await append_many(tx, [Entry(f"resident:{d.recipient_id}", "notice_downloaded",
                                         d.file_id, {"notice": d.notice_id}, d.ip)
                                   for d in batch], key=key, key_id=key_id)
