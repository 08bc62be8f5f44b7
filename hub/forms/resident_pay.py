"""Paying a form's fee (F3): the resident's pages and the provider's callback.

After a submission of a form with a fee the resident lands on ``/f/{form}/pay/{token}`` (the
token: ``pay_store.pay_token``, signed, never the bare submission id): the procedure, the
amount and a link to the payment service. The link (``…/go``) opens the payment at the provider
(``PaymentProvider.start``) and sends the browser to its checkout (``Redirect``) or shows the
provider's instructions (``Pending``). The provider sends the browser back to
``/forms/payments/return/{payment id}``, which goes on to the resident's ``…/return`` page:
confirmed → the reference number, still open → "we are checking", failed or cancelled → try
again (a new attempt).

Why a page with a link and not a redirect straight from "send": the hub's CSP says
``form-action 'self'``, and browsers apply it to every redirect that follows a form's POST, so
a POST that ends at another site's checkout is blocked. A link the resident follows is a plain
navigation, and the page says before leaving the hub that the payment is on another site.

"Checking" does not reload itself (a timed refresh fails WCAG 2.2.1 and restarts screen
readers): ``/static/forms-pay.js`` asks ``…/state`` every few seconds and reloads the page only
when the payment's state has changed; without JavaScript a link shows the latest state.

The callback (``POST /forms/payments/callback``) is what counts, never the browser's return:
its signature is checked by the adapter, and ``pay_store.apply_event`` stores it once. Errors
are JSON ``{"error": {"code", "message"}}``: a bad signature 400, a refused transition 409, an
unknown payment 404; a repeat is 200 and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from edge.httpkit.errors import error_response
from hub.forms import pay_store, service
from hub.forms import resident_routes as rr
from hub.forms.context import PAY_CALLBACK, PAY_RETURN
from hub.forms.payment import FINAL, PaymentRefused, PaymentStatus, Pending
from hub.forms.resident_http import (
    BadPost,
    ctx_of,
    lang_of,
    message,
    read_post,
    render,
    see_other,
)
from hub.forms.resident_view import text
from hub.forms.submit import send_mails
from hub.forms.tables import form_payments, form_submissions
from hub.web.api import Route

_LOGGER = logging.getLogger(__name__)
_F = "/f/{form_id}/pay/{token}"
BODY_MAX = 64 * 1024


async def _opened(request: web.Request) -> tuple[Any, Any, str] | web.Response:
    """The form row, the submission and the token of the path; else a page saying why."""
    ctx, form_id = ctx_of(request), request.match_info["form_id"]
    token = request.match_info["token"]
    sid = pay_store.sid_of(ctx, token)
    row = await service.get(ctx, form_id)
    if sid is None or row is None:
        return message(request, 404, "not_found")
    async with ctx.store.read() as tx:
        sub = (await tx.conn.execute(select(form_submissions).where(
            form_submissions.c.id == sid, form_submissions.c.form_id == form_id))).first()
    if sub is None:
        return message(request, 404, "not_found")
    return row, sub, token


async def _title(request: web.Request, row: Any, sub: Any) -> str:
    """The form's title in the resident's language (the version the submission answered)."""
    form = await service.version_of(ctx_of(request), str(row.id), int(sub.version))
    return text(form.title, lang_of(request)) if form is not None else str(row.title)


async def _done(request: web.Request, row: Any, sub: Any) -> web.Response:
    paid = await pay_store.latest(ctx_of(request), str(sub.id))
    return render(request, "resident_done.html", reference=str(sub.reference),
                  title=await _title(request, row, sub), form_id=str(row.id), paid=True,
                  paid_yen=int(paid.amount_yen) if paid is not None else 0)


async def _attempt(request: web.Request) -> tuple[Any, Any, str, Any] | web.Response:
    """The path's unpaid submission with its latest attempt; the reference page once paid."""
    got = await _opened(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token = got
    if sub.status != pay_store.AWAITING:
        return await _done(request, row, sub)
    current = await pay_store.latest(ctx_of(request), str(sub.id))
    if current is None:
        return message(request, 404, "not_found")
    return row, sub, token, current


async def _open_attempt(request: web.Request) -> tuple[Any, Any, str, Any] | web.Response:
    """As ``_attempt``, and on to the return page once the attempt is over."""
    got = await _attempt(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token, current = got
    status = PaymentStatus(current.status)
    if status in FINAL or status is PaymentStatus.CONFIRMED:
        return see_other(request, f"/f/{row.id}/pay/{token}/return")
    return row, sub, token, current


async def pay_get(request: web.Request) -> web.Response:
    """The amount and the link on to the payment service."""
    got = await _open_attempt(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token, current = got
    if ctx_of(request).payments is None:
        return message(request, 503, "pay_unavailable")
    return await _pay_page(request, row, sub, token, "ready", current)


async def go_get(request: web.Request) -> web.Response:
    """Open the current attempt at the provider: 303 to its checkout, or its instructions."""
    got = await _open_attempt(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token, current = got
    ctx = ctx_of(request)
    here = f"/f/{row.id}/pay/{token}"
    provider = ctx.payments
    if provider is None or provider.name != current.provider:
        return message(request, 503, "pay_unavailable", back=here)
    payment = pay_store.of_row(current)
    try:
        opened = await provider.start(payment)
    except (PaymentRefused, aiohttp.ClientError, TimeoutError, ValueError, KeyError):
        _LOGGER.warning("payment provider %s did not open a payment", provider.name)
        return message(request, 502, "pay_provider_down", back=here)
    await pay_store.started(ctx, payment.id, opened.provider_ref)
    if isinstance(opened, Pending):
        return await _pay_page(request, row, sub, token, "pending", current,
                               instructions=opened.instructions)
    return web.Response(status=303, headers={"Location": opened.url,
                                             "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})


async def _pay_page(request: web.Request, row: Any, sub: Any, token: str, state: str,
                    current: Any, status: int = 200, instructions: str = "") -> web.Response:
    lang = lang_of(request)
    return render(request, "resident_pay.html", status, form_id=str(row.id), token=token,
                  state=state, title=await _title(request, row, sub),
                  reference=str(sub.reference), amount=int(current.amount_yen),
                  instructions=instructions, lang=lang,
                  days=ctx_of(request).settings.draft_days)


def _state(sub: Any, current: Any) -> str:
    """What the return page shows: paid, failed (cancelled or refused: pay again), checking."""
    if sub.status != pay_store.AWAITING:
        return "paid"
    return "failed" if PaymentStatus(current.status) in FINAL else "checking"


async def return_get(request: web.Request) -> web.Response:
    """Where the resident comes back: the reference, "checking", or try again."""
    got = await _attempt(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token, current = got
    return await _pay_page(request, row, sub, token, _state(sub, current), current)


async def state_get(request: web.Request) -> web.Response:
    """``{"state": "checking" | "paid" | "failed"}`` for the checking page's script."""
    got = await _opened(request)
    if isinstance(got, web.Response):
        return _error(404, "payment_unknown")
    _row, sub, _token = got
    current = await pay_store.latest(ctx_of(request), str(sub.id))
    if current is None:
        return _error(404, "payment_unknown")
    return web.json_response({"state": _state(sub, current)},
                             headers={"Cache-Control": "no-store"})


async def retry_post(request: web.Request) -> web.Response:
    """A new attempt after a failed or cancelled one; then on to the payment page."""
    got = await _opened(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token = got
    try:
        _raw, ok = await read_post(request)
    except BadPost:
        return message(request, 400, "bad_post", back=f"/f/{row.id}/pay/{token}/return")
    if not ok:
        return message(request, 403, "form_expired", back=f"/f/{row.id}/pay/{token}/return")
    ctx = ctx_of(request)
    if ctx.payments is None:
        return message(request, 503, "pay_unavailable")
    await pay_store.retry(ctx, str(sub.id), ctx.payments.name)
    return see_other(request, f"/f/{row.id}/pay/{token}")


async def provider_return(request: web.Request) -> web.Response:
    """The provider's fixed return address (it knows the payment id, not the resident's
    token): on to the resident's return page."""
    ctx = ctx_of(request)
    async with ctx.store.read() as tx:
        found = (await tx.conn.execute(select(
            form_payments.c.submission_id, form_payments.c.form_id).where(
            form_payments.c.id == request.match_info["payment_id"]))).first()
    if found is None:
        return message(request, 404, "not_found")
    token = pay_store.pay_token(ctx, str(found.submission_id))
    return see_other(request, f"/f/{found.form_id}/pay/{token}/return")


_ERRORS = {
    "payment_not_configured": ("payments are not configured", "決済サービスが設定されていません"),
    "payment_too_large": ("the body is too large", "本文が大きすぎます"),
    "payment_bad_signature": ("the signature is not valid", "署名が正しくありません"),
    "payment_bad_callback": ("the callback is not understood", "通知の形式が正しくありません"),
    "payment_mismatch": ("the callback names another payment", "通知の支払いが一致しません"),
    "payment_amount_mismatch": ("the amount is not the fee", "金額が手数料と一致しません"),
    "payment_out_of_order": ("the payment cannot change this way", "この支払いの状態は"
                             "このように変わりません"),
    "payment_unknown": ("no such payment", "該当する支払いがありません"),
}


def _error(status: int, code: str) -> web.Response:
    en, ja = _ERRORS.get(code, (code.replace("_", " "), "受け付けられませんでした"))
    return error_response(status, code, en, ja)


async def callback(request: web.Request) -> web.Response:
    """The provider's signed callback; stored once, then the mails of a newly complete
    submission."""
    ctx = ctx_of(request)
    provider = ctx.payments
    if provider is None:
        return _error(404, "payment_not_configured")
    if (request.content_length or 0) > BODY_MAX:
        return _error(413, "payment_too_large")
    body = await request.content.read(BODY_MAX + 1)
    if len(body) > BODY_MAX:
        return _error(413, "payment_too_large")
    try:
        event = await provider.verify_callback(request.headers, body)
        done = await pay_store.apply_event(ctx, event)
    except PaymentRefused as exc:
        status = 400 if exc.code in ("payment_bad_signature", "payment_bad_callback") else 409
        return _error(status, exc.code)
    except pay_store.PaymentGone:
        return _error(404, "payment_unknown")
    if done.confirmed is not None:
        sub = done.confirmed
        row = await service.get(ctx, str(sub.form_id))
        if row is not None:
            contact = pay_store.open_contact(ctx, sub)
            await send_mails(ctx, row, str(sub.id), str(sub.reference), contact,
                             str(sub.lang), resubmitted=False)
    return web.json_response({"status": done.payment.status.value, "changed": done.changed})


_CALLBACK_BODY = {"application/json": {"type": "object", "description": "the provider's "
                                       "event, signed (Standard Webhooks headers for the "
                                       "fake provider)"}}
_RESULT = {"type": "object", "required": ["status", "changed"], "properties": {
    "status": {"type": "string"}, "changed": {"type": "boolean"}}}


ROUTES: tuple[Route, ...] = (
    rr.page(_F, "Pay a submission's fee: the amount and the link on to the payment service; "
            "the reference page once paid", pay_get),
    rr.page(f"{_F}/go", "On to the payment service: 303 to the provider's checkout (or its "
            "instructions)", go_get),
    rr.page(f"{_F}/return", "After the provider: the reference when paid, \"checking\" while "
            "open, try again when failed or cancelled", return_get),
    Route("GET", f"{_F}/state", "The payment's state for the checking page's script: "
          "{state: checking | paid | failed}", state_get, access="public",
          response={"type": "object", "required": ["state"], "properties": {"state": {
              "enum": ["checking", "paid", "failed"]}}}),
    rr.action(f"{_F}/retry", "A new payment attempt after a failed or cancelled one (form "
              "{csrf}): 303 to the payment page", retry_post, then="on to the payment page"),
    rr.page(f"{_F}/retry", "The retry opened by GET: on to the payment page", pay_get),
    rr.page(PAY_RETURN, "The provider's return address: 303 to the resident's return page",
         provider_return),
    Route("POST", PAY_CALLBACK, "The payment provider's signed callback: 200 {status, "
          "changed} (a repeat changes nothing), 400 bad signature, 404 unknown payment (or "
          "payments not configured), 409 refused transition", callback, access="public",
          body=_CALLBACK_BODY, response=_RESULT),
)
