"""Sync fault tests (issue 5 "Must show"): whatever fails between an edge and the hub, the hub
ends up with the edge's event log exactly: same seqs, same ids, none missing, none twice.

Each test runs its own mosquitto (``sync_support.Mosquitto``: no persistence, tcp_nodelay), its
own topic prefix and site id, real ``madoguchi edge run`` / ``madoguchi hub run`` processes where
a process is killed, and ends with ``assert_hub_matches_edge``. Figures (outage answers, catch-up
time) are printed, not asserted: the assertions are about what arrived, and that the queue kept
answering during the fault (a request without an answer within 5 s counts as a failure).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import free_port
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text
from staff_support import staff_cookie, staff_cookie_at
from support import morning
from sync_support import (
    COUNTERS,
    EdgeProcess,
    HubProcess,
    Load,
    Mosquitto,
    TcpProxy,
    assert_hub_matches_edge,
    edge_counts,
    hub_rows,
    hub_site,
    site_toml,
    summary,
    unique_site,
    until,
    wait_synced,
)

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import ManualClock, SystemClock
from edge.domain.views import service_rows
from edge.embedded_broker import start_embedded_broker
from edge.protocol import site_topic
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, SyncSettings
from edge.sync.outbox import Limits, read_batch
from hub.app import Hub, start_hub
from hub.store import HubStore
from hub.web.api import SETTINGS

OUTAGE_S = 60.0  # issue 5: "broker stopped for 60 s under load"
CUT_S = 20.0
RATE = 10.0  # tickets per second through the edge's HTTP API (counters call and finish too)


def new_prefix() -> str:
    return f"test/faults/{uuid.uuid4().hex[:12]}"


@dataclass
class HubDb:
    url: str
    schema: str | None = None


@pytest.fixture
def sqlite_hub(tmp_path: Path) -> HubDb:
    return HubDb(f"sqlite:///{tmp_path}/hub/hub.db")


@pytest.fixture
async def pg_hub(postgres_url: str) -> AsyncIterator[HubDb]:
    """The real PostgreSQL, in a schema of this test's own (dropped afterwards)."""
    db = HubDb(postgres_url, f"faults_{uuid.uuid4().hex[:12]}")
    yield db
    store = await HubStore.open(db.url, upgrade=False)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
    finally:
        await store.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path).start()
    yield m
    m.stop()


async def hub_in_process(db: HubDb, mqtt_url: str, prefix: str) -> Hub:
    """The hub in the test's loop; its broker session expires 5 min after it goes away."""
    sep = "&" if "?" in mqtt_url else "?"
    hub = await start_hub(db.url, f"{mqtt_url}{sep}session_expiry=300", prefix, port=0,
                          schema=db.schema)
    assert hub.ingest is not None
    assert await hub.ingest.wait_connected(15), "hub did not connect to the broker"
    return hub


async def contiguous(db: HubDb, site: str) -> int:
    store = await HubStore.open(db.url, schema=db.schema, upgrade=False)
    try:
        return await store.contiguous_seq(site)
    finally:
        await store.close()


def report(name: str, **figures: Any) -> None:
    print(json.dumps({"test": name, **figures}, ensure_ascii=False))


# --- 1. broker stopped for 60 s under load -------------------------------------------------------

