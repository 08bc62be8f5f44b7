"""Paying a form's fee (F3): the resident's pages and the provider's callback.

After a submission of a form with a fee the resident lands on ``/f/{form}/pay/{token}`` (the
token: ``pay_store.pay_token``, signed, never the bare submission id). That page opens the
payment at the provider (``PaymentProvider.start``) and sends the browser to its checkout
(``Redirect``) or shows the provider's instructions (``Pending``). The provider sends the
browser back to ``/forms/payments/return/{payment id}``, which goes on to the resident's
``…/return`` page: confirmed → the reference number, still open → "we are checking" (it
reloads itself), failed or cancelled → try again (a new attempt).

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
from hub.forms.submit import send_mails
from hub.forms.tables import form_payments, form_submissions
from hub.web.api import Route, lang_param

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


def _done(request: web.Request, row: Any, sub: Any) -> web.Response:
    return render(request, "resident_done.html", reference=str(sub.reference),
                  title=str(row.title), form_id=str(row.id), paid=True)


async def pay_get(request: web.Request) -> web.Response:
    """Open the current attempt at the provider: 303 to its checkout, or its instructions."""
    got = await _opened(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token = got
    ctx = ctx_of(request)
    if sub.status != pay_store.AWAITING:
        return _done(request, row, sub)
    current = await pay_store.latest(ctx, str(sub.id))
    here = f"/f/{row.id}/pay/{token}"
    if current is None:
        return message(request, 404, "not_found")
    status = PaymentStatus(current.status)
    if status in FINAL or status is PaymentStatus.CONFIRMED:
        return see_other(request, f"{here}/return")
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
        return _pay_page(request, row, sub, token, "pending", current,
                         instructions=opened.instructions)
    return web.Response(status=303, headers={"Location": opened.url,
                                             "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})


def _pay_page(request: web.Request, row: Any, sub: Any, token: str, state: str, current: Any,
              status: int = 200, instructions: str = "") -> web.Response:
    lang = lang_of(request)
    return render(request, "resident_pay.html", status, form_id=str(row.id), token=token,
                  state=state, title=str(row.title), reference=str(sub.reference),
                  amount=int(current.amount_yen), instructions=instructions, lang=lang)


async def return_get(request: web.Request) -> web.Response:
    """Where the resident comes back: the reference, "checking", or try again."""
    got = await _opened(request)
    if isinstance(got, web.Response):
        return got
    row, sub, token = got
    if sub.status != pay_store.AWAITING:
        return _done(request, row, sub)
    current = await pay_store.latest(ctx_of(request), str(sub.id))
    if current is None:
        return message(request, 404, "not_found")
    status = PaymentStatus(current.status)
    state = "failed" if status in FINAL else "checking"
    return _pay_page(request, row, sub, token, state, current)


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


_LANG = lang_param(("ja", "en"))
_FORM = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}}}}
_CALLBACK_BODY = {"application/json": {"type": "object", "description": "the provider's "
                                       "event, signed (Standard Webhooks headers for the "
                                       "fake provider)"}}
_RESULT = {"type": "object", "required": ["status", "changed"], "properties": {
    "status": {"type": "string"}, "changed": {"type": "boolean"}}}


def _get(path: str, summary: str, handler: Any) -> Route:
    return Route("GET", path, summary, handler, access="public", content_type="text/html",
                 query=(_LANG,))


ROUTES: tuple[Route, ...] = (
    _get(_F, "Pay a submission's fee: 303 to the provider's checkout (or its instructions); "
         "the reference page once paid", pay_get),
    _get(f"{_F}/return", "After the provider: the reference when paid, \"checking\" while "
         "open, try again when failed or cancelled", return_get),
    Route("POST", f"{_F}/retry", "A new payment attempt after a failed or cancelled one (form "
          "{csrf}): 303 to the payment page", retry_post, access="public",
          content_type="text/html", body=_FORM, query=(_LANG,),
          also={303: "on to the payment page"}),
    _get(f"{_F}/retry", "The retry opened by GET: on to the payment page", pay_get),
    _get(PAY_RETURN, "The provider's return address: 303 to the resident's return page",
         provider_return),
    Route("POST", PAY_CALLBACK, "The payment provider's signed callback: 200 {status, "
          "changed} (a repeat changes nothing), 400 bad signature, 404 unknown payment (or "
          "payments not configured), 409 refused transition", callback, access="public",
          body=_CALLBACK_BODY, response=_RESULT),
)
