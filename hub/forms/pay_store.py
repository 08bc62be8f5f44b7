"""Fees of submissions in SQL (``forms_payments``): the rules of ``hub.forms.payment`` applied to
stored rows (no aiohttp here).

Why conditional updates: a provider retries its callbacks and may send two at once. Each change
reads the row (``FOR UPDATE`` on PostgreSQL), applies the pure rule and writes only ``WHERE`` the
row is still as read (status and the events seen); when another transaction got there first the
change is read and applied again, so a repeat finds its event already seen and changes nothing.
The submission itself moves ``awaiting_payment → received`` with a conditional update too, in the
same transaction as the payment's confirmation, its history row, the webhook outbox row and the
audit row, so a fee is never confirmed twice and a business system never hears of an unpaid
application.

The resident's link to a submission's payment (``/f/{form}/pay/{token}``) is a signed value:
the submission id and an HMAC of it under a key derived for this purpose, so it cannot be
guessed from anything the resident sees, and nothing is stored for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from hub.auth.service import audit_in
from hub.forms import deliveries
from hub.forms.context import Forms
from hub.forms.payment import (
    FINAL,
    Payment,
    PaymentEvent,
    PaymentRefused,
    PaymentStatus,
    Refund,
    apply,
    mark_started,
    record_refund,
    refundable_yen,
)
from hub.forms.records import new_id, open_field, open_json, seal_field
from hub.forms.review import audit_tag
from hub.forms.tables import form_history, form_payments, form_submissions, forms
from hub.store.store import Tx
from hub.webticket.pow import derive_key

AWAITING = "awaiting_payment"
TRIES = 4  # re-reads when another transaction changed the row meanwhile


class PaymentGone(Exception):
    """No such payment (never made, or its submission was deleted)."""


# --- the resident's link ----------------------------------------------------------------------

def _mac(ctx: Forms, sid: str) -> str:
    key = derive_key(ctx.hub.key, "forms-pay")
    digest = hmac.new(key, sid.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode()


def pay_token(ctx: Forms, sid: str) -> str:
    """``<submission id>.<HMAC>``: the resident's link to the fee of one submission."""
    return f"{sid}.{_mac(ctx, sid)}"


def sid_of(ctx: Forms, token: str) -> str | None:
    """The submission of a token, or None when it was not made here."""
    sid, dot, mac = token.partition(".")
    if not dot or not sid or len(token) > 100:
        return None
    return sid if hmac.compare_digest(_mac(ctx, sid).encode(), mac.encode("utf-8",
                                                                            "replace")) else None


# --- rows ---------------------------------------------------------------------------------

def _refunds_json(p: Payment) -> str:
    return json.dumps([{"id": r.id, "amount_yen": r.amount_yen, "at": r.at.isoformat()}
                       for r in p.refunds])


def of_row(row: Any) -> Payment:
    refunds = tuple(Refund(str(r["id"]), int(r["amount_yen"]), datetime.fromisoformat(r["at"]))
                    for r in json.loads(row.refunds))
    return Payment(str(row.id), str(row.submission_id), int(row.amount_yen),
                   PaymentStatus(row.status), row.provider_ref, row.confirmed_at, refunds,
                   frozenset(json.loads(row.seen_events)))


def _values(p: Payment, now: datetime) -> dict[str, Any]:
    return {"status": p.status.value, "provider_ref": p.provider_ref,
            "confirmed_at": p.confirmed_at, "refunds": _refunds_json(p),
            "seen_events": json.dumps(sorted(p.seen_events)), "updated_at": now}


async def insert_payment(tx: Tx, sid: str, form_id: str, amount_yen: int, provider: str,
                         now: datetime) -> Payment:
    """A new attempt, in the caller's transaction (the partial unique index refuses a second
    open one)."""
    p = Payment(new_id(), sid, amount_yen)
    await tx.conn.execute(insert(form_payments).values(
        id=p.id, submission_id=sid, form_id=form_id, amount_yen=amount_yen,
        provider=provider[:32], created_at=now, **_values(p, now)))
    return p