@pytest.mark.slow
async def test_broker_stopped_for_60s_under_load(tmp_path: Path, broker: Mosquitto,
                                                 sqlite_hub: HubDb, pg_hub: HubDb) -> None:
    """Two sites on one broker, one hub on SQLite and one on PostgreSQL (their own prefixes):
    one 60 s outage covers both stores. The edges keep issuing and calling throughout; after
    the broker comes back (empty: no persistence) every event arrives once."""
    rigs: list[tuple[HubDb, Hub, EdgeProcess, Load]] = []
    try:
        for db in (sqlite_hub, pg_hub):
            prefix, site = new_prefix(), unique_site("outage")
            hub = await hub_in_process(db, broker.url, prefix)
            edge = EdgeProcess(tmp_path, site, broker.url, prefix)
            rigs.append((db, hub, edge, Load(edge.base, RATE)))
            edge.start()
        for _db, _hub, edge, load in rigs:
            await edge.ready()
            await load.start()
        for db, _hub, edge, _load in rigs:
            await until(partial(_at_least, db, edge.site, 20), "first events at the hub")
        before = [await contiguous(db, edge.site) for db, _h, edge, _l in rigs]
        t_stop = time.monotonic()
        broker.stop()
        await asyncio.sleep(OUTAGE_S)
        t_back = time.monotonic()
        during_outage = [edge_counts(edge.db)[0] for _d, _h, edge, _l in rigs]
        broker.start()
        await asyncio.sleep(3)  # still under load while everything reconnects
        for _db, _hub, _edge, load in rigs:
            await load.stop()
        for (db, hub, edge, load), hub_before, edge_at_back in zip(
                rigs, before, during_outage, strict=True):
            answers = load.window(t_stop, t_back)
            assert len(answers) >= RATE * OUTAGE_S * 0.9, "the load generator itself stalled"
            assert all(a.status == 201 for a in answers), summary(answers)
            assert edge_at_back > hub_before + RATE * OUTAGE_S, "no events during the outage"
            took = await wait_synced(edge.db, db.url, edge.site, schema=db.schema, timeout=90)
            n = await assert_hub_matches_edge(edge.db, db.url, edge.site, schema=db.schema)
            assert hub.ingest is not None
            report("broker_stopped_60s", db=hub.store.dialect, events=n,
                   outage_issues=summary(answers), calls=load.calls,
                   caught_up_after_restart_s=round(time.monotonic() - t_back, 1),
                   wait_synced_s=round(took, 1), hub_duplicates=hub.ingest.stats.duplicates)
    finally:
        for _db, hub, edge, load in rigs:
            await load.stop()
            edge.stop()
            await hub.stop()


async def _at_least(db: HubDb, site: str, n: int) -> bool:
    return await contiguous(db, site) >= n


# --- 2. hub killed and restarted under load ------------------------------------------------------

@pytest.mark.slow
async def test_hub_sigkilled_and_restarted_under_load(tmp_path: Path, broker: Mosquitto,
                                                      sqlite_hub: HubDb) -> None:
    prefix, site = new_prefix(), unique_site("hubkill")
    hub_mqtt = f"{broker.url}?session_expiry=300"
    hub = HubProcess(tmp_path, sqlite_hub.url, hub_mqtt, prefix)
    edge = EdgeProcess(tmp_path, site, broker.url, prefix)
    load = Load(edge.base, RATE)
    restarted: HubProcess | None = None
    try:
        hub.start()
        await hub.ready()
        edge.start()
        await edge.ready()
        await load.start()
        await until(lambda: _at_least(sqlite_hub, site, 30), "events at the hub")
        hub.kill()  # SIGKILL: a transaction or a group of PUBACKed messages may be lost
        at_kill = await contiguous(sqlite_hub, site)
        await asyncio.sleep(5)
        restarted = HubProcess(tmp_path, sqlite_hub.url, hub_mqtt, prefix)
        restarted.start()
        await restarted.ready()
        await asyncio.sleep(3)
        await load.stop()
        assert all(a.status == 201 for a in load.issues), summary(load.issues)
        assert edge_counts(edge.db)[0] > at_kill + 5 * RATE, "no events while the hub was down"
        took = await wait_synced(edge.db, sqlite_hub.url, site, timeout=60)
        n = await assert_hub_matches_edge(edge.db, sqlite_hub.url, site)
        view = await hub_site(restarted.base, site, await staff_cookie_at(sqlite_hub.url))
        assert view is not None
        assert view["last_seq"] == n
        assert view["online"] is True
        report("hub_sigkilled", events=n, issues=summary(load.issues),
               wait_synced_s=round(took, 1))
    finally:
        await load.stop()
        edge.stop()
        hub.stop()
        if restarted is not None:
            restarted.stop()


# --- 3. edge killed with SIGKILL mid-batch -------------------------------------------------------

