"""Event integrity at the hub (issue 12 item 7): forged, conflicting, implausible and unfoldable
events, and sites the hub never enrolled, against the real mosquitto on SQLite and PostgreSQL.

The attacker holds a site's broker credentials: they publish on the site's events topic with a
plain paho client (``Forger``). The edge is the real one (``build_edge``, in process, on a manual
clock) syncing through the same broker; the hub is the real one (``start_hub``). The rules under
test are in ``hub/ingest/integrity.py``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import free_port
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text
from support import morning
from sync_support import (
    assert_hub_matches_edge,
    clear_retained,
    hub_rows,
    site_toml,
    unique_site,
    until,
    wait_synced,
)

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.domain.state import State
from edge.domain.views import service_rows
from edge.protocol import Envelope, hub_status_topic, site_topic
from edge.store.store import EventStore
from edge.store.writer import Writer
from hub.app import Hub, start_hub
from hub.ingest import integrity, validate
from hub.ingest.mqtt import MqttSettings
from hub.ingest.projection import SiteFold
from hub.store import HubStore
from hub.store import integrity as q

WAIT_S = 20.0


# --- fixtures ------------------------------------------------------------------------------------

@dataclass
class HubDb:
    url: str
    schema: str | None = None


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubDb]:
    if request.param == "sqlite":
        yield HubDb(f"sqlite:///{tmp_path}/hub.db")
        return
    url = request.getfixturevalue("postgres_url")
    found = HubDb(url, f"integrity_{uuid.uuid4().hex[:12]}")
    yield found
    store = await HubStore.open(url, upgrade=False)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{found.schema}" CASCADE'))
    finally:
        await store.close()


@dataclass
class Rig:
    hub: Hub
    db: HubDb
    prefix: str
    broker_url: str
    sites: list[str]

    @property
    def store(self) -> HubStore:
        return self.hub.store


@pytest.fixture
async def rig(db: HubDb, mqtt_broker_url: str) -> AsyncIterator[Rig]:
    prefix = f"test/integrity/{uuid.uuid4().hex[:12]}"
    hub = await start_hub(db.url, f"{mqtt_broker_url}?session_expiry=30", prefix, port=0,
                          schema=db.schema)
    assert hub.ingest is not None
    assert await hub.ingest.wait_connected(15), "hub did not connect to the broker"
    r = Rig(hub, db, prefix, mqtt_broker_url, [])
    try:
        yield r
    finally:
        await r.hub.stop()
        clear_retained(mqtt_broker_url, [hub_status_topic(prefix)] + [
            site_topic(prefix, s, k) for s in r.sites for k in ("ack", "status", "config")])


class Forger:
    """Publishes on a site's topics with the site's credentials (a plain paho client), and
    records the acks the hub sends back."""

    def __init__(self, broker_url: str, prefix: str, site: str) -> None:
        self.prefix, self.site = prefix, site
        settings_ = MqttSettings.from_url(broker_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"forger-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(site)
        self._lock = threading.Lock()
        self.acks: list[int] = []
        self.client.on_message = self._on_message
        self.client.connect(settings_.host, settings_.port)
        self.client.loop_start()
        self.client.subscribe(site_topic(prefix, site, "ack"), qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            with self._lock:
                self.acks.append(int(json.loads(msg.payload)["seq"]))

    def last_ack(self) -> int:
        with self._lock:
            return self.acks[-1] if self.acks else 0

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        self.client.publish(site_topic(self.prefix, self.site, kind), json.dumps(body).encode(),
                            qos=1).wait_for_publish(5)

    def events(self, envs: list[Envelope]) -> None:
        self.publish("events", {"v": 1, "site": self.site, "replay": False,
                                "events": [e.to_dict() for e in envs]})

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forged(site: str, seq: int, kind: str = "TicketCalled",
           data: dict[str, Any] | None = None) -> Envelope:
    """An event the edge never wrote; by default one the fold cannot apply (unknown ticket)."""
    at = morning(21) + timedelta(hours=1)
    return Envelope(1, site, seq, f"forged-{uuid.uuid4().hex[:12]}", at.isoformat(),
                    "2026-11-21", kind, data if data is not None else
                    {"ticket": "no-such-ticket", "counter": "1"})


def edge_log(site: str, issues: int = 6) -> tuple[list[Envelope], State]:
    """A real edge log of ``site_toml(site)`` written by the edge's own writer, in memory."""
    config = parse_site_config(site_toml(site))
    store = EventStore(":memory:", site, durable=False)
    clock = ManualClock(morning(21))
    writer = Writer(store, config, clock)
    script: list[c.Command] = [c.OpenCounter("1"), c.OpenCounter("2")]
    script += [c.Issue("AB"[i % 2]) for i in range(issues)] + [c.CallNext("1")]
    for cmd in script:
        clock.advance(30)
        assert writer.execute_sync(cmd).refused is None
    events, state = list(store.events()), writer.state
    writer.close()
    return events, state


