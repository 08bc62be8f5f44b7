"""Form fees: the payment state machine (property-tested against any callback sequence) and the
fake provider's full round trip — checkout page, redirect, signed callback, refunds — over real
aiohttp servers, with forged callbacks refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.fake_pay import FakePayProvider, make_app
from hub.forms.payment import (
    Payment,
    PaymentEvent,
    PaymentRefused,
    PaymentStatus,
    Redirect,
    apply,
    mark_started,
    new_payment,
    record_refund,
    refundable_yen,
    submission_complete,
)
from hub.forms.webhook import new_secret, signed_headers

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
FEE = 1200
S = PaymentStatus


def ev(event_id: str, status: PaymentStatus, amount: int = FEE, pid: str = "p1") -> PaymentEvent:
    return PaymentEvent(event_id, pid, status, amount, T0, "ref1")


def refused(code: str, fn: object, *args: object) -> None:
    with pytest.raises(PaymentRefused) as err:
        fn(*args)  # type: ignore[operator]
    assert err.value.code == code


def test_happy_path_and_refunds() -> None:
    p = mark_started(new_payment("p1", "s1", FEE), "ref1")
    assert p.status is S.PENDING
    assert not submission_complete(FEE, p)
    p = apply(p, ev("e1", S.CONFIRMED))
    assert p.status is S.CONFIRMED
    assert submission_complete(FEE, p)
    assert apply(p, ev("e1", S.CONFIRMED)) is p  # the same callback again
    assert apply(p, ev("e2", S.CONFIRMED)).confirmed_at == p.confirmed_at  # a resend
    p = record_refund(p, "r1", 200, T0)
    assert record_refund(p, "r1", 200, T0) is p
    assert (p.status, p.refunded_yen, refundable_yen(p)) == (S.CONFIRMED, 200, 1000)
    refused("payment_refund_exceeds", record_refund, p, "r2", 1001, T0)
    refused("payment_refund_invalid", record_refund, p, "r2", 0, T0)
    p = record_refund(p, "r2", 1000, T0)
    assert (p.status, p.refunded_yen, refundable_yen(p)) == (S.REFUNDED, FEE, 0)
    assert submission_complete(FEE, p)  # a refund is recorded; it does not reopen
    refused("payment_refund_not_allowed", record_refund, p, "r3", 1, T0)


def test_refusals() -> None:
    p = mark_started(new_payment("p1", "s1", FEE), "ref1")
    refused("payment_mismatch", apply, p, ev("e1", S.CONFIRMED, pid="p2"))
    refused("payment_amount_mismatch", apply, p, ev("e1", S.CONFIRMED, amount=FEE - 1))
    refused("payment_refund_not_allowed", record_refund, p, "r1", 100, T0)
    cancelled = apply(p, ev("e1", S.CANCELLED))
    refused("payment_out_of_order", apply, cancelled, ev("e2", S.CONFIRMED))
    confirmed = apply(p, ev("e1", S.CONFIRMED))
    refused("payment_out_of_order", apply, confirmed, ev("e2", S.PENDING))
    refused("payment_out_of_order", apply, confirmed, ev("e3", S.FAILED))
    assert submission_complete(0, None)
    assert not submission_complete(FEE, None)
    with pytest.raises(ValueError, match="yen"):
        new_payment("p1", "s1", 0)


@dataclass
class Step:
    kind: str  # "event" | "refund"
    event_id: str
    status: PaymentStatus
    amount: int


steps = st.builds(Step, st.sampled_from(["event", "event", "refund"]),
                  st.sampled_from([f"e{n}" for n in range(6)]), st.sampled_from(list(S)),
                  st.sampled_from([FEE, FEE - 1, 1, 300, 600, 900, FEE + 1]))


@dataclass
class Oracle:
    confirms: int = 0
    paid: bool = False
    final: PaymentStatus | None = None
    seen: set[str] = field(default_factory=set)


@given(st.lists(steps, max_size=30))
def test_any_callback_sequence(seq: list[Step]) -> None:
    """Never confirmed twice, never refunded more than paid, final states stay final, and the
    submission is complete iff the fee's payment was confirmed."""
    p = new_payment("p1", "s1", FEE)
    o = Oracle()
    for step in seq:
        before = p
        try:
            if step.kind == "refund":
                p = record_refund(p, step.event_id, step.amount, T0)
            else:
                p = apply(p, PaymentEvent(step.event_id, "p1", step.status, step.amount, T0))
        except PaymentRefused:
            assert p is before
            continue
        if before.confirmed_at is None and p.confirmed_at is not None:
            o.confirms += 1
            assert step.amount == FEE
        assert before.confirmed_at in (None, p.confirmed_at)
        if before.status in (S.FAILED, S.CANCELLED, S.REFUNDED):
            assert p.status is before.status
        if p.refunds != before.refunds:
            assert before.status is S.CONFIRMED
        assert 0 <= p.refunded_yen <= FEE
        assert (p.status is S.REFUNDED) == (p.refunded_yen == FEE)
        assert len({r.id for r in p.refunds}) == len(p.refunds)
    assert o.confirms <= 1
    assert submission_complete(FEE, p) == (o.confirms == 1)
    assert submission_complete(0, p)


# ---------------------------------------------------------------- fake provider round trip

API_KEY = "test-api-key"


