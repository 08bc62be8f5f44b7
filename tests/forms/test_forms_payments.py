"""Fees of online forms end to end: the hub's resident pages and staff pages against the real
fake provider (``hub.forms.fake_pay``, an aiohttp server) — a fee form's submission waits for its
payment (no mail, no webhook), the signed callback completes it once (also when two identical
callbacks arrive together), a forged one is 400, a cancelled attempt is paid on a second try,
refunds never exceed the payment, and a form without a fee is as before."""

from __future__ import annotations

import asyncio
import hashlib
import html as htmlmod
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from forms_builder_support import DEPT, builder_hub, form_id_of
from forms_staff_support import csrf_of
from forms_support import Resident, add_form, audits, count, resident_app, rows, simple
from sqlalchemy import select, text, update
from staff_support import staff_cookie
from yarl import URL

from hub.forms import pay_store, retention
from hub.forms.context import PAY_CALLBACK, PAY_RETURN, FormSettings
from hub.forms.fake_pay import FakePayProvider, make_app
from hub.forms.model import FormInvalid
from hub.forms.scan import ClamdClient
from hub.forms.tables import form_deliveries, form_payments, form_submissions, forms
from hub.forms.versions import parse_form
from hub.forms.webhook import new_secret, signed_headers
from hub.store import HubStore

API_KEY = "test-key"
SECRET = new_secret()
FEE = 300
NAME = {"nm.family": "山田", "nm.given": "花子", "nm.family_kana": "ヤマダ",
        "nm.given_kana": "ハナコ"}
MAIL = "hanako@example.jp"
HOOK = "https://biz.example/hook"


@asynccontextmanager
async def paying(tmp_path: Path, provider: bool = True, store_url: str | None = None,
                 schema: str | None = None) -> AsyncIterator[Resident]:
    """The hub with the fake provider behind ``ctx.payments`` (no clamd: no files here)."""
    fake = TestServer(make_app(API_KEY, SECRET))
    await fake.start_server()
    try:
        async with resident_app(tmp_path, ClamdClient.from_address("127.0.0.1:9"),
                                store_url, schema) as r:
            base = str(r.client.make_url("/")).rstrip("/")
            if provider:
                r.ctx.payments = FakePayProvider(str(fake.make_url("/")), API_KEY, SECRET,
                                                 base + PAY_CALLBACK, base + PAY_RETURN)
            yield r
    finally:
        await fake.close()


async def fee_form(r: Resident, fee: int = FEE) -> str:
    return await add_form(r.ctx, {**simple("x"), "fee_yen": fee,
                                  "fee_note": {"ja": "登録手数料", "en": "Registration"}},
                          webhook_url=HOOK, notify=["staff@city.example"])


async def submit(r: Resident, form_id: str) -> tuple[int, Any]:
    """Answer the two visible pages and submit; (status, headers) of the submit."""
    await r.get(f"/f/{form_id}")
    await r.post(f"/f/{form_id}/start")
    await r.post(f"/f/{form_id}/page/1", {**NAME, "mail": MAIL, "has_dog": "no"})
    await r.post(f"/f/{form_id}/page/2", {"ok": "true"})
    status, _, headers = await r.post(f"/f/{form_id}/submit")
    return status, headers


async def checkout(r: Resident, pay_path: str) -> str:
    """Open the payment as a resident does: the pay page shows the amount and a link (never a
    form: the CSP's form-action would stop a POST that ends at another site); the link answers
    303 to the fake's checkout page."""
    status, html, _ = await r.get(pay_path)
    assert status == 200, status
    assert 'data-state="ready"' in html
    assert f"{FEE:,}" in html
    assert "<form" not in html.split('id="pay-title"', 1)[1]
    link = re.search(r'id="pay-go" href="([^"]+)"|href="([^"]+)"[^>]*id="pay-go"', html)
    assert link is not None, html
    status, _, headers = await r.get(htmlmod.unescape(link.group(1) or link.group(2)))
    assert status == 303, status
    url = str(headers["Location"])
    assert "/checkout/fp_" in url
    return url