def renumber(envs: list[Envelope], start: int = 1) -> list[Envelope]:
    return [Envelope(e.v, e.site, start + i, e.id, e.at, e.day, e.type, e.data)
            for i, e in enumerate(envs)]


def queues_of(state: State) -> dict[str, tuple[int, int]]:
    return {r["code"]: (r["waiting"], r["issued"])
            for r in service_rows(state, state.last_at or morning(21))}


async def live_queues(rig: Rig, site: str) -> dict[str, tuple[int, int]]:
    """The site's queues in the hub's live state: the projection rows ``/api/sites/{site}``
    serves (read from the store: the API now needs a staff session, issue 12 item 3)."""
    if rig.hub.ingest is not None:
        await rig.hub.ingest.settled()
    async with rig.store.read() as tx:
        rows = (await tx.projection(site))["queues"]
    return {r["service"]: (r["waiting"], r["issued"]) for r in rows}


async def alerts(store: HubStore, site: str) -> list[tuple[str, int | None]]:
    async with store.read() as tx:
        return [(a["reason"], a["seq"]) for a in await q.alerts(tx, site)]


async def quarantined(store: HubStore, site: str) -> list[tuple[int, str, str]]:
    async with store.read() as tx:
        return [(r["seq"], r["id"], r["reason"]) for r in await q.quarantined(tx, site)]


async def contiguous(store: HubStore, site: str) -> int:
    async with store.read() as tx:
        row = await tx.site(site)
    return int(row["last_seq_contiguous"]) if row else 0


async def eventually(probe: Callable[[], Any], what: str) -> Any:
    async def run() -> Any:
        return await probe()
    return await until(run, what, WAIT_S, every=0.05)


# --- the forged-event scenario, real edge + real hub ---------------------------------------------

async def _edge_rig(rig: Rig, tmp_path: Path) -> tuple[Any, Any, ManualClock, Path, str]:
    site = unique_site("forge")
    rig.sites.append(site)
    toml = site_toml(site)
    await rig.hub.set_config(site, toml)  # enrolment: the hub holds the site's config
    clock = ManualClock(morning(21))
    edge_db = tmp_path / "edge.db"
    edge = build_edge(parse_site_config(toml), edge_db, clock,
                      sync=SyncOptions(rig.broker_url, prefix=rig.prefix))
    runner = await start_edge(edge, "127.0.0.1", free_port())
    await edge.writer.execute(c.OpenCounter("1"))
    for i in range(4):
        clock.advance(30)
        await edge.writer.execute(c.Issue("AB"[i % 2]))
    await wait_synced(edge_db, rig.db.url, site, schema=rig.db.schema, timeout=WAIT_S)
    return edge, runner, clock, edge_db, site


async def _hub_shows_edge_queues(rig: Rig, edge: Any, site: str) -> None:
    expected = edge.writer.read(queues_of)

    async def same() -> bool:
        got = await live_queues(rig, site)
        return bool(got) and got == expected

    await eventually(same, f"the hub's queues of {site} equal the edge's {expected}")


