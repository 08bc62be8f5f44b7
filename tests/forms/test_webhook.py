"""Signed form webhooks: signature format (Standard Webhooks vector), receiver checks, URL
policy, backoff schedule, and delivery to a real aiohttp receiver despite an injected 500."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import free_port
from forms_http_support import WebhookReceiver
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from edge.domain.clock import ManualClock
from hub.forms.webhook import (
    CLAIM_SQL,
    GIVE_UP_AFTER_S,
    JITTER,
    RETRY_DELAYS_S,
    Endpoint,
    HttpSender,
    MemoryDeliveries,
    Outcome,
    Status,
    UrlPolicy,
    UrlRefused,
    WebhookRefused,
    _GuardedResolver,
    after_attempt,
    classify,
    deliver_due,
    new_delivery,
    new_secret,
    sign,
    signed_headers,
    verify,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PAYLOAD = {"name": "山田 太郎", "postal_code": "140-8715"}


def test_standard_webhooks_test_vector() -> None:
    """The published Standard Webhooks vector: a vendor's stock library verifies what we send."""
    assert sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300), st.data())
def test_any_tampering_is_refused(body: bytes, skew: int, data: st.DataObject) -> None:
    secret = new_secret()
    now = T0 + timedelta(seconds=skew)
    headers = signed_headers(secret, "msg_1", T0, body)
    assert verify(secret, headers, body, now) == "msg_1"
    assert verify([new_secret(), secret], headers, body, now) == "msg_1"  # rotation
    i = data.draw(st.integers(min_value=0, max_value=len(body)))
    tampered = body[:i] + bytes([(body[i] + 1) % 256]) + body[i + 1:] if i < len(body) \
        else body + b" "
    with pytest.raises(WebhookRefused) as err:
        verify(secret, headers, tampered, now)
    assert err.value.code == "webhook_bad_signature"
    with pytest.raises(WebhookRefused):
        verify(secret, {**headers, "Webhook-Id": "msg_2"}, body, now)


def test_receiver_checks() -> None:
    secret, body = new_secret(), b'{"a":1}'
    headers = signed_headers(secret, "msg_1", T0, body)
    cases = [
        (new_secret(), headers, T0, "webhook_bad_signature"),
        (secret, headers, T0 + timedelta(seconds=301), "webhook_timestamp_too_old"),
        (secret, headers, T0 - timedelta(seconds=301), "webhook_timestamp_in_future"),
        (secret, {k: v for k, v in headers.items() if k != "Webhook-Signature"}, T0,
         "webhook_missing_headers"),
        (secret, {**headers, "Webhook-Timestamp": "12a"}, T0, "webhook_bad_timestamp"),
        (secret, {**headers, "Webhook-Signature": "v2," + headers["Webhook-Signature"][3:]}, T0,
         "webhook_bad_signature"),
    ]
    for key, h, now, code in cases:
        with pytest.raises(WebhookRefused) as err:
            verify(key, h, body, now)
        assert err.value.code == code
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert verify(secret, lower, body, T0 + timedelta(seconds=300)) == "msg_1"


@pytest.mark.parametrize(("url", "allow_private", "code"), [
    ("https://hooks.example.jp/x", False, None),
    ("https://93.184.216.34/x", False, None),
    ("http://hooks.example.jp/x", False, "webhook_url_scheme"),
    ("ftp://hooks.example.jp/x", True, "webhook_url_scheme"),
    ("https://user:pw@hooks.example.jp/x", False, "webhook_url_invalid"),
    ("https://[::1", False, "webhook_url_invalid"),
    ("https://10.1.2.3/x", False, "webhook_url_address"),
    ("https://10.1.2.3/x", True, None),
    ("https://[::ffff:192.168.0.1]/x", False, "webhook_url_address"),
    ("http://127.0.0.1:8080/x", False, "webhook_url_address"),
    ("http://localhost:8080/x", False, "webhook_url_address"),
    ("http://127.0.0.1:8080/x", True, None),
    ("http://localhost:8080/x", True, None),
    ("https://169.254.169.254/latest/meta-data", True, "webhook_url_address"),
    ("https://[fe80::1]/x", True, "webhook_url_address"),
    ("https://0.0.0.0/x", True, "webhook_url_address"),
])
def test_url_policy(url: str, allow_private: bool, code: str | None) -> None:
    policy = UrlPolicy(allow_private=allow_private)
    if code is None:
        policy.check_url(url)
    else:
        with pytest.raises(UrlRefused) as err:
            policy.check_url(url)
        assert err.value.code == code


