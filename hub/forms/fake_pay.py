"""テスト用 / for testing only: a fake payment provider and its adapter.

Why: the demo and the tests need the whole fee flow (redirect to a checkout page, a signed
callback, a refund) without a contract with a real provider. No money moves; every page says so.

The fake (``make_app``) speaks a small API, the adapter (``FakePayProvider``) implements
``hub.forms.payment.PaymentProvider`` against it:

* ``POST /api/payments`` (``Authorization: Bearer <api key>``), JSON ``{payment_id, amount_yen,
  return_url, callback_url}`` → ``{ref, checkout_url}``.
* ``GET /checkout/{ref}``: the resident's page, ja/en, buttons 支払う / Pay and キャンセル / Cancel;
  each POSTs, the fake then POSTs a signed callback to ``callback_url`` and redirects (303) the
  browser to ``return_url``.
* Callbacks are signed like the hub's own webhooks (``hub.forms.webhook``: Standard Webhooks,
  HMAC-SHA256), body ``{event_id, payment_id, ref, status, amount_yen, at}``.
* ``POST /api/refunds`` (bearer), ``{ref, amount_yen}`` → ``{refund_id, amount_yen}``, or 409
  ``{"error": {"code": "refund_exceeds"}}`` when more than the remaining amount is asked.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from hub.forms.payment import (
    Payment,
    PaymentEvent,
    PaymentRefused,
    PaymentStatus,
    Redirect,
    RefundResult,
)
from hub.forms.webhook import WebhookRefused, signed_headers, verify

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Checkout:
    ref: str
    payment_id: str
    amount_yen: int
    return_url: str
    callback_url: str
    state: str = "open"  # open | paid | cancelled
    refunded_yen: int = 0


@dataclass
class FakePayState:
    api_key: str
    secret: str
    now: Now
    checkouts: dict[str, Checkout]
    callbacks_failed: int = 0


FAKE_PAY: web.AppKey[FakePayState] = web.AppKey("fake_pay", FakePayState)

_PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>テスト用決済 / Test payment</title>
<link rel="icon" href="data:,">
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;
padding:0 1rem;line-height:1.7}}
.test{{border:3px solid #b00;padding:.5rem 1rem;font-weight:bold}}
button{{font-size:1.1rem;padding:.6rem 1.4rem;margin:.5rem .5rem 0 0}}</style></head>
<body><p class="test">【テスト用】実際のお金は動きません。<br>
<span lang="en">For testing only — no money is moved.</span></p>
<h1>お支払い <span lang="en">/ Payment</span></h1>
<p>金額 <span lang="en">/ Amount</span>:
<strong>{amount}円 <span lang="en">(JPY)</span></strong></p>
{status}
<form method="post" action="/checkout/{ref}/pay"><button type="submit">支払う / Pay</button></form>
<form method="post" action="/checkout/{ref}/cancel">
<button type="submit">キャンセル / Cancel</button></form>
</body></html>"""


def _authorised(request: web.Request) -> bool:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
    return hmac.compare_digest(given, request.app[FAKE_PAY].api_key.encode())


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": code}}, status=status)