BACKLOG = 12_000


def make_backlog(db: Path, site: str, n: int) -> int:
    """An edge database holding ``n`` unsent events (a long outage's worth), made by the real
    writer: counters opened and closed, tickets issued, called and finished."""
    config = parse_site_config(site_toml(site))
    writer = Writer(EventStore(db, site, durable=False), config, SystemClock(config.timezone))
    try:
        i = 0
        while writer.store.last_seq() < n:
            step = i % 8
            if step < 4:
                writer.execute_sync(c.OpenCounter("3") if step % 2 == 0 else c.CloseCounter("3"))
            elif step == 4:
                writer.execute_sync(c.OpenCounter("1"))
                writer.execute_sync(c.Issue("AB"[i % 2]))
            elif step == 5:
                writer.execute_sync(c.CallNext("1"))
            else:
                writer.execute_sync(c.Finish("1"))
            i += 1
        return writer.store.last_seq()
    finally:
        writer.close()


@pytest.mark.slow
async def test_edge_sigkilled_mid_batch(tmp_path: Path, broker: Mosquitto,
                                        sqlite_hub: HubDb) -> None:
    """A backlog is streaming (4 batches of 200 in flight) while tickets are issued; SIGKILL;
    restart on the same database: what the hub acked stays acked, the rest is resent."""
    prefix, site = new_prefix(), unique_site("edgekill")
    edge = EdgeProcess(tmp_path, site, broker.url, prefix)
    backlog = await asyncio.to_thread(make_backlog, edge.db, site, BACKLOG)
    hub = await hub_in_process(sqlite_hub, broker.url, prefix)
    load = Load(edge.base, RATE)
    again: EdgeProcess | None = None
    try:
        edge.start()
        await until(lambda: _at_least(sqlite_hub, site, 1500), "the backlog streaming", every=0.01)
        edge.kill()
        at_kill = await contiguous(sqlite_hub, site)
        last, outbox = edge_counts(edge.db)
        assert 0 < at_kill < backlog <= last, "not killed mid-stream"
        assert outbox > 0
        again = EdgeProcess(tmp_path, site, broker.url, prefix, db=edge.db)
        again.start()
        await again.ready()
        load = Load(again.base, RATE)
        await load.start()
        await asyncio.sleep(3)
        await load.stop()
        assert all(a.status == 201 for a in load.issues), summary(load.issues)
        took = await wait_synced(again.db, sqlite_hub.url, site, timeout=60)
        n = await assert_hub_matches_edge(again.db, sqlite_hub.url, site)
        assert hub.ingest is not None
        assert hub.ingest.stats.events_stored == n  # each stored once (re-deliveries skipped)
        report("edge_sigkilled_mid_batch", events=n, backlog=backlog, hub_at_kill=at_kill,
               outbox_at_kill=outbox, hub_duplicates=hub.ingest.stats.duplicates,
               wait_synced_s=round(took, 1))
    finally:
        await load.stop()
        edge.stop()
        if again is not None:
            again.stop()
        await hub.stop()


# --- 4. network cut between edge and broker ------------------------------------------------------

