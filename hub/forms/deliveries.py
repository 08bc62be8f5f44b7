"""The webhook outbox in SQL (``forms_webhook_deliveries``) and its delivery round.

``SqlDeliveries`` keeps the semantics of ``hub.forms.webhook.MemoryDeliveries``: ``claim_due``
is ``webhook.CLAIM_SQL`` on PostgreSQL (``FOR UPDATE SKIP LOCKED``: several hub processes never
claim one row twice) and the same statement without the lock clause on SQLite (one writer at a
time, so the UPDATE is already exclusive); ``record`` is conditional on the attempt it claimed,
so a late answer from an expired lease cannot overwrite a newer one.

Bodies carry answers, so they are sealed at rest (bound to the delivery id); endpoints come
from ``forms_forms`` (``webhook_url`` and the sealed list of secrets, newest first).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update

from hub.forms import webhook
from hub.forms.context import Forms
from hub.forms.records import open_field, open_json, seal_field
from hub.forms.tables import form_deliveries, forms
from hub.store.schema import UtcDateTime
from hub.store.store import Tx

_SQLITE_CLAIM = webhook.CLAIM_SQL.replace(" FOR UPDATE SKIP LOCKED", "")


async def enqueue(tx: Tx, ctx: Forms, form_id: str, submission_id: str, event_type: str,
                  payload: Mapping[str, Any], now: datetime) -> str:
    """Insert one event in the caller's transaction (the outbox); returns its ``Webhook-Id``."""
    # the id column is 32 characters: "msg_" and 28 hex digits (112 random bits)
    d = webhook.new_delivery(form_id, submission_id, event_type, payload, now,
                             delivery_id="msg_" + secrets.token_hex(14))
    await tx.conn.execute(insert(form_deliveries).values(
        id=d.id, form_id=form_id, submission_id=submission_id, event_type=event_type,
        body=seal_field(ctx, d.id, "body", d.body.decode()), created_at=now, attempts=0,
        next_at=now, status="pending", last_error="", delivered_at=None))
    return d.id


class SqlDeliveries:
    """``webhook.DeliveryRepo`` over the module's table."""

    def __init__(self, ctx: Forms) -> None:
        self.ctx = ctx

    def _delivery(self, row: Any) -> webhook.Delivery:
        body = open_field(self.ctx, str(row.id), "body", row.body).encode()
        return webhook.Delivery(
            id=str(row.id), form_id=str(row.form_id), submission_id=str(row.submission_id),
            event_type=str(row.event_type), body=body, created_at=row.created_at,
            next_at=row.next_at, attempts=int(row.attempts), status=webhook.Status(row.status),
            last_error=row.last_error or None, delivered_at=row.delivered_at)

    async def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[webhook.Delivery]:
        async with self.ctx.store.begin() as tx:
            sql = webhook.CLAIM_SQL if tx.dialect == "postgresql" else _SQLITE_CLAIM
            stmt = text(sql).bindparams(
                bindparam("now", type_=UtcDateTime()),
                bindparam("lease_until", type_=UtcDateTime()),
                bindparam("limit")).columns(*form_deliveries.c)
            rows = (await tx.conn.execute(stmt, {
                "now": now, "lease_until": now + timedelta(seconds=lease_s),
                "limit": limit})).all()
        return sorted((self._delivery(r) for r in rows), key=lambda d: d.next_at)

    async def record(self, delivery: webhook.Delivery) -> bool:
        async with self.ctx.store.begin() as tx:
            done = await tx.conn.execute(update(form_deliveries).where(
                form_deliveries.c.id == delivery.id,
                form_deliveries.c.attempts == delivery.attempts,
                form_deliveries.c.status == "pending").values(
                status=delivery.status.value, next_at=delivery.next_at,
                last_error=delivery.last_error or "", delivered_at=delivery.delivered_at))
            return bool(done.rowcount == 1)

    async def endpoint(self, form_id: str) -> webhook.Endpoint | None:
        """The form's webhook now (None: removed since: a permanent failure)."""
        async with self.ctx.store.read() as tx:
            row = (await tx.conn.execute(select(forms.c.webhook_url, forms.c.webhook_secrets)
                                         .where(forms.c.id == form_id))).first()
        if row is None or not row.webhook_url or not row.webhook_secrets:
            return None
        listed = open_json(self.ctx, form_id, "webhook_secrets", row.webhook_secrets)
        return webhook.Endpoint(str(row.webhook_url), tuple(str(s) for s in listed or ()))


def seal_secrets(ctx: Forms, form_id: str, secrets: list[str]) -> str:
    """The ``webhook_secrets`` column for ``secrets`` (newest first)."""
    return seal_field(ctx, form_id, "webhook_secrets", json.dumps(secrets))


async def deliver_round(ctx: Forms, repo: SqlDeliveries,
                        sender: webhook.SendFn) -> list[webhook.Delivery]:
    """One round at ``ctx.clock()`` (the loop in ``hub.forms.jobs`` calls it every few
    seconds)."""
    return await webhook.deliver_due(repo, sender, ctx.clock())


def sender_for(ctx: Forms, repo: SqlDeliveries) -> webhook.HttpSender:
    return webhook.HttpSender(repo.endpoint,
                              webhook.UrlPolicy(allow_private=ctx.settings.webhook_allow_private))