async def test_forged_events_ahead_of_the_edge_are_displaced_by_the_edge(
        rig: Rig, tmp_path: Path) -> None:
    """Forged events two and three seqs ahead of the edge are held (not acked, not folded);
    the edge's real events for those seqs take their place, the forgeries go to quarantine
    with an alert, and the hub ends with exactly the edge's log and its queues."""
    edge, runner, clock, edge_db, site = await _edge_rig(rig, tmp_path)
    forger = Forger(rig.broker_url, rig.prefix, site)
    try:
        n = edge.writer.store.last_seq()
        fakes = [forged(site, n + 2), forged(site, n + 3, "CounterClosed", {"counter": "1"})]
        forger.events(fakes)

        async def held() -> bool:
            return len(await hub_rows(rig.db.url, site, rig.db.schema)) == n + 2
        await eventually(held, "the forged events stored (held)")
        assert await contiguous(rig.store, site) == n, "a held event was acked over"
        for i in range(3):  # the edge's real n+1 .. n+3, then one more
            clock.advance(30)
            await edge.writer.execute(c.Issue("AB"[i % 2]))
        clock.advance(30)
        await edge.writer.execute(c.CallNext("1"))
        await wait_synced(edge_db, rig.db.url, site, schema=rig.db.schema, timeout=WAIT_S)
        assert await assert_hub_matches_edge(edge_db, rig.db.url, site,
                                             schema=rig.db.schema) == n + 4
        assert sorted((s, i) for s, i, r in await quarantined(rig.store, site)
                      if r == integrity.CONFLICT_DISPLACED) == [(e.seq, e.id) for e in fakes]
        found = await alerts(rig.store, site)
        assert {(integrity.CONFLICT_DISPLACED, n + 2), (integrity.CONFLICT_DISPLACED, n + 3)} \
            <= set(found), found
        await _hub_shows_edge_queues(rig, edge, site)
    finally:
        forger.close()
        await runner.cleanup()


async def test_forged_event_at_the_next_seq_keeps_the_real_one_and_the_site(
        rig: Rig, tmp_path: Path) -> None:
    """The case the hub cannot decide alone (integrity rule 4): a forgery at exactly the next
    seq is acked. Its fold fails: it is quarantined (``fold_failed``) and the site's queues stay
    visible; the edge's real event for that seq is kept in quarantine (``conflict_after_ack``),
    not lost, with an alert; later real events are stored."""
    edge, runner, clock, _db, site = await _edge_rig(rig, tmp_path)
    forger = Forger(rig.broker_url, rig.prefix, site)
    try:
        n = edge.writer.store.last_seq()
        fake = forged(site, n + 1)
        forger.events([fake])
        await eventually(lambda: _at_least(rig.store, site, n + 1), "the forgery folded")
        clock.advance(30)
        await edge.writer.execute(c.Issue("A"))  # the real n + 1
        real = next(e for e in edge.writer.store.events() if e.seq == n + 1)

        async def kept() -> bool:
            return (n + 1, real.id, integrity.CONFLICT_AFTER_ACK) in await quarantined(
                rig.store, site)
        await eventually(kept, "the edge's real event in quarantine")
        reasons = {r for r, _ in await alerts(rig.store, site)}
        assert {integrity.CONFLICT_AFTER_ACK, integrity.FOLD_FAILED} <= reasons, reasons
        assert (n + 1, fake.id, integrity.FOLD_FAILED) in await quarantined(rig.store, site)
        stored = {r[0]: r[1] for r in await hub_rows(rig.db.url, site, rig.db.schema)}
        assert stored[n + 1] == fake.id  # not decided by the hub: staff resolve it
        assert rig.hub.ingest is not None
        assert rig.hub.ingest.folds[site].status == "ok"
        queues = await live_queues(rig, site)
        assert queues, "the site's queues vanished"
        assert sum(issued for _, issued in queues.values()) == 4  # the forgery changed nothing
    finally:
        forger.close()
        await runner.cleanup()


async def _at_least(store: HubStore, site: str, seq: int) -> bool:
    return await contiguous(store, site) >= seq


# --- rules against the hub alone (the forger is the only publisher) ------------------------------