@pytest.mark.slow
async def test_network_cut_between_edge_and_broker(tmp_path: Path, broker: Mosquitto,
                                                   sqlite_hub: HubDb) -> None:
    """The edge reaches the broker through a proxy that resets the connection and refuses new
    ones for 20 s; broker and hub stay up and see the site go offline (last will) and back."""
    prefix, site = new_prefix(), unique_site("netcut")
    proxy = await TcpProxy(broker.port).start()
    hub = await hub_in_process(sqlite_hub, broker.url, prefix)
    edge = EdgeProcess(tmp_path, site, proxy.url, prefix)
    load = Load(edge.base, RATE)
    try:
        edge.start()
        await edge.ready()
        await load.start()
        await until(lambda: _online(hub, site, True), "site online at the hub")
        await until(lambda: _at_least(sqlite_hub, site, 20), "events at the hub")
        t_cut = time.monotonic()
        await proxy.cut()
        await until(lambda: _online(hub, site, False), "the last will at the hub", timeout=10)
        at_cut = await _settled(sqlite_hub, site)  # what crossed before the cut is stored
        await asyncio.sleep(max(0.0, CUT_S - (time.monotonic() - t_cut)))
        assert await contiguous(sqlite_hub, site) == at_cut, "events passed the cut"
        assert edge_counts(edge.db)[0] > at_cut + RATE * (CUT_S - 2), "no events in the cut"
        t_restore = time.monotonic()
        await proxy.restore()
        await asyncio.sleep(2)
        await load.stop()
        answers = load.window(t_cut, t_restore)
        assert all(a.status == 201 for a in answers), summary(answers)
        took = await wait_synced(edge.db, sqlite_hub.url, site, timeout=60)
        n = await assert_hub_matches_edge(edge.db, sqlite_hub.url, site)
        await until(lambda: _online(hub, site, True), "site online again")
        report("network_cut_20s", events=n, cut_issues=summary(answers),
               caught_up_after_restore_s=round(time.monotonic() - t_restore, 1),
               wait_synced_s=round(took, 1), proxy_connections=proxy.connections)
    finally:
        await load.stop()
        edge.stop()
        await proxy.close()
        await hub.stop()


async def _settled(db: HubDb, site: str) -> int:
    """The hub's contiguous seq once it stayed the same for a second."""
    last = [-1]

    async def same() -> bool:
        now = await contiguous(db, site)
        settled, last[0] = now == last[0], now
        return settled

    await until(same, "the hub's seq to settle", timeout=15, every=1.0)
    return last[0]


_STAFF: dict[int, dict[str, str]] = {}


async def _staff(hub: Hub) -> dict[str, str]:
    """A staff session on this hub (``/api/sites/*`` needs one), made once per hub."""
    if id(hub) not in _STAFF:
        _STAFF[id(hub)] = await staff_cookie(hub.store, hub.runner.app[SETTINGS])
    return _STAFF[id(hub)]


async def _online(hub: Hub, site: str, online: bool) -> bool:
    view = await hub_site(hub.url, site, await _staff(hub))
    return view is not None and view["online"] is online


# --- 5. duplicated and reordered delivery --------------------------------------------------------

