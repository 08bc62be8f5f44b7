"""The staff's side of fees (F3): what the submission page shows of its payment, and refunds.

A refund is asked of the provider first and recorded after it said yes
(``pay_store.refund``); more than is left to refund is refused before the provider is asked,
with a sentence that says how much is left. Form staff of the form's department (the guard's
``forms`` level and ``staff.form_of``), CSRF like every staff POST; audited
``form_payment_refunded`` (the amounts and a keyed tag of the submission, nothing else).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.auth.guard import ip_of
from hub.auth.texts import pick_lang
from hub.forms import pay_store
from hub.forms.context import Forms
from hub.forms.payment import PaymentRefused, PaymentStatus
from hub.forms.service import FormError
from hub.web.api import Route, lang_param

_MAX_DIGITS = 7  # 1,000,000 yen at most

_REFUSED = {
    "payment_refund_exceeds": ("返金額が返金できる金額（{left}円）を超えています",
                               "The refund is more than can be refunded ({left} yen)"),
    "payment_refund_invalid": ("返金額は1円以上の整数で入力してください",
                               "Enter the refund as a whole number of yen, 1 or more"),
    "payment_refund_not_allowed": ("この申請には返金できる支払いがありません",
                                   "This submission has no payment that can be refunded"),
    "payment_provider_error": ("決済サービスが返金を受け付けませんでした。時間をおいて"
                               "もう一度お試しください",
                               "The payment service did not accept the refund; try again "
                               "later"),
}


async def payments_of(ctx: Forms, sid: str) -> dict[str, Any] | None:
    """The detail page's payment box: every attempt, the current one, what can be refunded;
    None when the submission has no fee."""
    rows = await pay_store.attempts(ctx, sid)
    if not rows:
        return None
    items = [pay_store.summary(r) for r in rows]
    paid = next((i for i in items if i["confirmed_at"] is not None), None)
    return {"attempts": items, "fee_yen": items[-1]["amount_yen"], "paid": paid,
            "current": paid or items[-1],
            "refunds": [r for i in items for r in i["refunds"]],
            "refundable_yen": paid["refundable_yen"] if paid else 0}


def _refused(code: str, left: int) -> FormError:
    ja, en = _REFUSED.get(code, _REFUSED["payment_provider_error"])
    return FormError(code, ja.format(left=f"{left:,}"), en.format(left=f"{left:,}"),
                     "amount_yen")


async def refund_post(request: web.Request) -> web.Response:
    from hub.forms import staff

    got = await staff.submission_of(request)
    if got is None:
        return staff.missing(request)
    row, sub = got
    ctx = staff.ctx_of(request)
    raw = str((await request.post()).get("amount_yen", "")).strip().replace(",", "")
    box = await payments_of(ctx, str(sub.id))
    paid = box["paid"] if box else None
    left = int(paid["refundable_yen"]) if paid else 0
    amount = int(raw) if raw.isdigit() and len(raw) <= _MAX_DIGITS else 0
    try:
        if paid is None or PaymentStatus(paid["status"]) is not PaymentStatus.CONFIRMED:
            raise PaymentRefused("payment_refund_not_allowed")
        if amount <= 0:
            raise PaymentRefused("payment_refund_invalid")
        await pay_store.refund(ctx, str(paid["id"]), amount, staff.actor_of(request),
                               ip_of(request))
    except PaymentRefused as exc:
        code = 400 if exc.code == "payment_refund_invalid" else 409
        return await staff.detail_view(request, row, sub, code, _refused(exc.code, left),
                                       refund_amount=raw[:_MAX_DIGITS + 2])
    except pay_store.PaymentGone:
        return staff.missing(request)
    raise web.HTTPSeeOther(f"{staff.path_of(str(row.id), str(sub.id))}?"
                           f"{urlencode({'done': 'refunded', 'lang': pick_lang(request)})}")


_BODY = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}, "amount_yen": {
        "type": "string", "description": "whole yen, at most what is left to refund"}}}}

ROUTES: tuple[Route, ...] = (
    Route("POST", "/admin/forms/{form_id}/submissions/{sid}/refund", "Refund (part of) a "
          "submission's fee through the payment provider (form {csrf, amount_yen}); 409 "
          "above what is left; audited", refund_post, access="forms",
          content_type="text/html", body=_BODY, query=(lang_param(("ja", "en")),),
          also={303: "done: back to the submission"}),
)