async def at_provider(url: str, action: str) -> str:
    """Press 支払う or キャンセル; the path the browser is sent back to on the hub."""
    async with aiohttp.ClientSession() as browser, \
            browser.post(f"{url}/{action}", allow_redirects=False) as resp:
        assert resp.status == 303
        return URL(resp.headers["Location"]).path_qs


async def back_to_hub(r: Resident, path: str) -> tuple[int, str]:
    status, _, headers = await r.get(path)  # /forms/payments/return/{id} → the resident's
    assert status == 303
    assert "/pay/" in headers["Location"]
    assert headers["Location"].count("/return") == 1
    status, html, _ = await r.get(headers["Location"])
    return status, html


async def the_submission(r: Resident) -> Any:
    got = await rows(r.ctx.store, form_submissions)
    assert len(got) == 1
    return got[0]


def signed(payment_id: str, status: str, event_id: str, amount: int = FEE,
           secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"event_id": event_id, "payment_id": payment_id, "ref": "fp_x",
                       "status": status, "amount_yen": amount,
                       "at": datetime.now(UTC).isoformat()}).encode()
    return signed_headers(secret, event_id, datetime.now(UTC), body), body


async def callback(r: Resident, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    async with r.client.post(PAY_CALLBACK, data=body, headers={
            **headers, "Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json()


async def api_ids(r: Resident, form_id: str) -> list[str]:
    """The submission ids the business systems' API lists (the form's key set to API_KEY)."""
    async with r.ctx.store.begin() as tx:
        await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
            api_key_hash=hashlib.sha256(API_KEY.encode()).hexdigest()))
    async with r.client.get(f"/api/forms/{form_id}/submissions",
                            headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
        assert resp.status == 200
        return [s["id"] for s in (await resp.json())["submissions"]]


async def test_fee_form_waits_for_payment_then_is_received_once(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        form_id = await fee_form(r)
        status, _, _ = await r.get(f"/f/{form_id}")
        assert status == 200
        status, headers = await submit(r, form_id)
        assert status == 303
        pay_path = str(headers["Location"])
        assert pay_path.startswith(f"/f/{form_id}/pay/")
        sub = await the_submission(r)
        token = pay_path.split("?")[0].rsplit("/", 1)[1]
        assert token != str(sub.id)
        assert pay_store.sid_of(r.ctx, token) == str(sub.id)
        assert (sub.status, sub.payment) == ("awaiting_payment", "pending")
        assert r.mails() == []
        assert await count(r.ctx.store, form_deliveries) == 0
        assert await count(r.ctx.store, form_payments, status="created") == 1
        # a guessed token is refused
        status, _, _ = await r.get(f"/f/{form_id}/pay/{sub.id}.AAAAAAAAAAAAAAAAAAAAAAAA")
        assert status == 404
        assert await api_ids(r, form_id) == []  # business systems see it only once paid
        async with r.client.get(f"/api/forms/{form_id}/submissions/{sub.id}",
                                headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
            assert resp.status == 404

        url = await checkout(r, pay_path)
        assert await count(r.ctx.store, form_payments, status="pending") == 1
        status, html = await back_to_hub(r, await at_provider(url, "pay"))
        assert status == 200
        assert sub.reference in html
        assert 'id="paid"' in html
        sub = await the_submission(r)
        assert (sub.status, sub.payment) == ("received", "confirmed")
        receipts = r.mails(MAIL)
        assert len(receipts) == 1
        assert sub.reference in receipts[0].subject
        assert len(r.mails("staff@city.example")) == 1
        deliveries = await rows(r.ctx.store, form_deliveries)
        assert [d.event_type for d in deliveries] == ["submission.received"]
        assert len(await audits(r.ctx.store, "form_payment_confirmed")) == 1
        assert await api_ids(r, form_id) == [str(sub.id)]

        # the provider sends it again (a retry): nothing changes
        pay = (await rows(r.ctx.store, form_payments))[0]
        for _ in range(2):
            status, got = await callback(r, *signed(str(pay.id), "confirmed", "evt_again"))
            assert (status, got) == (200, {"status": "confirmed", "changed": False})
        assert await count(r.ctx.store, form_deliveries) == 1
        assert len(r.mails(MAIL)) == 1
        assert len(await audits(r.ctx.store, "form_payment_confirmed")) == 1
        # paid: the pay page is the reference page now
        status, html, _ = await r.get(pay_path)
        assert status == 200
        assert sub.reference in html


async def test_two_identical_callbacks_at_once_confirm_once(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        await _callbacks_at_once(r)


async def test_callbacks_at_once_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    schema = f"fp_{uuid.uuid4().hex[:12]}"
    try:
        async with paying(tmp_path, store_url=postgres_url, schema=schema) as r:
            await _callbacks_at_once(r)
    finally:
        store = await HubStore.open(postgres_url, schema=schema)
        async with store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await store.close()


async def _callbacks_at_once(r: Resident) -> None:
    """Four copies of one signed callback together: confirmed once."""
    form_id = await fee_form(r)
    _, headers = await submit(r, form_id)
    await checkout(r, str(headers["Location"]))
    pay = (await rows(r.ctx.store, form_payments))[0]
    one = signed(str(pay.id), "confirmed", "evt_" + secrets.token_hex(4))
    answers = await asyncio.gather(*(callback(r, *one) for _ in range(4)))
    assert all(status == 200 for status, _ in answers)
    assert sum(1 for _, got in answers if got["changed"]) == 1
    sub = await the_submission(r)
    assert sub.status == "received"
    assert await count(r.ctx.store, form_deliveries) == 1
    assert len(r.mails(MAIL)) == 1
    assert len(await audits(r.ctx.store, "form_payment_confirmed")) == 1


async def test_forged_and_refused_callbacks(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        form_id = await fee_form(r)
        _, headers = await submit(r, form_id)
        await checkout(r, str(headers["Location"]))
        pay = (await rows(r.ctx.store, form_payments))[0]
        status, got = await callback(r, *signed(str(pay.id), "confirmed", "evt_1",
                                                secret=new_secret()))
        assert (status, got["error"]["code"]) == (400, "payment_bad_signature")
        status, got = await callback(r, {}, b"not json")
        assert (status, got["error"]["code"]) == (400, "payment_bad_signature")
        status, got = await callback(r, *signed(str(pay.id), "confirmed", "evt_2", amount=1))
        assert (status, got["error"]["code"]) == (409, "payment_amount_mismatch")
        status, got = await callback(r, *signed("nosuchpayment", "confirmed", "evt_3"))
        assert (status, got["error"]["code"]) == (404, "payment_unknown")
        assert (await the_submission(r)).status == "awaiting_payment"
        assert r.mails() == []
        # cancelled, then a late "confirmed" for the same attempt is out of order
        assert (await callback(r, *signed(str(pay.id), "cancelled", "evt_4")))[0] == 200
        status, got = await callback(r, *signed(str(pay.id), "confirmed", "evt_5"))
        assert (status, got["error"]["code"]) == (409, "payment_out_of_order")
        assert (await the_submission(r)).status == "awaiting_payment"


async def test_cancel_then_pay_on_a_second_attempt(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        form_id = await fee_form(r)
        _, headers = await submit(r, form_id)
        pay_path = str(headers["Location"]).split("?")[0]
        status, html = await back_to_hub(r, await at_provider(
            await checkout(r, pay_path), "cancel"))
        assert status == 200
        assert 'data-state="failed"' in html
        assert 'id="pay-retry"' in html
        assert r.mails() == []
        status, _, headers = await r.post(f"{pay_path}/retry")
        assert status == 303
        assert headers["Location"].startswith(pay_path)
        status, _, _ = await r.post(f"{pay_path}/retry")  # twice: still one open attempt
        assert status == 303
        assert [p.status for p in await rows(r.ctx.store, form_payments)].count("created") == 1
        status, html = await back_to_hub(r, await at_provider(
            await checkout(r, pay_path), "pay"))
        assert status == 200
        sub = await the_submission(r)
        assert sub.reference in html
        assert sub.status == "received"
        assert sorted(p.status for p in await rows(r.ctx.store, form_payments)) == [
            "cancelled", "confirmed"]
        assert len(r.mails(MAIL)) == 1


async def test_checking_page_until_the_callback_comes(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        form_id = await fee_form(r)
        _, headers = await submit(r, form_id)
        pay_path = str(headers["Location"]).split("?")[0]
        await checkout(r, pay_path)
        status, html, _ = await r.get(f"{pay_path}/return")
        assert status == 200
        assert "お支払いを確認しています" in html
        assert 'http-equiv="refresh"' not in html  # no timed refresh (WCAG 2.2.1)
        assert "/static/forms-pay.js" in html
        async with r.client.get(f"{pay_path}/state") as resp:
            assert (resp.status, await resp.json()) == (200, {"state": "checking"})
        pay = (await rows(r.ctx.store, form_payments))[0]
        status, _ = await callback(r, *signed(str(pay.id), "confirmed", "evt_state"))
        assert status == 200
        async with r.client.get(f"{pay_path}/state") as resp:
            assert await resp.json() == {"state": "paid"}
        async with r.client.get(f"/f/{form_id}/pay/nope.AAAA/state") as resp:
            assert resp.status == 404


async def test_staff_see_the_payment_and_refund_within_what_was_paid(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        form_id = await fee_form(r)
        _, headers = await submit(r, form_id)
        pay_path = str(headers["Location"]).split("?")[0]
        sub = await the_submission(r)
        cookie = await staff_cookie(r.ctx.store, r.ctx.hub, "form_staff", "seikatsu")
        base = f"/admin/forms/{form_id}/submissions"
        async with r.client.get(f"{base}?lang=ja", cookies=cookie) as resp:
            assert "支払待ち" in await resp.text()
        here = f"{base}/{sub.id}"
        async with r.client.get(f"{here}?lang=ja", cookies=cookie) as resp:
            html = await resp.text()
        assert 'data-testid="awaiting"' in html
        assert 'data-action="start"' not in html
        csrf = csrf_of(html)
        async with r.client.post(f"{here}/start", data={"csrf": csrf}, cookies=cookie,
                                 allow_redirects=False) as resp:
            assert resp.status == 409
        await back_to_hub(r, await at_provider(await checkout(r, pay_path), "pay"))

        async def refund(amount: str) -> tuple[int, str]:
            async with r.client.post(f"{here}/refund?lang=ja", cookies=cookie,
                                     data={"csrf": csrf, "amount_yen": amount},
                                     allow_redirects=False) as resp:
                return resp.status, await resp.text()

        async with r.client.get(f"{here}?lang=en", cookies=cookie) as resp:
            html = await resp.text()
        assert 'data-testid="fee">300 yen' in html
        assert 'data-status="confirmed"' in html
        assert (await refund("100"))[0] == 303
        status, html = await refund("500")
        assert status == 409
        assert 'data-code="payment_refund_exceeds"' in html
        assert "200円" in html
        assert (await refund("abc"))[0] == 400
        assert (await refund("200"))[0] == 303
        sub = await the_submission(r)
        assert (sub.status, sub.payment) == ("received", "refunded")
        pay = (await rows(r.ctx.store, form_payments, status="refunded"))[0]
        assert [x["amount_yen"] for x in json.loads(pay.refunds)] == [100, 200]
        assert len(await audits(r.ctx.store, "form_payment_refunded")) == 2
        async with r.client.get(f"{here}?lang=ja", cookies=cookie) as resp:
            html = await resp.text()
        assert 'data-testid="refunds"' in html
        assert 'data-testid="refund"' not in html
        other = await staff_cookie(r.ctx.store, r.ctx.hub, "form_staff", "kosodate")
        async with r.client.post(f"{here}/refund", cookies=other, allow_redirects=False,
                                 data={"csrf": csrf, "amount_yen": "1"}) as resp:
            assert resp.status in (403, 404)


async def test_without_a_provider_a_fee_form_does_not_accept(tmp_path: Path) -> None:
    async with paying(tmp_path, provider=False) as r:
        form_id = await fee_form(r)
        status, _headers = await submit(r, form_id)
        assert status == 503
        assert await count(r.ctx.store, form_submissions) == 0
        assert r.mails() == []


async def test_a_form_without_a_fee_is_unchanged(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        form_id = await add_form(r.ctx, webhook_url=HOOK)
        status, headers = await submit(r, form_id)
        assert status == 303
        assert "/done?ref=F-2026-" in headers["Location"]
        sub = await the_submission(r)
        assert (sub.status, sub.payment) == ("received", "none")
        assert await count(r.ctx.store, form_payments) == 0
        assert await count(r.ctx.store, form_deliveries) == 1
        assert len(r.mails(MAIL)) == 1


async def test_unpaid_submissions_go_after_the_draft_days(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        r.ctx.settings = FormSettings(files_dir=tmp_path / "form-files", draft_days=3)
        form_id = await fee_form(r)
        await submit(r, form_id)
        r.clock.advance(days=2)
        await retention.purge(r.ctx)
        assert await count(r.ctx.store, form_submissions) == 1
        r.clock.advance(days=2)
        got = await retention.purge(r.ctx)
        assert got.submissions == {form_id: 1}
        assert await count(r.ctx.store, form_payments) == 0


async def test_pay_tokens_are_signed(tmp_path: Path) -> None:
    async with paying(tmp_path) as r:
        token = pay_store.pay_token(r.ctx, "abc")
        assert pay_store.sid_of(r.ctx, token) == "abc"
        assert pay_store.sid_of(r.ctx, "abc") is None
        assert pay_store.sid_of(r.ctx, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert pay_store.sid_of(r.ctx, "abd" + token[3:]) is None


def test_fee_is_whole_yen_within_range() -> None:
    base = {**simple("x"), "fee_yen": 0}
    assert parse_form(base).fee_yen == 0
    assert parse_form({**base, "fee_yen": 1_000_000}).fee_yen == 1_000_000
    for bad, code in ((-1, "bad_fee"), (1_000_001, "bad_fee"), ("300", "bad_value"),
                      (True, "bad_value"), (300.5, "bad_value")):
        with pytest.raises(FormInvalid) as refused:
            parse_form({**base, "fee_yen": bad})
        assert [p.code for p in refused.value.problems] == [code], bad
        assert all(p.ja and p.en for p in refused.value.problems)


async def test_old_submission_rows_are_untouched(tmp_path: Path) -> None:
    """A submission stored before fees existed has no payment rows and stays as it was."""
    async with paying(tmp_path) as r:
        form_id = await add_form(r.ctx)
        await submit(r, form_id)
        async with r.ctx.store.read() as tx:
            got = (await tx.conn.execute(select(form_submissions.c.payment))).scalars().all()
        assert got == ["none"]
        assert await pay_store.latest(r.ctx, "nope") is None


async def test_builder_settings_set_the_fee(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        got = await hub.post("/admin/forms/new?lang=ja", {"department": DEPT,
                                                          "title_ja": "犬の登録"})
        assert got.status == 303, await got.text()
        fid = form_id_of(got.headers["Location"])
        base = {"title_ja": "犬の登録", "identity": "anonymous", "retention_days": "365",
                "webhook_url": "", "notify": ""}
        for bad in ("1000001", "-5", "三百", "3.5"):
            got = await hub.post(f"/admin/forms/{fid}/settings?lang=ja", {**base,
                                                                          "fee_yen": bad})
            text = await got.text()
            assert got.status == 400, bad
            assert 'data-code="bad_fee"' in text
            assert "1,000,000円" in text
        assert (await hub.draft(fid)).fee_yen == 0
        got = await hub.post(f"/admin/forms/{fid}/settings?lang=ja", {
            **base, "fee_yen": "1,200", "fee_note_ja": "登録手数料", "fee_note_en": "Fee"})
        assert got.status == 303, await got.text()
        draft = await hub.draft(fid)
        assert draft.fee_yen == 1200
        assert draft.fee_note is not None
        assert (draft.fee_note.ja, draft.fee_note.en) == ("登録手数料", "Fee")
        text = await (await hub.get(f"/admin/forms/{fid}/settings?lang=ja")).text()
        assert 'value="1200"' in text
        assert "決済サービスが設定されていない" in text  # no provider in this hub
        got = await hub.post(f"/admin/forms/{fid}/settings?lang=ja", {**base, "fee_yen": ""})
        assert got.status == 303
        assert (await hub.draft(fid)).fee_yen == 0