async def _enrolled(rig: Rig) -> tuple[str, Forger]:
    site = unique_site("rule")
    rig.sites.append(site)
    await rig.hub.set_config(site, site_toml(site))
    return site, Forger(rig.broker_url, rig.prefix, site)


async def test_conflicts_are_never_acked_over(rig: Rig) -> None:
    site, edge = await _enrolled(rig)
    log, _ = edge_log(site)
    try:
        edge.events(log[:3])
        await eventually(lambda: _acked(edge, 3), "ack 3")
        fake = forged(site, 5)
        edge.events([fake])  # held above a gap
        await eventually(lambda: _stored(rig, site, 5, fake.id), "the forgery held")
        rival = forged(site, 5, "CounterClosed", {"counter": "2"})
        edge.events([rival])  # another event for the held seq: displaces the first
        await eventually(lambda: _stored(rig, site, 5, rival.id), "the later one holds seq 5")
        assert await contiguous(rig.store, site) == 3
        assert edge.last_ack() == 3
        stale = Envelope(1, site, 2, "other-id", log[1].at, log[1].day, log[1].type,
                         log[1].data)
        same_id = Envelope(1, site, 3, log[2].id, log[2].at, log[2].day, log[2].type,
                           {**log[2].data, "counter": "9"})
        edge.events([stale, same_id])  # acked seqs: set aside, never stored over
        await eventually(lambda: _quarantined(rig, site, 3), "acked conflicts quarantined")
        rows = {r[0]: r[1] for r in await hub_rows(rig.db.url, site, rig.db.schema)}
        assert (rows[2], rows[3]) == (log[1].id, log[2].id)
        assert edge.last_ack() == 3
        edge.events(log[3:])  # the edge's real 4.. arrive: its 5 takes the seq, all acked
        await eventually(lambda: _acked(edge, len(log)), f"ack {len(log)}")
        assert [r[1] for r in await hub_rows(rig.db.url, site, rig.db.schema)] == \
            [e.id for e in log]
        reasons = [(s, r) for s, _, r in await quarantined(rig.store, site)]
        assert sorted(reasons) == [(2, integrity.CONFLICT_AFTER_ACK),
                                   (3, integrity.CONFLICT_AFTER_ACK),
                                   (5, integrity.CONFLICT_DISPLACED),
                                   (5, integrity.CONFLICT_DISPLACED)]
    finally:
        edge.close()


async def _acked(edge: Forger, seq: int) -> bool:
    return edge.last_ack() >= seq


async def _stored(rig: Rig, site: str, seq: int, event_id: str) -> bool:
    return any(r[0] == seq and r[1] == event_id
               for r in await hub_rows(rig.db.url, site, rig.db.schema))


async def _quarantined(rig: Rig, site: str, count: int) -> bool:
    return len(await quarantined(rig.store, site)) >= count


async def test_implausible_seqs_are_refused(rig: Rig) -> None:
    site, edge = await _enrolled(rig)
    log, _ = edge_log(site)
    assert rig.hub.ingest is not None
    jump = rig.hub.ingest.guard.max_jump
    try:
        edge.events(log[:2])
        await eventually(lambda: _acked(edge, 2), "ack 2")
        far = forged(site, 2 + jump + 1)
        edge.events([far, forged(site, 2**62)])  # the whole batch fails validation: dropped
        edge.events([far])
        bound = forged(site, 2 + jump, "CounterOpened", {"counter": "2"})
        edge.events([bound])  # the largest plausible jump: held (handled after the others)
        await eventually(lambda: _stored(rig, site, bound.seq, bound.id), "the bound held")
        assert (integrity.SEQ_IMPLAUSIBLE, far.seq) in await alerts(rig.store, site)
        seqs = [r[0] for r in await hub_rows(rig.db.url, site, rig.db.schema)]
        assert far.seq not in seqs
        assert 2**62 not in seqs
        assert await contiguous(rig.store, site) == 2
        assert edge.last_ack() == 2
    finally:
        edge.close()


