"""Fees for forms: the payment state machine and the adapter interface for payment providers.

Why pure: money is where a duplicate or reordered callback does real harm (a fee confirmed twice,
a refund larger than the payment). The rules live in ``apply`` and ``record_refund``, which take
a ``Payment`` and return a new one or raise ``PaymentRefused`` with a stable code, so they can be
property-tested without a provider, a database or a clock.

States: ``created`` → ``pending`` (the resident was sent to the provider) → ``confirmed`` |
``failed`` | ``cancelled``; ``confirmed`` → ``refunded`` once refunds reach the amount paid
(partial refunds keep ``confirmed`` and add up in ``refunded_yen``). A callback that repeats the
current state, or an event id already applied, changes nothing (providers retry). A callback that
would move backwards or out of a final state is refused (``payment_out_of_order``). Amounts are
whole yen (``int``).

A submission with a fee is complete only once its payment was confirmed (``submission_complete``);
a later refund is recorded next to it and does not reopen it: whether the application is withdrawn
is staff's decision.

Adapters: the municipality contracts a provider (a card or PayPay gateway, Pay-easy, an LGPF
payment service). Its adapter implements ``PaymentProvider``: ``start`` returns where to send the
resident (``Redirect``) or ``Pending`` for API-style providers that confirm later;
``verify_callback`` checks the provider's signature and returns a ``PaymentEvent``;
``refund`` asks for money back. ``hub/forms/fake_pay.py`` is one for tests and the demo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class PaymentStatus(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


FINAL = frozenset({PaymentStatus.FAILED, PaymentStatus.CANCELLED, PaymentStatus.REFUNDED})
# the states a callback may move to, from each state (a repeat of the current state is a no-op)
_NEXT: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.CREATED: frozenset({PaymentStatus.PENDING, PaymentStatus.CONFIRMED,
                                      PaymentStatus.FAILED, PaymentStatus.CANCELLED}),
    PaymentStatus.PENDING: frozenset({PaymentStatus.CONFIRMED, PaymentStatus.FAILED,
                                      PaymentStatus.CANCELLED}),
    PaymentStatus.CONFIRMED: frozenset(),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.CANCELLED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}


class PaymentRefused(Exception):
    """A callback or refund the hub will not apply. Stable codes: ``payment_bad_signature``,
    ``payment_bad_callback``, ``payment_mismatch``, ``payment_amount_mismatch``,
    ``payment_out_of_order``, ``payment_refund_not_allowed``, ``payment_refund_exceeds``,
    ``payment_refund_invalid``, ``payment_provider_error``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Refund:
    id: str
    amount_yen: int
    at: datetime


@dataclass(frozen=True)
class Payment:
    """The fee of one submission. ``seen_events``: provider event ids already applied."""

    id: str
    submission_id: str
    amount_yen: int
    status: PaymentStatus = PaymentStatus.CREATED
    provider_ref: str | None = None
    confirmed_at: datetime | None = None
    refunds: tuple[Refund, ...] = ()
    seen_events: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.amount_yen, bool) or self.amount_yen <= 0:
            raise ValueError("a payment is a positive whole number of yen")

    @property
    def refunded_yen(self) -> int:
        return sum(r.amount_yen for r in self.refunds)


@dataclass(frozen=True)
class PaymentEvent:
    """What a verified provider callback says. ``status``: the state the provider reports."""

    event_id: str
    payment_id: str
    status: PaymentStatus
    amount_yen: int
    at: datetime
    provider_ref: str | None = None


@dataclass(frozen=True)
class Redirect:
    """Send the resident's browser to ``url`` (the provider's checkout page)."""

    url: str
    provider_ref: str | None = None


@dataclass(frozen=True)
class Pending:
    """The provider confirms later by callback (bank transfer, convenience store, API)."""

    provider_ref: str | None = None
    instructions: str = ""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount_yen: int
    ok: bool
    error: str | None = None


class PaymentProvider(Protocol):
    name: str

    async def start(self, payment: Payment) -> Redirect | Pending:
        """Open the payment at the provider; the hub then calls ``mark_started``."""
        ...

    async def verify_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentEvent:
        """Check the provider's signature (``PaymentRefused("payment_bad_signature")``)."""
        ...

    async def refund(self, payment: Payment, amount_yen: int) -> RefundResult: ...


def new_payment(payment_id: str, submission_id: str, amount_yen: int) -> Payment:
    return Payment(payment_id, submission_id, amount_yen)


def mark_started(p: Payment, provider_ref: str | None) -> Payment:
    """After ``start`` succeeded. A callback may already have arrived: then nothing changes."""
    if p.status is PaymentStatus.CREATED:
        return replace(p, status=PaymentStatus.PENDING, provider_ref=provider_ref)
    return p


def apply(p: Payment, e: PaymentEvent) -> Payment:
    """The payment after a verified callback; the same object when the callback is a repeat."""
    if e.payment_id != p.id:
        raise PaymentRefused("payment_mismatch")
    if e.event_id in p.seen_events:
        return p
    if e.status is PaymentStatus.REFUNDED:
        # a provider reporting a refund it made: recorded like one the hub asked for
        return record_refund(p, e.event_id, e.amount_yen, e.at)
    if e.status is p.status or (e.status is PaymentStatus.CONFIRMED
                                and p.confirmed_at is not None):
        return replace(p, seen_events=p.seen_events | {e.event_id})
    if e.status not in _NEXT[p.status]:
        raise PaymentRefused("payment_out_of_order")
    if e.status is PaymentStatus.CONFIRMED and e.amount_yen != p.amount_yen:
        raise PaymentRefused("payment_amount_mismatch")
    return replace(p, status=e.status, provider_ref=e.provider_ref or p.provider_ref,
                   confirmed_at=e.at if e.status is PaymentStatus.CONFIRMED else p.confirmed_at,
                   seen_events=p.seen_events | {e.event_id})


def record_refund(p: Payment, refund_id: str, amount_yen: int, at: datetime) -> Payment:
    """Add a refund; refunds of one payment never sum to more than was paid. Idempotent by id."""
    if any(r.id == refund_id for r in p.refunds):
        return p
    if p.status is not PaymentStatus.CONFIRMED:
        raise PaymentRefused("payment_refund_not_allowed")
    if isinstance(amount_yen, bool) or amount_yen <= 0:
        raise PaymentRefused("payment_refund_invalid")
    if p.refunded_yen + amount_yen > p.amount_yen:
        raise PaymentRefused("payment_refund_exceeds")
    refunds = (*p.refunds, Refund(refund_id, amount_yen, at))
    total = p.refunded_yen + amount_yen
    status = PaymentStatus.REFUNDED if total == p.amount_yen else p.status
    return replace(p, refunds=refunds, status=status, seen_events=p.seen_events | {refund_id})


def refundable_yen(p: Payment) -> int:
    return p.amount_yen - p.refunded_yen if p.status is PaymentStatus.CONFIRMED else 0


def submission_complete(fee_yen: int, payment: Payment | None) -> bool:
    """A submission counts as received-and-complete when its form has no fee, or when the fee's
    payment was confirmed (a later refund is recorded, it does not reopen the submission)."""
    if fee_yen == 0:
        return True
    return payment is not None and payment.confirmed_at is not None