async def test_names_are_checked_at_resolution() -> None:
    """A public-looking name that resolves to a private address is refused when connecting."""
    with pytest.raises(UrlRefused):
        await _GuardedResolver(UrlPolicy()).resolve("localhost", 443)
    found = await _GuardedResolver(UrlPolicy(allow_private=True)).resolve("localhost", 443)
    assert all(ipaddress.ip_address(r["host"]).is_loopback for r in found)


@pytest.mark.parametrize(("outcome", "verdict"), [
    (Outcome(status=200), Status.DELIVERED), (Outcome(status=204), Status.DELIVERED),
    (Outcome(status=301), Status.FAILED), (Outcome(status=400), Status.FAILED),
    (Outcome(status=401), Status.FAILED), (Outcome(status=404), Status.FAILED),
    (Outcome(status=408), None), (Outcome(status=429), None), (Outcome(status=500), None),
    (Outcome(status=503), None), (Outcome(error="timeout"), None),
    (Outcome(error="connection"), None), (Outcome(error="webhook_url_address"), Status.FAILED),
])
def test_classify(outcome: Outcome, verdict: Status | None) -> None:
    assert classify(outcome) is verdict


@given(st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=30,
                max_size=30))
def test_backoff_schedule(rands: list[float]) -> None:
    """A receiver that never answers: retries spread out as scheduled, each within the jitter
    band, and the delivery is given up within 24 h of the event, after the 6-hour retries."""
    d = new_delivery("f1", "s1", "submission.received", {}, T0)
    now, times = T0, []
    draws = iter(rands)
    while d.status is Status.PENDING:
        assert d.next_at >= now
        now = d.next_at
        times.append(now)
        d = after_attempt(replace(d, attempts=d.attempts + 1),
                          Outcome(status=503), now, lambda: next(draws))
    assert d.status is Status.FAILED
    assert d.last_error == "http_503"
    assert times[-1] - T0 <= timedelta(seconds=GIVE_UP_AFTER_S)
    assert times[-1] - T0 >= timedelta(seconds=GIVE_UP_AFTER_S - RETRY_DELAYS_S[-1] * 1.2)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    for n, gap in enumerate(gaps):
        nominal = RETRY_DELAYS_S[min(n, len(RETRY_DELAYS_S) - 1)]
        assert nominal * (1 - JITTER) <= gap <= nominal * (1 + JITTER)
    assert len(times) == len(gaps) + 1 <= 10


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def receiver(clock: ManualClock, request: pytest.FixtureRequest
                   ) -> AsyncIterator[WebhookReceiver]:
    secret, script = getattr(request, "param", (SECRET, (500,)))
    r = WebhookReceiver(secret, clock.now, script=script)
    await r.start()
    yield r
    await r.stop()


SECRET = new_secret()


def sender_for(url: str, secrets: tuple[str, ...] = (SECRET,), **kw: float) -> HttpSender:
    async def lookup(form_id: str) -> Endpoint | None:
        return Endpoint(url, secrets) if form_id == "f1" else None
    return HttpSender(lookup, UrlPolicy(allow_private=True), **kw)