async def attempts(ctx: Forms, sid: str) -> list[Any]:
    """Every attempt of a submission, oldest first."""
    async with ctx.store.read() as tx:
        return list((await tx.conn.execute(select(form_payments).where(
            form_payments.c.submission_id == sid).order_by(
            form_payments.c.created_at, form_payments.c.id))).all())


async def latest(ctx: Forms, sid: str) -> Any:
    """The open attempt, else the newest one (None: the submission has no fee)."""
    rows = await attempts(ctx, sid)
    open_ = [r for r in rows if PaymentStatus(r.status) not in FINAL]
    return open_[-1] if open_ else (rows[-1] if rows else None)


async def _locked(tx: Tx, payment_id: str) -> Any:
    q = select(form_payments).where(form_payments.c.id == payment_id)
    return (await tx.conn.execute(q.with_for_update())).first()


async def _write(tx: Tx, before: Payment, after: Payment, now: datetime) -> bool:
    """Store ``after`` if the row is still ``before``; False when another transaction won."""
    done = await tx.conn.execute(update(form_payments).where(
        form_payments.c.id == before.id, form_payments.c.status == before.status.value,
        form_payments.c.seen_events == json.dumps(sorted(before.seen_events)),
        form_payments.c.refunds == _refunds_json(before)).values(**_values(after, now)))
    return bool(done.rowcount == 1)


async def started(ctx: Forms, payment_id: str, provider_ref: str | None) -> None:
    """After ``provider.start``: created → pending (a callback that came first wins)."""
    for _ in range(TRIES):
        async with ctx.store.begin() as tx:
            row = await _locked(tx, payment_id)
            if row is None:
                return
            before = of_row(row)
            after = mark_started(before, provider_ref)
            if after is before and before.status is PaymentStatus.PENDING and provider_ref:
                after = replace(before, provider_ref=provider_ref)  # opened again
            if after == before or await _write(tx, before, after, ctx.clock()):
                return


async def retry(ctx: Forms, sid: str, provider: str) -> bool:
    """A new attempt after a failed or cancelled one; False when there is an open one or the
    submission no longer waits for its fee."""
    async with ctx.store.begin() as tx:
        sub = (await tx.conn.execute(select(form_submissions.c.status,
                                            form_submissions.c.form_id).where(
            form_submissions.c.id == sid))).first()
        if sub is None or sub.status != AWAITING:
            return False
        rows = (await tx.conn.execute(select(form_payments).where(
            form_payments.c.submission_id == sid).with_for_update())).all()
        if not rows or any(PaymentStatus(r.status) not in FINAL for r in rows):
            return False
        amount = int(max(rows, key=lambda r: (r.created_at, r.id)).amount_yen)
        await insert_payment(tx, sid, str(sub.form_id), amount, provider, ctx.clock())
    return True


# --- callbacks ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    payment: Payment
    changed: bool
    # the submission that became complete with this callback (mails go after the commit)
    confirmed: Any = None


async def apply_event(ctx: Forms, event: PaymentEvent) -> Applied:
    """A verified callback, stored; ``PaymentRefused`` (out of order, wrong amount) and
    ``PaymentGone`` go to the caller. Idempotent: a repeat returns ``changed=False``."""
    for _ in range(TRIES):
        async with ctx.store.begin() as tx:
            row = await _locked(tx, event.payment_id)
            if row is None:
                raise PaymentGone
            before = of_row(row)
            after = apply(before, event)
            if after is before:
                return Applied(before, False)
            now = ctx.clock()
            if not await _write(tx, before, after, now):
                continue
            sub = None
            if after.status is PaymentStatus.CONFIRMED and before.confirmed_at is None:
                sub = await _confirm(tx, ctx, str(row.form_id), after, now)
            elif after.status is PaymentStatus.REFUNDED:
                await _mark(tx, after.submission_id, "refunded", now)
            # a new event id that repeats the state is recorded, but it is no change
            changed = after.status is not before.status or after.refunds != before.refunds
            return Applied(after, changed, sub)
    raise PaymentRefused("payment_out_of_order")  # changed under us on every try


async def _mark(tx: Tx, sid: str, payment: str, now: datetime) -> None:
    await tx.conn.execute(update(form_submissions).where(form_submissions.c.id == sid).values(
        payment=payment, updated_at=now))