@pytest.mark.parametrize("seq", [0, 2**53, 2**62, -1])
def test_validate_refuses_seqs_outside_1_to_2_53(seq: int) -> None:
    env = forged("site-a", 1).to_dict() | {"seq": seq}
    body = json.dumps({"v": 1, "site": "site-a", "events": [env]}).encode()
    with pytest.raises(validate.Invalid, match="seq"):
        validate.events_batch(body, "site-a")
    ok = json.dumps({"v": 1, "site": "site-a", "events": [env | {"seq": 2**53 - 1}]}).encode()
    assert validate.events_batch(ok, "site-a").events[0].seq == 2**53 - 1


async def test_unknown_sites_are_refused_when_enrolment_is_required(
        db: HubDb, mqtt_broker_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_HUB_ENROLMENT", "required")
    prefix = f"test/integrity/{uuid.uuid4().hex[:12]}"
    hub = await start_hub(db.url, f"{mqtt_broker_url}?session_expiry=30", prefix, port=0,
                          schema=db.schema)
    site = unique_site("stranger")
    edge = Forger(mqtt_broker_url, prefix, site)
    log, _ = edge_log(site)
    try:
        assert hub.ingest is not None
        assert hub.ingest.guard.enrolment == "required"
        assert await hub.ingest.wait_connected(15)
        edge.events(log[:3])
        edge.publish("status", {"v": 1, "site": site, "online": True, "session": "s1"})

        async def refused() -> bool:
            return (integrity.UNKNOWN_SITE, None) in await alerts(hub.store, site)
        await eventually(refused, "an unknown-site alert")
        async with hub.store.read() as tx:
            assert await tx.site(site) is None, "a site was created for an unknown publisher"
        assert await hub_rows(db.url, site, db.schema) == []
        await hub.set_config(site, site_toml(site))  # enrolment: now it is accepted
        edge.events(log[:3])
        await eventually(lambda: _acked(edge, 3), "ack 3 once enrolled")
    finally:
        edge.close()
        await hub.stop()
        clear_retained(mqtt_broker_url, [hub_status_topic(prefix)] + [
            site_topic(prefix, site, k) for k in ("ack", "status", "config")])


async def test_an_unfoldable_event_is_quarantined_and_the_site_stays(rig: Rig) -> None:
    site, edge = await _enrolled(rig)
    log, state = edge_log(site)
    bad = forged(site, 0)  # a fact the fold cannot apply, in the middle of the day
    events = renumber([*log[:5], bad, *log[5:]])
    try:
        edge.events(events)
        await eventually(lambda: _acked(edge, len(events)), f"ack {len(events)}")
        assert (6, bad.id, integrity.FOLD_FAILED) in await quarantined(rig.store, site)
        assert (integrity.FOLD_FAILED, 6) in await alerts(rig.store, site)
        assert len(await hub_rows(rig.db.url, site, rig.db.schema)) == len(events)

        async def visible() -> bool:
            return await live_queues(rig, site) == queues_of(state)
        await eventually(visible, "the site's queues as without the bad event")
    finally:
        edge.close()


# --- the fold rule, for any log and any bad event ------------------------------------------------

_LOG, _STATE = edge_log("fold-site", issues=8)


@settings(max_examples=40, deadline=None)
@given(at=st.integers(min_value=1, max_value=len(_LOG)),
       kind=st.sampled_from([("TicketCalled", {"ticket": "nope", "counter": "1"}),
                             ("TicketFinished", {"ticket": "nope", "counter": "1"}),
                             ("CounterOpened", {}), ("SomethingNew", {"x": 1})]))
def test_a_skipped_event_leaves_the_fold_as_without_it(at: int, kind: tuple[str, Any]) -> None:
    bad = forged("fold-site", 0, kind[0], kind[1])
    events = renumber([*_LOG[:at], bad, *_LOG[at:]])
    fold = SiteFold("fold-site", _STATE.config, 1)
    fold.advance(events)
    assert [e.id for e, _ in fold.failed] == [bad.id]
    assert fold.status == "ok"
    assert fold.state is not None
    assert queues_of(fold.state) == queues_of(_STATE)
