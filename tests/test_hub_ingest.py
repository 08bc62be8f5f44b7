"""Hub ingest against the real mosquitto (and the embedded amqtt): a fake edge publishes a real
edge event log in order, duplicated, reordered, with gaps and malformed; the hub stores each
event once, acks the contiguous seq, asks for replays, keeps projections and presence.

Every test uses its own topic prefix (``test/<uuid>``) and clears the retained topics it set."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sync_support import clear_retained

from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig
from edge.domain.state import State
from edge.domain.views import service_rows
from edge.embedded_broker import start_embedded_broker
from edge.protocol import MAX_PAYLOAD, Envelope, hub_status_topic, site_topic
from edge.store.store import EventStore
from edge.store.writer import Writer
from hub.app import Hub, start_hub
from hub.configs import publish_config, store_config
from hub.ingest import validate
from hub.ingest.mqtt import MqttSettings

SITES_DIR = Path(__file__).resolve().parent.parent / "sites"
SITE = "oizumi"
TOML = (SITES_DIR / "oizumi.toml").read_text(encoding="utf-8")
TZ = ZoneInfo("Asia/Tokyo")
WAIT_S = 15.0


# --- a real edge event log ----------------------------------------------------------------------

@dataclass
class EdgeLog:
    config: SiteConfig
    events: list[Envelope]
    state: State  # the edge's own state after the last event


def edge_log(issues: int = 12) -> EdgeLog:
    """A morning at Oizumi run through the edge's real writer: counters open, tickets issued,
    called, finished, one transferred (second wait), one cancelled."""
    config = parse_site_config(TOML)
    store = EventStore(":memory:", SITE, durable=False)
    clock = ManualClock(datetime(2026, 11, 21, 8, 30, tzinfo=TZ))
    writer = Writer(store, config, clock)
    script: list[c.Command] = [c.OpenCounter("1"), c.OpenCounter("2"), c.OpenCounter("4")]
    script += [c.Issue("AB"[i % 2]) for i in range(issues)]
    script += [c.CallNext("1"), c.Finish("1"), c.CallNext("1"), c.Transfer("1", "B"),
               c.CallNext("2"), c.Issue("M"), c.Cancel(number=4001), c.CallNext("4")]
    for cmd in script:
        clock.advance(40)
        outcome = writer.execute_sync(cmd)
        assert outcome.refused is None, outcome.refused
    events = list(store.events())
    state = writer.state
    writer.close()
    return EdgeLog(config, events, state)


def expected_queues(state: State) -> dict[str, tuple[int, int, int, int]]:
    return {r["code"]: (r["waiting"], r["second_wait"], r["issued"], r["open_counters"])
            for r in service_rows(state, state.last_at or datetime.now(TZ))}


# --- a fake edge: a plain paho client -----------------------------------------------------------

class FakeEdge:
    """Publishes like an edge would; records what the hub sends back (ack, commands, config)."""

    def __init__(self, broker_url: str, prefix: str, site: str = SITE,
                 protocol: str = "5") -> None:
        self.prefix, self.site = prefix, site
        settings = MqttSettings.from_url(broker_url)
        v5 = protocol == "5"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"fake-edge-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                  clean_session=None if v5 else True)
        self.client.username_pw_set("fake-edge")
        self._lock = threading.Lock()
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.client.on_message = self._on_message
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        subs = [site_topic(prefix, "+", k) for k in ("ack", "commands", "config")]
        self.client.subscribe([(t, 1) for t in [*subs, hub_status_topic(prefix)]])

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            with self._lock:
                self.messages.append((msg.topic, json.loads(msg.payload)))

    def publish(self, kind: str, payload: bytes | dict[str, Any], *, site: str | None = None,
                retain: bool = False) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        # not waiting for the PUBACK: that would block the event loop (and an in-process broker);
        # paho sends in call order, which is all the tests rely on
        self.client.publish(site_topic(self.prefix, site or self.site, kind), body, qos=1,
                            retain=retain)

    def batch(self, events: list[Envelope], replay: bool = False) -> None:
        self.publish("events", {"v": 1, "site": self.site, "replay": replay,
                                "events": [e.to_dict() for e in events]})

    def received(self, kind: str, site: str | None = None) -> list[dict[str, Any]]:
        topic = (hub_status_topic(self.prefix) if kind == "hub"
                 else site_topic(self.prefix, site or self.site, kind))
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    async def wait_for(self, kind: str, pred: Callable[[dict[str, Any]], bool],
                       site: str | None = None) -> dict[str, Any]:
        return await until(lambda: next((p for p in self.received(kind, site) if pred(p)),
                                        None), f"a {kind} message")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def until(probe: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll until ``probe()`` is truthy (returns it) or fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# --- fixtures -----------------------------------------------------------------------------------

@dataclass
class Rig:
    hub: Hub
    edge: FakeEdge
    prefix: str
    broker_url: str
    db_url: str
    sites: set[str]

    async def restart(self) -> None:
        await self.hub.stop()
        self.hub = await start_rig_hub(self.db_url, self.broker_url, self.prefix)
        await self.edge.wait_for("hub", lambda p: p["online"] and p["at"] != self._last_online)

    @property
    def _last_online(self) -> Any:
        online = [p for p in self.edge.received("hub") if p["online"]]
        return online[0]["at"] if len(online) > 1 else None


async def start_rig_hub(db_url: str, broker_url: str, prefix: str) -> Hub:
    hub = await start_hub(db_url, f"{broker_url}?session_expiry=30", prefix, port=0)
    assert hub.ingest is not None
    assert await hub.ingest.wait_connected(WAIT_S), "hub did not connect to the broker"
    return hub


def retained_topics(prefix: str, sites: set[str]) -> list[str]:
    return [hub_status_topic(prefix)] + [site_topic(prefix, s, k) for s in sites
                                         for k in ("ack", "status", "config")]


@pytest.fixture
async def rig(mqtt_broker_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    prefix = f"test/{uuid.uuid4().hex}"
    db_url = f"sqlite:///{tmp_path}/hub.db"
    hub = await start_rig_hub(db_url, mqtt_broker_url, prefix)
    edge = FakeEdge(mqtt_broker_url, prefix)
    # the hub's retained "online" reaching us proves its subscriptions are in place
    await edge.wait_for("hub", lambda p: p["online"])
    r = Rig(hub, edge, prefix, mqtt_broker_url, db_url, {SITE})
    try:
        yield r
    finally:
        await r.hub.stop()
        edge.close()
        clear_retained(mqtt_broker_url, retained_topics(prefix, r.sites))


@pytest.fixture(scope="module")
def log() -> EdgeLog:
    return edge_log()


def chunks(events: list[Envelope], size: int) -> Iterator[list[Envelope]]:
    for i in range(0, len(events), size):
        yield events[i:i + size]


# --- tests --------------------------------------------------------------------------------------

async def test_in_order_batches_are_stored_acked_and_folded(rig: Rig, log: EdgeLog) -> None:
    assert await rig.hub.set_config(SITE, TOML) == 1
    for part in chunks(log.events, 7):
        rig.edge.batch(part)
    last = log.events[-1].seq
    await rig.edge.wait_for("ack", lambda p: p["seq"] == last)
    assert await rig.hub.store.events(SITE) == log.events  # same seqs, ids, content
    acks = [p["seq"] for p in rig.edge.received("ack")]
    assert acks == sorted(acks), "acks never go backwards"
    async with rig.hub.store.read() as tx:
        row = await tx.site(SITE)
        proj = await tx.projection(SITE)
    assert row is not None
    assert row["last_seq_contiguous"] == last
    assert row["projection"] == "ok"
    assert row["last_event_at"] == datetime.fromisoformat(log.events[-1].at)
    got = {q["service"]: (q["waiting"], q["second_wait"], q["issued"], q["open_counters"])
           for q in proj["queues"]}
    assert got == expected_queues(log.state)
    assert got["B"][1] == 1, "the transferred ticket waits at stage 2"
    counters = {k["counter"]: (k["open"], k["current_number"]) for k in proj["counters"]}
    edge_counters = {cid: (log.state.counter(cid).open,
                           t.number if (t := log.state.current_ticket(cid)) else None)
                     for cid in log.config.counters}
    assert counters == edge_counters
    assert rig.hub.ingest is not None
    assert rig.hub.ingest.stats.replays_requested == 0


async def test_duplicated_reordered_and_gap_asks_for_replay(rig: Rig, log: EdgeLog) -> None:
    events = log.events[:20]
    rig.edge.batch(events[10:15])  # seqs 11-15 first: a gap
    cmd = await rig.edge.wait_for("commands", lambda p: p["type"] == "replay")
    assert cmd["data"] == {"from_seq": 1}
    assert cmd["v"] == 1
    assert cmd["site"] == SITE
    assert cmd["id"]
    assert datetime.fromisoformat(cmd["expires_at"]).tzinfo is not None
    await rig.edge.wait_for("ack", lambda p: p["seq"] == 0)  # nothing contiguous yet
    rig.edge.batch(events[0:5])
    await rig.edge.wait_for("ack", lambda p: p["seq"] == 5)
    rig.edge.batch(events[10:15])  # a duplicate delivery
    rig.edge.batch(events[3:12], replay=True)  # overlapping replay
    rig.edge.batch(list(reversed(events[12:20])))  # reordered inside a batch
    await rig.edge.wait_for("ack", lambda p: p["seq"] == 20)
    assert await rig.hub.store.events(SITE) == events
    ingest = rig.hub.ingest
    assert ingest is not None
    assert ingest.stats.duplicates == 5 + 4 + 3  # 11-15 again, then 4, 5, 11, 12, then 13-15
    assert ingest.stats.events_stored == 20
    # one replay per gap (from 1, then from 6), rate-limited while a gap stays
    assert ingest.stats.replays_requested == 2
    assert [p["data"]["from_seq"] for p in rig.edge.received("commands")] == [1, 6]


async def test_malformed_payloads_are_dropped_and_logged(
        rig: Rig, log: EdgeLog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hub")
    secret = "山田太郎-090-1234-5678"  # personal data must never reach the log
    good = log.events[:3]
    bad_env = {**good[0].to_dict(), "site": "site-d", "at": "yesterday",
               "data": {"name": secret}}
    huge = json.dumps({"v": 1, "site": "site-e", "events": [], "pad": secret *
                       (MAX_PAYLOAD // len(secret.encode()) + 1)}).encode()
    rig.sites.update({"site-a", "site-b", "site-c", "site-d", "site-e", "site-f"})
    rig.edge.publish("events", b"\xff{" + secret.encode(), site="site-a")  # not JSON
    rig.edge.publish("events", {"v": 2, "site": "site-b", "events": [], "x": secret},
                     site="site-b")
    rig.edge.publish("events", {"v": 1, "site": "site-x", "events": [], "x": secret},
                     site="site-c")
    rig.edge.publish("events", {"v": 1, "site": "site-d", "events": [bad_env]}, site="site-d")
    rig.edge.publish("events", huge, site="site-e")
    rig.edge.publish("events", {"v": 1, "site": "site-f", "events": [
        {**good[0].to_dict(), "site": "site-f"}, {**good[1].to_dict(), "site": "oizumi"}]},
        site="site-f")
    rig.edge.publish("events", b"[1, 2]", site="Bad_Site")
    rig.edge.publish("status", {"v": 1, "site": SITE, "online": "yes", "x": secret})
    rig.edge.batch(good)  # the hub keeps going and acks the good ones
    await rig.edge.wait_for("ack", lambda p: p["seq"] == 3)
    ingest = rig.hub.ingest
    assert ingest is not None
    await until(lambda: ingest.stats.dropped == 8, "8 drops")
    text = caplog.text
    for reason in ("not JSON", "v must be 1", "site in the payload differs from the topic",
                   "events[0].at is not an ISO time", "exceeds 1000000",
                   "events[1].site differs from the topic", "not a valid site id",
                   "online must be true or false"):
        assert reason in text, reason
    assert secret not in text
    assert "山田" not in text
    for site in ("site-a", "site-b", "site-c", "site-d", "site-e", "site-f"):
        assert await rig.hub.store.contiguous_seq(site) == 0
    assert await rig.hub.store.events(SITE) == good


async def test_presence_devices_and_stale_will(rig: Rig) -> None:
    store = rig.hub.store
    status = {"v": 1, "site": SITE, "online": True, "session": "s-2", "at":
              "2026-11-21T09:00:00+09:00", "versions": {"software": "0.1.0", "config": 1,
                                                        "schema": 2},
              "last_seq": 0, "outbox": 0, "devices": [
                  {"id": "printer-1", "kind": "printer", "state": "degraded",
                   "reason": "paper_near_end", "since": "2026-11-21T08:59:00+09:00",
                   "detail": "", "bound_to": "kiosk-1", "message": None},
                  {"id": "display-1", "kind": "display", "state": "ok", "reason": None}]}
    rig.edge.publish("status", status, retain=True)

    async def row() -> dict[str, Any]:
        async with store.read() as tx:
            return await tx.site(SITE) or {}

    r = await until_async(row, lambda r: r.get("online") is True)
    assert r["session"] == "s-2"
    assert r["config_version_applied"] == 1
    async with store.read() as tx:
        devices = (await tx.projection(SITE))["devices"]
    assert [(d["device"], d["state"], d["reason"]) for d in devices] == [
        ("display-1", "ok", None), ("printer-1", "degraded", "paper_near_end")]
    # a last will of an older session arriving late does not mark the site offline
    rig.edge.publish("status", {"v": 1, "site": SITE, "online": False, "session": "s-1",
                                "at": None})
    rig.edge.publish("status", {**status, "devices": status["devices"][:1]})  # handled after
    await until_async(lambda: _devices(store), lambda d: len(d) == 1)
    assert (await row())["online"] is True
    rig.edge.publish("status", {"v": 1, "site": SITE, "online": False, "session": "s-2",
                                "at": None}, retain=True)
    r = await until_async(row, lambda r: r.get("online") is False)
    assert r["session"] == "s-2"


async def _devices(store: Any) -> list[dict[str, Any]]:
    async with store.read() as tx:
        return list((await tx.projection(SITE))["devices"])


async def until_async(fetch: Callable[[], Any], pred: Callable[[Any], bool],
                      timeout: float = WAIT_S) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if pred(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out; last value {value!r}")
        await asyncio.sleep(0.05)


async def test_events_lost_at_the_hub_are_asked_for_again(rig: Rig) -> None:
    """The edge says it has seq 9 and nothing in flight, the hub has none: replay from 1."""
    rig.edge.publish("status", {"v": 1, "site": SITE, "online": True, "session": "s",
                                "at": "2026-11-21T09:00:00+09:00", "last_seq": 9,
                                "outbox": 0, "versions": {}, "devices": []})
    cmd = await rig.edge.wait_for("commands", lambda p: p["type"] == "replay")
    assert cmd["data"] == {"from_seq": 1}


async def test_send_command_returns_the_reply(rig: Rig) -> None:
    ingest = rig.hub.ingest
    assert ingest is not None

    async def answer(site: str, ok_site: str) -> None:
        cmd = await rig.edge.wait_for("commands", lambda p: p["type"] == "issue", site=site)
        rig.edge.publish("replies", {"v": 1, "site": ok_site, "command_id": cmd["id"],
                                     "ok": True, "data": {"number": 7}}, site=ok_site)

    responder = asyncio.create_task(answer(SITE, SITE))
    reply = await ingest.send_command(SITE, "issue", {"service": "A"}, ttl_s=WAIT_S)
    await responder
    assert reply is not None
    assert reply["ok"] is True
    assert reply["data"] == {"number": 7}
    # no answer: None once the command expires
    assert await ingest.send_command(SITE, "issue", {"service": "A"}, ttl_s=0.3) is None
    # another site cannot answer this site's command
    rig.sites.add("hikarigaoka")
    responder = asyncio.create_task(answer("hikarigaoka", "oizumi"))
    assert await ingest.send_command("hikarigaoka", "issue", {}, ttl_s=1.0) is None
    await responder


async def test_restart_rebuilds_today_and_republishes_ack(rig: Rig, log: EdgeLog) -> None:
    await rig.hub.set_config(SITE, TOML)
    half = len(log.events) // 2
    rig.edge.batch(log.events[:half])
    await rig.edge.wait_for("ack", lambda p: p["seq"] == half)
    clear_retained(rig.broker_url, [site_topic(rig.prefix, SITE, "ack")])
    rig.edge.messages.clear()
    await rig.restart()
    # the new hub tells the site again where it stands
    await rig.edge.wait_for("ack", lambda p: p["seq"] == half)
    rig.edge.batch(log.events[half:])
    await rig.edge.wait_for("ack", lambda p: p["seq"] == log.events[-1].seq)
    assert await rig.hub.store.events(SITE) == log.events
    ingest = rig.hub.ingest
    assert ingest is not None
    fold = ingest.folds[SITE]
    assert fold.state is not None
    assert fold.status == "ok"
    assert expected_queues(fold.state) == expected_queues(log.state)
    assert fold.state.seq == log.state.seq


async def test_config_push_and_cli_path(rig: Rig, log: EdgeLog) -> None:
    rig.edge.batch(log.events)
    await rig.edge.wait_for("ack", lambda p: p["seq"] == log.events[-1].seq)
    ingest = rig.hub.ingest
    assert ingest is not None
    assert ingest.folds[SITE].status == "no_config"  # no config yet: seq tracked only
    await rig.hub.set_config(SITE, TOML)
    msg = await rig.edge.wait_for("config", lambda p: p["version"] == 1)
    assert msg["site"] == SITE
    assert "version = 1\n" in msg["toml"]
    assert ingest.folds[SITE].status == "ok"  # today's events folded again with the config
    assert expected_queues(ingest.folds[SITE].state) == expected_queues(log.state)  # type: ignore[arg-type]
    # the CLI stores the next version and publishes it: the hub refolds with it
    version, body = await store_config(rig.hub.store, SITE, TOML.replace("handling_minutes = 4",
                                                                         "handling_minutes = 5"))
    assert await asyncio.to_thread(publish_config, rig.broker_url, SITE, version, body,
                                   rig.prefix)
    await until(lambda: ingest.folds[SITE].version == 2, "refold with config v2")


async def test_hub_status_is_retained_online_then_offline(rig: Rig) -> None:
    assert rig.edge.received("hub")[-1]["online"] is True
    await rig.hub.stop()
    await rig.edge.wait_for("hub", lambda p: p["online"] is False)
    rig.hub = await start_rig_hub(rig.db_url, rig.broker_url, rig.prefix)  # for the teardown


async def test_works_with_the_embedded_amqtt_broker(tmp_path: Path, log: EdgeLog) -> None:
    broker = await start_embedded_broker("127.0.0.1", 0)
    prefix = f"test/{uuid.uuid4().hex}"
    hub = await start_hub(f"sqlite:///{tmp_path}/hub.db",
                          f"mqtt://hub@127.0.0.1:{broker.port}?protocol=3.1.1", prefix, port=0)
    edge = FakeEdge(broker.url, prefix, protocol="3.1.1")
    try:
        assert hub.ingest is not None
        assert await hub.ingest.wait_connected(WAIT_S)
        await edge.wait_for("hub", lambda p: p["online"])
        edge.batch(log.events[:10])
        await edge.wait_for("ack", lambda p: p["seq"] == 10)
        assert await hub.store.events(SITE) == log.events[:10]
    finally:
        edge.close()
        await hub.stop()
        await broker.stop()


# --- validation, no broker ----------------------------------------------------------------------

def _batch(**over: Any) -> bytes:
    ev = {"v": 1, "site": SITE, "seq": 1, "id": "0190a8c4-0000-7000-8000-000000000001",
          "at": "2026-11-21T09:00:00+09:00", "day": "2026-11-21", "type": "DayOpened",
          "data": {"day": "2026-11-21"}}
    events = over.pop("events", [{**ev, **over.pop("ev", {})}])
    return json.dumps({"v": 1, "site": SITE, "events": events, **over}).encode()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "not JSON"),
    (b"null", "not a JSON object"),
    (_batch(v=True), "v must be 1"),
    (_batch(site="nerima-main"), "site in the payload"),
    (_batch(events={}), "events must be a list"),
    (_batch(replay="no"), "replay must be"),
    (_batch(ev={"seq": 0}), "events[0].seq"),
    (_batch(ev={"seq": 1.5}), "events[0].seq"),
    (_batch(ev={"at": "2026-11-21T09:00:00"}), "no UTC offset"),
    (_batch(ev={"day": "2026-13-01"}), "events[0].day is not a date"),
    (_batch(ev={"type": "Drop table"}), "events[0].type"),
    (_batch(ev={"data": []}), "events[0].data"),
    (_batch(ev={"id": "x" * 65}), "events[0].id"),
    (_batch(ev={"v": 2}), "events[0].v"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
])
def test_invalid_batches(payload: bytes, reason: str) -> None:
    with pytest.raises(validate.Invalid) as err:
        validate.events_batch(payload, SITE)
    assert reason in str(err.value)


def test_valid_batch_is_sorted_and_duplicates_inside_refused() -> None:
    one = json.loads(_batch())["events"][0]
    two = {**one, "seq": 2, "id": "0190a8c4-0000-7000-8000-000000000002"}
    batch = validate.events_batch(_batch(events=[two, one], replay=True), SITE)
    assert [e.seq for e in batch.events] == [1, 2]
    assert batch.replay
    with pytest.raises(validate.Invalid, match="twice"):
        validate.events_batch(_batch(events=[one, {**two, "seq": 1}]), SITE)
    with pytest.raises(validate.Invalid, match="twice"):
        validate.events_batch(_batch(events=[one, {**two, "id": one["id"]}]), SITE)


def test_fold_skips_a_bad_event_and_keeps_the_site(log: EdgeLog) -> None:
    """Issue 12 item 7: an event the fold cannot apply is skipped (and handed to ingest for
    quarantine), the state before it is kept, and later events still fold."""
    from hub.ingest.projection import SiteFold

    def ev(seq: int, kind: str, data: dict[str, Any], day: str = "2026-11-21") -> Envelope:
        return Envelope(1, SITE, seq, f"id-{seq}", f"{day}T09:00:00+09:00", day, kind, data)

    fold = SiteFold(SITE, log.config, 1)
    fold.advance([ev(1, "DayOpened", {"day": "2026-11-21"}),
                  ev(2, "CounterOpened", {"counter": "1"}),
                  ev(3, "TicketCalled", {"ticket": "unknown", "counter": "1"})])
    assert (fold.status, fold.seq) == ("ok", 3)
    assert [(e.seq, why.split(":")[0]) for e, why in fold.failed] == [(3, "seq 3 (TicketCalled)")]
    assert fold.state is not None
    assert fold.state.counter("1").open
    fold.advance([ev(4, "CounterOpened", {"counter": "2"})])  # later events still fold
    assert fold.state.counter("2").open
    assert fold.rows(datetime.now(TZ))[0]
    fold.advance([ev(5, "SomethingNew", {})])  # a type this hub does not know yet
    assert fold.status == "ok"
    assert [e.seq for e, _ in fold.failed] == [3, 5]
    assert fold.state.counter("1").open
    assert fold.state.counter("2").open


def test_cli_config_set_stores_and_publishes(mqtt_broker_url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import sqlite3

    from hub.cli import add_parsers

    parser = argparse.ArgumentParser(prog="madoguchi")
    add_parsers(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        status: int = args.func(args)
        return status

    prefix = f"test/{uuid.uuid4().hex}"
    db = f"sqlite:///{tmp_path}/hub.db"
    good = str(SITES_DIR / "oizumi.toml")
    assert run("hub", "config", "set", SITE, good, "--db", db) == 0
    assert run("hub", "config", "set", SITE, good, "--db", db, "--mqtt", mqtt_broker_url,
               "--prefix", prefix) == 0
    assert "v2" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML.replace("[[counters]]", "[[counters]]\nbogus = 1", 1), encoding="utf-8")
    assert run("hub", "config", "set", SITE, str(bad), "--db", db) == 1
    assert "bogus" in capsys.readouterr().err
    assert run("hub", "config", "set", "nerima-main", good, "--db", db) == 1
    assert run("hub", "config", "set", SITE, str(tmp_path / "missing.toml"), "--db", db) == 2
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        rows = conn.execute("SELECT site, version FROM site_configs ORDER BY version").fetchall()
        audited = conn.execute("SELECT action, target FROM audit_log ORDER BY id").fetchall()
    assert rows == [(SITE, 1), (SITE, 2)]
    assert audited == [("setting_changed", SITE)] * 2  # refused files change nothing
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got.append(json.loads(msg.payload))
        done.set()

    settings = MqttSettings.from_url(mqtt_broker_url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect(settings.host, settings.port)
    sub.loop_start()
    sub.subscribe(site_topic(prefix, SITE, "config"), 1)
    try:
        assert done.wait(WAIT_S), "no retained config"
    finally:
        sub.disconnect()
        sub.loop_stop()
        clear_retained(mqtt_broker_url, [site_topic(prefix, SITE, "config")])
    assert got[0]["version"] == 2
    assert got[0]["site"] == SITE
    assert "version = 2\n" in got[0]["toml"]