def _payload(sub: Any, answers: Any, now: datetime) -> dict[str, Any]:
    return {"reference": str(sub.reference), "form_version": int(sub.version),
            "status": "received", "channel": str(sub.channel),
            "submitted_at": now.isoformat(), "answers": answers}


async def _confirm(tx: Tx, ctx: Forms, form_id: str, p: Payment, now: datetime) -> Any:
    """awaiting_payment → received with everything a submission writes when it arrives; the
    submission row (for the mails) or None when it was not waiting (a late confirmation of a
    submission already received is only recorded on the payment)."""
    sid = p.submission_id
    moved = await tx.conn.execute(update(form_submissions).where(
        form_submissions.c.id == sid, form_submissions.c.status == AWAITING).values(
        status="received", payment="confirmed", updated_at=now, submitted_at=now))
    if moved.rowcount != 1:
        await _mark(tx, sid, "confirmed", now)
        return None
    sub = (await tx.conn.execute(select(form_submissions).where(
        form_submissions.c.id == sid))).one()
    hid = new_id()
    await tx.conn.execute(insert(form_history).values(
        id=hid, submission_id=sid, at=now, actor="resident", status="received",
        comment=seal_field(ctx, hid, "comment", ""), to_resident=0))
    webhook_url = (await tx.conn.execute(select(forms.c.webhook_url).where(
        forms.c.id == form_id))).scalar()
    if webhook_url:
        answers = open_json(ctx, sid, "answers", sub.answers)
        await deliveries.enqueue(tx, ctx, form_id, sid, "submission.received",
                                 _payload(sub, answers, now), now)
    await audit_in(tx, ctx.hub, actor="system", action="form_payment_confirmed",
                   target=form_id, detail={"submission": audit_tag(ctx, sid),
                                           "amount_yen": p.amount_yen})
    return sub


# --- refunds ------------------------------------------------------------------------------

async def refund(ctx: Forms, payment_id: str, amount_yen: int, actor: str,
                 ip: str | None) -> Payment:
    """Money back through the provider, then recorded; ``PaymentRefused`` with the pure
    rule's code (``payment_refund_exceeds`` before the provider is asked)."""
    provider = ctx.payments
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(form_payments).where(
            form_payments.c.id == payment_id))).first()
    if row is None:
        raise PaymentGone
    current = of_row(row)
    record_refund(current, "check", amount_yen, ctx.clock())  # refuses before any money moves
    if provider is None or provider.name != row.provider:
        raise PaymentRefused("payment_provider_error")
    got = await provider.refund(current, amount_yen)
    if not got.ok:
        raise PaymentRefused("payment_refund_exceeds" if got.error == "refund_exceeds"
                             else "payment_provider_error")
    for _ in range(TRIES):
        async with ctx.store.begin() as tx:
            fresh = await _locked(tx, payment_id)
            if fresh is None:
                raise PaymentGone
            before = of_row(fresh)
            now = ctx.clock()
            after = record_refund(before, got.refund_id, got.amount_yen, now)
            if after is before:
                return before
            if not await _write(tx, before, after, now):
                continue
            if after.status is PaymentStatus.REFUNDED:
                await _mark(tx, after.submission_id, "refunded", now)
            await audit_in(tx, ctx.hub, actor=actor, action="form_payment_refunded",
                           target=str(fresh.form_id), ip=ip,
                           detail={"submission": audit_tag(ctx, after.submission_id),
                                   "amount_yen": got.amount_yen,
                                   "refunded_yen": after.refunded_yen})
            return after
    raise PaymentRefused("payment_out_of_order")


def open_contact(ctx: Forms, sub: Any) -> str:
    """The resident's address for the receipt ("" none)."""
    return open_field(ctx, str(sub.id), "contact", sub.contact)


def summary(row: Any) -> Mapping[str, Any]:
    """One attempt as the staff's page shows it."""
    p = of_row(row)
    return {"id": p.id, "status": p.status.value, "amount_yen": p.amount_yen,
            "provider": str(row.provider), "provider_ref": p.provider_ref or "",
            "created_at": row.created_at, "confirmed_at": p.confirmed_at,
            "refunds": list(p.refunds), "refunded_yen": p.refunded_yen,
            "refundable_yen": refundable_yen(p)}
