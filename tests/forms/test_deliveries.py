"""The SQL webhook outbox on SQLite and on the real PostgreSQL: a status change writes its event
in the same transaction; a real receiver gets it correctly signed exactly once although its
first answer is a 500; bodies are sealed at rest; a late record from an expired lease changes
nothing; two concurrent claimers never take one row twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from forms_http_support import WebhookReceiver
from forms_staff_support import add_form, add_submission, make_ctx
from sqlalchemy import select
from store_support import hub_store

from hub.forms import review, webhook
from hub.forms.deliveries import SqlDeliveries, deliver_round, enqueue, sender_for
from hub.forms.tables import form_deliveries

KINDS = ["sqlite", "postgresql"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pg(kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_url") if kind == "postgresql" else None


async def test_signed_delivery_exactly_once_despite_a_500(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    secret = webhook.new_secret()
    async with hub_store(kind, tmp_path, _pg(kind, request), tag="fdl") as db:
        ctx = make_ctx(db.store, tmp_path)
        receiver = WebhookReceiver([secret], ctx.clock, script=[500])
        await receiver.start()
        try:
            form_id = await add_form(ctx, webhook_url=receiver.url, secrets_=[secret])
            sid, ref = await add_submission(ctx, form_id)
            async with db.store.read() as tx:
                assert (await tx.conn.execute(select(form_deliveries))).first() is None
            form_row = await _form(ctx, form_id)
            await review.change(ctx, form_row, sid, "start", "", "staff-1", None)
            async with db.store.read() as tx:
                rows = (await tx.conn.execute(select(form_deliveries))).all()
            assert len(rows) == 1
            assert rows[0].status == "pending"
            assert ref not in rows[0].body
            assert "in_review" not in rows[0].body
            repo = SqlDeliveries(ctx)
            sender = sender_for(ctx, repo)
            try:
                first = await deliver_round(ctx, repo, sender)
                assert [d.status for d in first] == [webhook.Status.PENDING]
                assert first[0].last_error == "http_500"
                assert await deliver_round(ctx, repo, sender) == []  # not due yet
                ctx.clock.move(seconds=40)  # type: ignore[attr-defined]
                second = await deliver_round(ctx, repo, sender)
                assert [d.status for d in second] == [webhook.Status.DELIVERED]
                ctx.clock.move(hours=30)  # type: ignore[attr-defined]
                assert await deliver_round(ctx, repo, sender) == []
            finally:
                await sender.close()
            assert [a.answered for a in receiver.attempts] == [500, 200]
            assert all(a.refused is None for a in receiver.attempts)
            assert len({a.msg_id for a in receiver.attempts}) == 1
            (event,) = receiver.accepted.values()
            assert event["type"] == "submission.status_changed"
            assert event["submission_id"] == sid
            assert event["data"] == {"reference": ref, "from": "received",
                                     "status": "in_review"}
        finally:
            await receiver.stop()


async def _form(ctx: object, form_id: str) -> object:
    from hub.forms import service
    return await service.get(ctx, form_id)  # type: ignore[arg-type]


async def test_claims_are_exclusive_and_records_conditional(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    async with hub_store(kind, tmp_path, _pg(kind, request), tag="fdc") as db:
        ctx = make_ctx(db.store, tmp_path)
        form_id = await add_form(ctx)
        now = ctx.clock()
        async with db.store.begin() as tx:
            for i in range(30):
                await enqueue(tx, ctx, form_id, f"s{i}", "submission.received", {"i": i}, now)
        repo = SqlDeliveries(ctx)
        got = await asyncio.gather(*(repo.claim_due(now, 10, 60) for _ in range(4)))
        ids = [d.id for batch in got for d in batch]
        assert len(ids) == len(set(ids)) == 30
        assert all(d.attempts == 1 for batch in got for d in batch)
        late = got[0][0]
        # the lease expires, another process claims it again (attempt 2)
        again = await repo.claim_due(now + timedelta(seconds=61), 50, 60)
        assert late.id in {d.id for d in again}
        assert not await repo.record(replace(late, status=webhook.Status.DELIVERED))
        newer = next(d for d in again if d.id == late.id)
        assert await repo.record(replace(newer, status=webhook.Status.FAILED,
                                         last_error="http_410"))
        assert (await repo.endpoint(form_id)) is None  # no webhook on this form


async def test_jobs_deliver_for_the_apps_lifetime(tmp_path: Path) -> None:
    """``start_jobs``: the loops start with the app, deliver what is due at once, and stop
    (cancelled and awaited) with it."""
    from aiohttp import web

    from hub.forms.jobs import start_jobs

    secret = webhook.new_secret()
    async with hub_store("sqlite", tmp_path) as db:
        ctx = make_ctx(db.store, tmp_path)
        receiver = WebhookReceiver([secret], ctx.clock)
        await receiver.start()
        try:
            form_id = await add_form(ctx, webhook_url=receiver.url, secrets_=[secret])
            sid, _ref = await add_submission(ctx, form_id)
            await review.change(ctx, await _form(ctx, form_id), sid, "complete", "", "s", None)
            app = web.Application()
            start_jobs(app, ctx)
            runner = web.AppRunner(app)
            await runner.setup()
            try:
                for _ in range(100):
                    if receiver.accepted:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await runner.cleanup()
            (event,) = receiver.accepted.values()
            assert event["data"]["status"] == "completed"
        finally:
            await receiver.stop()