async def test_delivered_once_despite_a_500(clock: ManualClock, receiver: WebhookReceiver,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    repo = MemoryDeliveries()
    d = new_delivery("f1", "s1", "submission.received", PAYLOAD, clock.now())
    await repo.add(d)
    async with sender_for(receiver.url, (SECRET, new_secret())) as send:  # rotated: [0] signs
        [first] = await deliver_due(repo, send, clock.now(), rand=lambda: 0.5)
        assert first.status is Status.PENDING
        assert first.last_error == "http_500"
        assert first.next_at == clock.now() + timedelta(seconds=30)
        assert await deliver_due(repo, send, clock.now()) == []  # not due yet
        clock.advance(31)
        [second] = await deliver_due(repo, send, clock.now())
        clock.advance(3600)
        assert await deliver_due(repo, send, clock.now()) == []
    assert second.status is Status.DELIVERED
    assert second.attempts == 2
    assert repo.rows[d.id] == second
    assert [a.answered for a in receiver.attempts] == [500, 200]
    assert all(a.refused is None for a in receiver.attempts)
    assert {a.msg_id for a in receiver.attempts} == {d.id}
    assert receiver.attempts[0].timestamp != receiver.attempts[1].timestamp
    assert list(receiver.accepted) == [d.id]
    event = receiver.accepted[d.id]
    assert event["type"] == "submission.received"
    assert event["data"] == PAYLOAD
    assert event["form_id"] == "f1"
    assert event["submission_id"] == "s1"
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hub."))
    assert d.id in logged
    for secret_thing in ("山田", "140-8715", SECRET, receiver.url, str(receiver.port)):
        assert secret_thing not in logged
    assert "山田" not in repr(second)


@pytest.mark.parametrize("receiver", [(new_secret(), ())], indirect=True)
async def test_wrong_secret_is_refused_and_not_retried(clock: ManualClock,
                                                        receiver: WebhookReceiver) -> None:
    repo = MemoryDeliveries()
    await repo.add(new_delivery("f1", "s1", "submission.received", PAYLOAD, clock.now()))
    async with sender_for(receiver.url) as send:
        [d] = await deliver_due(repo, send, clock.now())
    assert d.status is Status.FAILED
    assert d.last_error == "http_401"
    assert [a.refused for a in receiver.attempts] == ["webhook_bad_signature"]
    assert receiver.accepted == {}


async def test_old_delivery_refused_by_receiver(clock: ManualClock,
                                                receiver: WebhookReceiver) -> None:
    """A captured request replayed ten minutes later is refused (timestamp too old)."""
    body = b'{"type":"submission.received"}'
    headers = signed_headers(SECRET, "msg_replay", clock.now() - timedelta(seconds=600), body)
    async with sender_for(receiver.url) as send:
        session = send._get_session()
        async with session.post(receiver.url, data=body, headers=headers) as resp:
            assert resp.status == 401
    assert receiver.attempts[0].refused == "webhook_timestamp_too_old"


async def test_timeouts_connection_errors_and_policy(clock: ManualClock) -> None:
    slow = WebhookReceiver(SECRET, clock.now, delay_s=2.0)
    await slow.start()
    try:
        async with sender_for(slow.url, timeout_s=0.3) as send:
            d = new_delivery("f1", "s1", "submission.received", {}, clock.now())
            assert await send(d, clock.now()) == Outcome(error="timeout")
        closed = f"http://127.0.0.1:{free_port()}/x"
        async with sender_for(closed) as send:
            assert await send(d, clock.now()) == Outcome(error="connection")
        async with HttpSender(lambda _f: _endpoint(slow.url)) as strict:  # no allow_private
            assert await strict(d, clock.now()) == Outcome(error="webhook_url_address")
        async with sender_for(slow.url) as send:
            other = new_delivery("gone", "s1", "submission.received", {}, clock.now())
            assert await send(other, clock.now()) == Outcome(error="webhook_no_endpoint")
    finally:
        await slow.stop()
    assert len(slow.attempts) == 1  # the strict sender never reached it


async def _endpoint(url: str) -> Endpoint:
    return Endpoint(url, (SECRET,))


async def test_claims_are_exclusive_and_late_results_dropped(clock: ManualClock,
                                                             receiver: WebhookReceiver) -> None:
    """Two workers sharing one repository send each delivery once; a result recorded after
    the lease expired and another worker claimed the row does not overwrite the newer state."""
    receiver.script = []
    repo = MemoryDeliveries()
    ids = []
    for n in range(6):
        d = new_delivery("f1", f"s{n}", "submission.received", {"n": n}, clock.now())
        ids.append(d.id)
        await repo.add(d)
    async with sender_for(receiver.url) as send:
        rounds = await asyncio.gather(deliver_due(repo, send, clock.now(), limit=4),
                                      deliver_due(repo, send, clock.now(), limit=4))
    assert sorted(d.id for r in rounds for d in r) == sorted(ids)
    assert sorted(a.msg_id for a in receiver.attempts) == sorted(ids)
    late = new_delivery("f1", "s9", "submission.received", {}, clock.now())
    await repo.add(late)
    [claim1] = await repo.claim_due(clock.now(), 10, 60)
    clock.advance(61)
    [claim2] = await repo.claim_due(clock.now(), 10, 60)
    assert claim2.attempts == claim1.attempts + 1
    assert not await repo.record(after_attempt(claim1, Outcome(status=500), clock.now(),
                                               lambda: 0.0))
    assert await repo.record(after_attempt(claim2, Outcome(status=200), clock.now(),
                                           lambda: 0.0))
    assert repo.rows[late.id].status is Status.DELIVERED


async def test_claim_sql_skips_locked_rows_on_postgresql(postgres_url: str) -> None:
    """The documented claim statement: two hub processes claiming at once get disjoint rows and
    neither waits for the other; claimed rows are leased, then due again after the lease."""
    schema = "forms_wh_" + secrets.token_hex(4)
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    admin = create_async_engine(url)
    async with admin.begin() as c:
        await c.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.begin() as c:
            await c.execute(text(
                "CREATE TABLE forms_webhook_deliveries (id text PRIMARY KEY, status text NOT NULL,"
                " next_at timestamptz NOT NULL, attempts int NOT NULL DEFAULT 0)"))
            rows = [{"id": f"d{n}", "status": "pending", "at": T0 - timedelta(seconds=n)}
                    for n in range(8)]
            rows += [{"id": "done", "status": "delivered", "at": T0},
                     {"id": "later", "status": "pending", "at": T0 + timedelta(seconds=5)}]
            await c.execute(text("INSERT INTO forms_webhook_deliveries (id, status, next_at)"
                                 " VALUES (:id, :status, :at)"), rows)

        def args(now: datetime, limit: int) -> dict[str, object]:
            return {"now": now, "lease_until": now + timedelta(seconds=60), "limit": limit}

        async with engine.connect() as a, engine.connect() as b:
            tx_a = await a.begin()
            got_a = (await a.execute(text(CLAIM_SQL), args(T0, 3))).all()
            tx_b = await b.begin()  # a still holds its row locks here
            got_b = (await asyncio.wait_for(b.execute(text(CLAIM_SQL), args(T0, 10)), 5)).all()
            await tx_a.commit()
            await tx_b.commit()
        ids_a, ids_b = {r.id for r in got_a}, {r.id for r in got_b}
        assert len(ids_a) == 3
        assert ids_a.isdisjoint(ids_b)
        assert ids_a | ids_b == {f"d{n}" for n in range(8)}
        assert {r.attempts for r in (*got_a, *got_b)} == {1}
        async with engine.begin() as c:
            assert (await c.execute(text(CLAIM_SQL), args(T0, 10))).all() == []
            late = (await c.execute(text(CLAIM_SQL), args(T0 + timedelta(seconds=61), 20))).all()
        assert {r.id for r in late} == {f"d{n}" for n in range(8)} | {"later"}
        assert {r.attempts for r in late if r.id != "later"} == {2}
    finally:
        await engine.dispose()
        async with admin.begin() as c:
            await c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()