class SitePublisher:
    """Publishes on a site's events topic as the site would (a plain paho client)."""

    def __init__(self, port: int, prefix: str, site: str) -> None:
        self.topic = site_topic(prefix, site, "events")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"forger-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, payload: bytes) -> None:
        self.client.publish(self.topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def batches(store: EventStore, size: int, *, replay: bool = False) -> list[bytes]:
    """The edge's log as the relay would send it, ``size`` events per batch."""
    out: list[bytes] = []
    after, last = 0, store.last_seq()
    while after < last:
        b = read_batch(store, after, Limits(events=size), replay=True, upto=last)
        assert b is not None
        payload = b.payload if replay else b.payload.replace(b'"replay":true', b'"replay":false')
        out.append(payload)
        after = b.last
    return out


async def _ticket_traffic(writer: Writer, n: int) -> None:
    for i in range(n):
        await writer.execute(c.Issue("AB"[i % 2]))
        await writer.execute(c.CallNext(COUNTERS[i % 3]))
        await writer.execute(c.Finish(COUNTERS[i % 3]))


async def test_duplicated_and_reordered_delivery(tmp_path: Path, broker: Mosquitto,
                                                 sqlite_hub: HubDb) -> None:
    """Batches of the site's real log published again, shuffled, duplicated, reversed inside,
    marked as replay, ahead of a gap, racing the live relay; then one forged event reusing a
    stored seq with another id: the hub stores each event once and keeps the original."""
    prefix, site = new_prefix(), unique_site("dup")
    config = parse_site_config(site_toml(site))
    writer = Writer(EventStore(tmp_path / "edge.db", site), config, SystemClock())
    hub = await hub_in_process(sqlite_hub, broker.url, prefix)
    forger = SitePublisher(broker.port, prefix, site)
    sync: SyncClient | None = None
    rnd = random.Random(5)
    try:
        for cid in COUNTERS:
            await writer.execute(c.OpenCounter(cid))
        await _ticket_traffic(writer, 40)
        early = batches(writer.store, 20)
        # ahead of a gap, out of order and twice, before the edge itself says anything
        for i in (5, 2, 5, 4, 2):
            forger.publish(early[i])
        assert hub.ingest is not None
        await until(lambda: _stored(hub, 60), "forged batches stored")
        assert await contiguous(sqlite_hub, site) == 0  # seq 1 missing: nothing acked yet
        sync = SyncClient(writer, config, broker.url, prefix=prefix, client_id=f"edge-{site}",
                          settings=SyncSettings(session_expiry_s=60, reconnect_max_s=2))
        await sync.start()
        live = asyncio.create_task(_ticket_traffic(writer, 40))
        all_now = batches(writer.store, 17)
        shuffled = all_now + rnd.sample(all_now, len(all_now))
        rnd.shuffle(shuffled)
        for payload in shuffled:
            forger.publish(payload)
        for payload in batches(writer.store, 50, replay=True)[::-1]:
            forger.publish(payload)
        reversed_inside = json.loads(all_now[0])
        reversed_inside["events"].reverse()
        forger.publish(json.dumps(reversed_inside).encode())
        await live
        took = await wait_synced(tmp_path / "edge.db", sqlite_hub.url, site, timeout=60)
        n = await assert_hub_matches_edge(tmp_path / "edge.db", sqlite_hub.url, site)
        stats = hub.ingest.stats
        assert stats.events_stored == n  # every event inserted exactly once
        assert stats.duplicates > n  # the re-deliveries did arrive, and were skipped
        forged = json.loads(all_now[0])
        forged["events"] = [{**forged["events"][2], "id": "forged-0000"}]
        forger.publish(json.dumps(forged).encode())
        await until(lambda: _conflicts(hub), "the forged event refused")
        assert await assert_hub_matches_edge(tmp_path / "edge.db", sqlite_hub.url, site) == n
        report("duplicated_reordered", events=n, hub_duplicates=stats.duplicates,
               hub_conflicts=stats.conflicts, replays_requested=stats.replays_requested,
               wait_synced_s=round(took, 1))
    finally:
        if sync is not None:
            await sync.stop()
        forger.close()
        writer.close()
        await hub.stop()


async def _conflicts(hub: Hub) -> bool:
    assert hub.ingest is not None
    return hub.ingest.stats.conflicts >= 1


async def _stored(hub: Hub, n: int) -> bool:
    assert hub.ingest is not None
    return hub.ingest.stats.events_stored >= n


# --- 6. an edge cut off for a whole simulated day ------------------------------------------------

async def _business_hours(writer: Writer, clock: ManualClock, minutes: int, step_s: int) -> None:
    """Counters open, a ticket about every ``step_s`` seconds, counters calling and finishing,
    now and then a hold, an absence or a cancellation, until ``minutes`` have passed."""
    for cid in COUNTERS:
        await writer.execute(c.OpenCounter(cid))
    for i in range(minutes * 60 // step_s):
        clock.advance(step_s)
        await writer.execute(c.Issue("AB"[i % 2]))
        cid = COUNTERS[i % len(COUNTERS)]
        if i % 2:
            await writer.execute(c.Finish(cid))
            await writer.execute(c.CallNext(cid))
        if i % 37 == 0:
            await writer.execute(c.MarkAbsent(cid))
        elif i % 41 == 0:
            await writer.execute(c.Hold(cid))
    for cid in COUNTERS:
        await writer.execute(c.CloseCounter(cid))


async def test_edge_cut_off_for_a_whole_day_catches_up(tmp_path: Path, broker: Mosquitto,
                                                       sqlite_hub: HubDb) -> None:
    """In-process edge on a manual clock, its broker link cut before opening time: a full
    business day and the next morning happen offline (day rollover included), then the link
    comes back and the hub catches up with both days; its projection is the edge's day 2."""
    prefix, site = new_prefix(), unique_site("day")
    toml = site_toml(site)
    config = parse_site_config(toml)
    proxy = await TcpProxy(broker.port).start()
    hub = await hub_in_process(sqlite_hub, broker.url, prefix)
    await hub.set_config(site, toml)  # so the hub can fold the site's queues
    clock = ManualClock(morning(21))
    db = tmp_path / "edge.db"
    edge = build_edge(config, db, clock, sync=SyncOptions(proxy.url, prefix=prefix))
    runner = await start_edge(edge, "127.0.0.1", free_port())
    writer = edge.writer
    try:
        await writer.execute(c.OpenCounter("1"))
        await wait_synced(db, sqlite_hub.url, site, timeout=30)
        await proxy.cut()
        await _business_hours(writer, clock, minutes=8 * 60 + 45, step_s=50)  # 08:30-17:15
        await writer.execute(c.CloseDay())
        clock.set(morning(22))
        await _business_hours(writer, clock, minutes=150, step_s=30)  # 08:30-11:00
        await writer.execute(c.OpenCounter("1"))
        await writer.execute(c.Issue("A"))
        last = writer.store.last_seq()
        behind = await contiguous(sqlite_hub, site)
        assert behind < 10 < last, "the cut did not hold"
        t_restore = time.monotonic()
        await proxy.restore()
        took = await wait_synced(db, sqlite_hub.url, site, timeout=90)
        n = await assert_hub_matches_edge(db, sqlite_hub.url, site)
        days = [(r[3], r[4]) for r in await hub_rows(sqlite_hub.url, site)
                if r[4] in ("DayOpened", "DayClosed")]
        assert [d for d, k in days if k == "DayOpened"] == ["2026-11-21", "2026-11-22"]
        edge_queues = writer.read(lambda s: {r["code"]: (r["waiting"], r["issued"])
                                             for r in service_rows(s, clock.now())})

        async def hub_shows_day_two() -> bool:
            view = await hub_site(hub.url, site, await _staff(hub))
            queues = {} if view is None else {q["service"]: (q["waiting"], q["issued"])
                                              for q in view["queues"]}
            return queues == edge_queues

        await until(hub_shows_day_two, "the hub's queues equal the edge's (day 2)", timeout=15)
        report("offline_day", events=n, days=len(days), offline_events=last - behind,
               caught_up_s=round(time.monotonic() - t_restore, 1), wait_synced_s=round(took, 1))
    finally:
        await runner.cleanup()
        await proxy.close()
        await hub.stop()


# --- the embedded amqtt broker (MQTT 3.1.1) ------------------------------------------------------

async def test_amqtt_end_to_end(tmp_path: Path, sqlite_hub: HubDb) -> None:
    """A real edge process and the hub over the embedded amqtt (3.1.1; both send a user name,
    which amqtt needs to keep persistent sessions)."""
    broker = await start_embedded_broker("127.0.0.1", 0)
    prefix, site = new_prefix(), unique_site("amqtt")
    hub = await hub_in_process(
        sqlite_hub, f"mqtt://hub@127.0.0.1:{broker.port}?protocol=3.1.1", prefix)
    edge = EdgeProcess(tmp_path, site, broker.url, prefix, protocol="3.1.1",
                       env={"MADOGUCHI_MQTT_USERNAME": site})
    load = Load(edge.base, RATE)
    try:
        edge.start()
        await edge.ready()
        await load.start()
        await asyncio.sleep(3)
        await load.stop()
        assert all(a.status == 201 for a in load.issues), summary(load.issues)
        took = await wait_synced(edge.db, sqlite_hub.url, site, timeout=30)
        n = await assert_hub_matches_edge(edge.db, sqlite_hub.url, site)
        assert n > 3 * RATE
        await until(lambda: _online(hub, site, True), "site online over amqtt")
        report("amqtt_e2e", events=n, wait_synced_s=round(took, 1))
    finally:
        await load.stop()
        edge.stop()
        await hub.stop()
        await broker.stop()