async def _create(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _error(401, "unauthorised")
    try:
        data = await request.json()
        amount = data["amount_yen"]
        if type(amount) is not int or amount <= 0:
            raise ValueError
        checkout = Checkout("fp_" + secrets.token_hex(8), str(data["payment_id"]), amount,
                            str(data["return_url"]), str(data["callback_url"]))
    except (ValueError, KeyError, TypeError):
        return _error(400, "bad_request")
    request.app[FAKE_PAY].checkouts[checkout.ref] = checkout
    url = request.url.with_path(f"/checkout/{checkout.ref}").with_query(None)
    return web.json_response({"ref": checkout.ref, "checkout_url": str(url)}, status=201)


def _checkout(request: web.Request) -> Checkout:
    found = request.app[FAKE_PAY].checkouts.get(request.match_info["ref"])
    if found is None:
        raise web.HTTPNotFound(text="不明な支払いです / unknown payment")
    return found


async def _page(request: web.Request) -> web.Response:
    c = _checkout(request)
    status = {"open": "", "paid": "<p>支払い済みです / Already paid.</p>",
              "cancelled": "<p>キャンセルされました / Cancelled.</p>"}[c.state]
    body = _PAGE.format(amount=f"{c.amount_yen:,}", status=status, ref=html.escape(c.ref))
    return web.Response(text=body, content_type="text/html")


async def _send_callback(state: FakePayState, c: Checkout, status: PaymentStatus) -> None:
    """Three quick tries, like a real provider's retries (shortened)."""
    at, event_id = state.now(), "evt_" + secrets.token_hex(8)
    body = json.dumps({"event_id": event_id, "payment_id": c.payment_id,
                       "ref": c.ref, "status": status.value, "amount_yen": c.amount_yen,
                       "at": at.isoformat()}).encode()
    for attempt in range(3):
        try:
            headers = signed_headers(state.secret, event_id, state.now(), body)
            async with aiohttp.ClientSession() as session, \
                    session.post(c.callback_url, data=body, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status // 100 == 2:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.2 * (attempt + 1))
    state.callbacks_failed += 1


async def _finish(request: web.Request, outcome: str) -> web.Response:
    c = _checkout(request)
    state = request.app[FAKE_PAY]
    if c.state == "open":
        c.state = outcome
        status = PaymentStatus.CONFIRMED if outcome == "paid" else PaymentStatus.CANCELLED
        await _send_callback(state, c, status)
    raise web.HTTPSeeOther(c.return_url)


async def _pay(request: web.Request) -> web.Response:
    return await _finish(request, "paid")


async def _cancel(request: web.Request) -> web.Response:
    return await _finish(request, "cancelled")


async def _refund(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _error(401, "unauthorised")
    try:
        data = await request.json()
        c = request.app[FAKE_PAY].checkouts[str(data["ref"])]
        amount = data["amount_yen"]
        if type(amount) is not int or amount <= 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _error(400, "bad_request")
    if c.state != "paid":
        return _error(409, "not_paid")
    if c.refunded_yen + amount > c.amount_yen:
        return _error(409, "refund_exceeds")
    c.refunded_yen += amount
    return web.json_response({"refund_id": "re_" + secrets.token_hex(8), "amount_yen": amount})


def make_app(api_key: str, secret: str, now: Now = _utcnow) -> web.Application:
    """The fake provider. ``secret``: a ``whsec_`` secret shared with the hub's adapter."""
    app = web.Application()
    app[FAKE_PAY] = FakePayState(api_key, secret, now, {})
    app.router.add_post("/api/payments", _create)
    app.router.add_get("/checkout/{ref}", _page)
    app.router.add_post("/checkout/{ref}/pay", _pay)
    app.router.add_post("/checkout/{ref}/cancel", _cancel)
    app.router.add_post("/api/refunds", _refund)
    return app


class FakePayProvider:
    """The hub's adapter for the fake. ``return_url`` may contain ``{payment_id}``."""

    name = "fake"

    def __init__(self, base_url: str, api_key: str, secret: str, callback_url: str,
                 return_url: str, now: Now = _utcnow) -> None:
        self.base_url, self.api_key, self.secret = base_url.rstrip("/"), api_key, secret
        self.callback_url, self.return_url, self.now = callback_url, return_url, now

    async def _post(self, path: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.post(self.base_url + path, json=data, headers=headers) as resp:
            answer: dict[str, Any] = await resp.json()
            return resp.status, answer

    async def start(self, payment: Payment) -> Redirect:
        status, answer = await self._post("/api/payments", {
            "payment_id": payment.id, "amount_yen": payment.amount_yen,
            "return_url": self.return_url.format(payment_id=payment.id),
            "callback_url": self.callback_url})
        if status != 201:
            raise PaymentRefused("payment_provider_error")
        return Redirect(str(answer["checkout_url"]), provider_ref=str(answer["ref"]))

    async def verify_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentEvent:
        try:
            verify(self.secret, headers, body, self.now())
        except WebhookRefused:
            raise PaymentRefused("payment_bad_signature") from None
        try:
            data = json.loads(body)
            return PaymentEvent(str(data["event_id"]), str(data["payment_id"]),
                                PaymentStatus(data["status"]), int(data["amount_yen"]),
                                datetime.fromisoformat(data["at"]), str(data["ref"]))
        except (ValueError, KeyError, TypeError):
            raise PaymentRefused("payment_bad_callback") from None

    async def refund(self, payment: Payment, amount_yen: int) -> RefundResult:
        status, answer = await self._post("/api/refunds", {
            "ref": payment.provider_ref, "amount_yen": amount_yen})
        if status == 200:
            return RefundResult(str(answer["refund_id"]), int(answer["amount_yen"]), ok=True)
        return RefundResult("", amount_yen, ok=False, error=str(answer["error"]["code"]))