@dataclass
class Hub:
    """The hub's side for the test: the callback route and the return page, over the adapter."""

    provider: FakePayProvider | None = None
    payments: dict[str, Payment] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[Hub, TestServer, TestServer, str]]:
    secret = new_secret()
    fake = TestServer(make_app(API_KEY, secret))
    hub = Hub()

    async def callback(request: web.Request) -> web.Response:
        assert hub.provider is not None
        try:
            event = await hub.provider.verify_callback(request.headers, await request.read())
            hub.payments[event.payment_id] = apply(hub.payments[event.payment_id], event)
        except PaymentRefused as exc:
            hub.refusals.append(exc.code)
            return web.json_response({"error": {"code": exc.code}}, status=400)
        return web.json_response({"ok": True})

    async def returned(request: web.Request) -> web.Response:
        p = hub.payments[request.match_info["pid"]]
        return web.Response(text=f"status={p.status.value}")

    hub_app = web.Application()
    hub_app.router.add_post("/forms/pay/callback", callback)
    hub_app.router.add_get("/forms/pay/return/{pid}", returned)
    hub_server = TestServer(hub_app)
    await fake.start_server()
    await hub_server.start_server()
    hub.provider = FakePayProvider(str(fake.make_url("/")), API_KEY, secret,
                                   str(hub_server.make_url("/forms/pay/callback")),
                                   str(hub_server.make_url("/forms/pay/return/")) + "{payment_id}")
    yield hub, fake, hub_server, secret
    await hub_server.close()
    await fake.close()


async def begin(hub: Hub, pid: str) -> Redirect:
    assert hub.provider is not None
    hub.payments[pid] = new_payment(pid, "s-" + pid, FEE)
    start = await hub.provider.start(hub.payments[pid])
    assert isinstance(start, Redirect)
    hub.payments[pid] = mark_started(hub.payments[pid], start.provider_ref)
    return start


async def test_redirect_callback_and_refund_round_trip(
        setup: tuple[Hub, TestServer, TestServer, str]) -> None:
    hub, _fake, _hub_server, _secret = setup
    assert hub.provider is not None
    start = await begin(hub, "p1")
    async with aiohttp.ClientSession() as browser:
        async with browser.get(start.url) as page:
            text = await page.text()
        for words in ("支払う / Pay", "キャンセル / Cancel", "テスト用", "1,200円"):
            assert words in text
        assert hub.payments["p1"].status is S.PENDING
        async with browser.post(start.url + "/pay", allow_redirects=False) as paid:
            assert paid.status == 303
            back = paid.headers["Location"]
        assert back.endswith("/forms/pay/return/p1")
        async with browser.get(back) as page:
            assert await page.text() == "status=confirmed"
    p = hub.payments["p1"]
    assert submission_complete(FEE, p)
    assert hub.refusals == []

    result = await hub.provider.refund(p, 500)
    assert result.ok
    p = record_refund(p, result.refund_id, result.amount_yen, T0)
    too_much = await hub.provider.refund(p, refundable_yen(p) + 1)
    assert (too_much.ok, too_much.error) == (False, "refund_exceeds")
    rest = await hub.provider.refund(p, refundable_yen(p))
    p = record_refund(p, rest.refund_id, rest.amount_yen, T0)
    assert (p.status, p.refunded_yen) == (S.REFUNDED, FEE)


async def test_cancel_leaves_submission_incomplete(
        setup: tuple[Hub, TestServer, TestServer, str]) -> None:
    hub, *_ = setup
    start = await begin(hub, "p2")
    async with aiohttp.ClientSession() as browser, \
            browser.post(start.url + "/cancel", allow_redirects=False) as resp:
        assert resp.status == 303
    assert hub.payments["p2"].status is S.CANCELLED
    assert not submission_complete(FEE, hub.payments["p2"])
    assert hub.provider is not None
    assert not (await hub.provider.refund(hub.payments["p2"], 1)).ok


async def test_forged_callbacks_are_refused(
        setup: tuple[Hub, TestServer, TestServer, str]) -> None:
    hub, fake, hub_server, secret = setup
    await begin(hub, "p3")
    body = json.dumps({"event_id": "evt_x", "payment_id": "p3", "ref": "x",
                       "status": "confirmed", "amount_yen": FEE,
                       "at": T0.isoformat()}).encode()
    now = datetime.now(UTC)
    forged = [
        (signed_headers(new_secret(), "evt_x", now, body), body),  # someone else's key
        (signed_headers(secret, "evt_x", now, body), body.replace(b"1200", b"12")),  # tampered
        (signed_headers(secret, "evt_x", now - timedelta(minutes=10), body), body),  # replayed
        ({}, body),  # unsigned
    ]
    async with aiohttp.ClientSession() as client:
        for headers, data in forged:
            async with client.post(hub_server.make_url("/forms/pay/callback"), data=data,
                                   headers=headers) as resp:
                assert resp.status == 400
        async with client.post(fake.make_url("/api/refunds"), json={"ref": "x"},
                               headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
        async with client.post(hub_server.make_url("/forms/pay/callback"), data=body,
                               headers=signed_headers(secret, "evt_x", now, body)) as resp:
            assert resp.status == 200  # the control: correctly signed, accepted
    assert hub.refusals == ["payment_bad_signature"] * 4
    assert hub.payments["p3"].status is S.CONFIRMED
