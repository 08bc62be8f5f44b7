"""Rollups kept at ingest equal an independent recount of the raw events (issue 15, "Must show").

Random event logs (made by the edge's own ``decide``: transfers, absences, recalls, cancellations,
check-ins, counters opened and closed, days closed by staff and by the clock, midnight crossings,
starts around March 31 so fiscal years change) are delivered to a real ``Ingest`` in random
batches with duplicates, replays and gaps; the ``stats_rollup`` rows must equal a recount written
here ticket by ticket (not event by event, as ``hub.stats.rollup`` does), and ``madoguchi hub
stats rebuild`` must give the same rows again.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from stats_support import Step, batches, event_log, steps
from store_support import hub_store

from edge.protocol import Envelope, site_topic
from hub.ingest import Ingest
from hub.ingest.mqtt import MqttSettings
from hub.stats.rebuild import rebuild
from hub.stats.rollup import bucket
from hub.stats.tables import stats_rollup
from hub.store import HubStore

JST = ZoneInfo("Asia/Tokyo")
PREFIX = "madoguchi/v1"
Cell = list[float]  # n, total, max


# --- the recount: per ticket, per counter, per day ------------------------------------------

def _secs(a: str, b: str) -> float:
    return max((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 0.0)


def _hour(at: str) -> int:
    return datetime.fromisoformat(at).astimezone(JST).hour


def recount(envs: list[Envelope]) -> dict[tuple[Any, ...], Cell]:
    cells: dict[tuple[Any, ...], Cell] = defaultdict(lambda: [0, 0.0, 0.0])

    def put(key: tuple[Any, ...], seconds: float = 0.0) -> None:
        c = cells[key]
        c[0] += 1
        c[1] += seconds
        c[2] = max(c[2], seconds)

    # when each business day closed (DayClosed, else the last event before the next DayOpened)
    closed_at: dict[int, str] = {}  # seq of the day's DayOpened -> close time
    opened_seq = None
    prev_at = None
    for e in envs:
        if e.type == "DayOpened":
            if opened_seq is not None and opened_seq not in closed_at and prev_at is not None:
                closed_at[opened_seq] = prev_at
            opened_seq = e.seq
        elif e.type == "DayClosed" and opened_seq is not None and opened_seq not in closed_at:
            closed_at[opened_seq] = e.at
        prev_at = e.at
    openings = [e.seq for e in envs if e.type == "DayOpened"]

    def opening(seq: int) -> int | None:
        return max((s for s in openings if s <= seq), default=None)

    # tickets: every event naming one, grouped
    by_ticket: dict[str, list[Envelope]] = defaultdict(list)
    for e in envs:
        if e.type.startswith("Ticket"):
            by_ticket[str(e.data["ticket"])].append(e)
    for evs in by_ticket.values():
        first = evs[0]
        assert first.type == "TicketIssued"
        day, channel = first.day, first.data["channel"]
        service, stage, queued = first.data["service"], 1, first.at
        put((day, "issued", _hour(first.at), service, "", "", channel, -1))
        call: Envelope | None = None
        ended = checked = called_ever = False
        for e in evs[1:]:
            staff = e.data.get("staff", "")
            counter = e.data.get("counter") or ""
            if e.type == "TicketCalled" and call is None:
                call, called_ever = e, True
                w = _secs(queued, e.at)
                m = "wait1" if stage == 1 else "wait2"
                put((day, m, _hour(e.at), service, counter, staff, "", -1), w)
                put((day, m + "_hist", -1, service, "", "", "", bucket(w)))
            elif e.type in ("TicketCalled", "TicketRecalled"):
                put((day, "recall", -1, service, counter, staff, "", -1))
            elif e.type == "TicketCheckedIn" and not checked:
                checked = True
                put((day, "checkin", -1, service, "", "", channel, -1))
            elif e.type == "TicketAbsent":
                put((day, "absent", -1, service, counter, staff, channel, -1))
            elif e.type == "TicketCancelled" and not ended:
                ended = True
                put((day, "cancel", -1, service, "", "", channel, -1))
            elif e.type in ("TicketFinished", "TicketTransferred") and not ended:
                if call is not None:
                    c_staff, c_counter = call.data.get("staff", ""), call.data["counter"]
                    put((day, "handling", _hour(call.at), service, c_counter, c_staff, "", -1),
                        _secs(call.at, e.at))
                    if e.type == "TicketFinished":
                        put((day, "served", -1, service, c_counter, c_staff, "", -1))
                if e.type == "TicketFinished":
                    ended = True
                    continue
                put((day, "transfer", -1, service,
                     counter or (call.data["counter"] if call else ""), staff, "", -1))
                service, stage, queued, call = e.data["to_service"], stage + 1, e.at, None
        start = opening(first.seq)
        if not ended and start in closed_at:
            put((day, "expired", -1, service, "", "", channel, -1))
            if channel in ("web", "reservation") and not checked and not called_ever:
                put((day, "noshow", -1, service, "", "", channel, -1))

    # counters: the first opening until its closing, or until the day's close
    open_since: dict[str, Envelope] = {}

    def credit(until: str) -> None:
        for cid, o in sorted(open_since.items()):
            put((o.day, "counter_open", -1, "", cid, o.data.get("staff", ""), "", -1),
                _secs(o.at, until))
        open_since.clear()

    day_open, prev_at = False, None
    for e in envs:
        if e.type == "CounterOpened":
            open_since.setdefault(e.data["counter"], e)
        elif e.type == "CounterClosed" and e.data["counter"] in open_since:
            o = open_since.pop(e.data["counter"])
            put((o.day, "counter_open", -1, "", e.data["counter"], o.data.get("staff", ""), "",
                 -1), _secs(o.at, e.at))
        elif e.type == "DayOpened":
            if day_open and prev_at is not None:
                credit(prev_at)
            open_since.clear()
            day_open = True
        elif e.type == "DayClosed" and day_open:
            credit(e.at)
            day_open = False
        prev_at = e.at
    return dict(cells)


# --- delivering through a real ingest --------------------------------------------------------

def _groups(payloads: list[bytes], rnd: random.Random) -> Iterator[list[bytes]]:
    """Each batch in order, with duplicates, late replays of earlier ones and a skipped batch
    delivered later (a gap the ingest must hold, not count); then the edge's replay of all."""
    held: list[bytes] = []
    out: list[bytes] = []
    for p in payloads:
        roll = rnd.random()
        if roll < 0.15:
            held.append(p)  # lost for now
            continue
        out.append(p)
        if roll > 0.8:
            out.append(p)  # a duplicate
        if roll > 0.9 and out:
            out.append(rnd.choice(out))  # an old batch again
        if held and rnd.random() < 0.5:
            out.append(held.pop(0))
    out.extend(held)
    out.extend(payloads)  # the edge replays from the last ack
    i = 0
    while i < len(out):
        n = rnd.randint(1, 4)
        yield out[i:i + n]
        i += n


async def _ingest(store: HubStore, site: str, envs: list[Envelope], seed: int) -> int:
    """Deliver ``envs``; the hub restarts once on the way (a new ``Ingest``: its tallies are
    rebuilt from the store, as after a start). The duplicates the ingests saw."""
    rnd = random.Random(seed)
    sizes = iter(lambda: rnd.randint(1, 9), None)
    topic = site_topic(PREFIX, site, "events")
    groups = list(_groups(batches(site, envs, sizes), rnd))
    restart = rnd.randint(0, len(groups))
    duplicates = 0
    for part in (groups[:restart], groups[restart:]):
        ingest = Ingest(store, MqttSettings.from_url("mqtt://127.0.0.1:1"), PREFIX)
        for group in part:
            await ingest._handle([(topic, p) for p in group])
        duplicates += ingest.stats.duplicates
    return duplicates


async def _rows(store: HubStore, site: str) -> dict[tuple[Any, ...], Cell]:
    t = stats_rollup.c
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(stats_rollup).where(t.site == site))).mappings()
        return {(r["day"], r["measure"], r["hour"], r["service"], r["counter"], r["staff"],
                 r["channel"], r["bucket"]): [r["n"], r["total"], r["max_s"]] for r in rows}


def _same(live: dict[tuple[Any, ...], Cell], want: dict[tuple[Any, ...], Cell]) -> None:
    assert sorted(live) == sorted(want)
    for key, (n, total, mx) in want.items():
        got = live[key]
        assert got[0] == n, key
        assert got[1] == pytest.approx(total, abs=1e-6), key
        assert got[2] == pytest.approx(mx, abs=1e-6), key


_SEQ = itertools.count()


async def _check(store: HubStore, start: datetime, plan: list[Step], seed: int) -> None:
    site = f"prop-{next(_SEQ):05d}"
    envs = event_log(site, start, plan)
    duplicates = await _ingest(store, site, envs, seed)
    async with store.read() as tx:
        row = await tx.site(site)
    if envs:
        assert row is not None
        assert row["last_seq_contiguous"] == envs[-1].seq
    want = recount(envs)
    _same(await _rows(store, site), want)
    assert duplicates > 0 or len(envs) < 3
    await rebuild(store, [site])
    _same(await _rows(store, site), want)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=steps(), seed=st.integers(0, 10_000))
def test_rollups_equal_a_recount(case: tuple[datetime, list[Step]], seed: int,
                                 loop: asyncio.AbstractEventLoop, store_sqlite: HubStore) -> None:
    start, plan = case
    loop.run_until_complete(_check(store_sqlite, start, plan, seed))


@pytest.fixture
def store_sqlite(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[HubStore]:
    cm = hub_store("sqlite", tmp_path)
    db = loop.run_until_complete(cm.__aenter__())
    yield db.store
    loop.run_until_complete(cm.__aexit__(None, None, None))


def test_fiscal_year_and_midnight_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """One long log across March 31 → April 1 and a midnight, on PostgreSQL (its upsert and
    the rebuild's COPY), through the same ingest."""
    rnd = random.Random(7)
    plan: list[Step] = []
    for _ in range(400):
        plan.append(rnd.choice([Step("wait", seconds=rnd.randint(1, 900)),
                                *[Step("cmd", cmd=steps_cmd(rnd), staff=rnd.choice(("", "sato")))
                                  for _ in range(6)]]))
        if rnd.random() < 0.02:
            plan.append(Step(rnd.choice(("night", "midnight"))))

    async def go() -> None:
        async with hub_store("postgresql", tmp_path, postgres_url, tag="stats") as db:
            await _check(db.store, datetime(2026, 3, 31, 8, 30, tzinfo=JST), plan, 3)
            got = await _rows(db.store, f"prop-{next(_SEQ) - 1:05d}")
            assert {k[0] for k in got} >= {"2026-03-31", "2026-04-01"}

    asyncio.run(go())


def steps_cmd(rnd: random.Random) -> Any:
    from edge.domain.commands import (
        CallNext,
        CloseCounter,
        Finish,
        Issue,
        MarkAbsent,
        OpenCounter,
        Recall,
        Transfer,
    )

    c = rnd.choice(("1", "2", "3"))
    return rnd.choice([Issue(rnd.choice(("A", "B")), rnd.choice(("kiosk", "web"))),
                       Issue("A"), CallNext(c), CallNext(c), Finish(c), Recall(c), MarkAbsent(c),
                       Transfer(c, to_service="C"), OpenCounter(c), CloseCounter(c)])
