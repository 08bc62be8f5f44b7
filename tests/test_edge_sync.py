"""Edge sync client against real brokers, with a minimal fake hub on the other side.

The fake hub is the contract's other half reduced to its core: store events idempotently on
seq, ack the highest contiguous seq (retained), publish config and commands, record replies and
status. Each test uses its own topic prefix and clears the retained messages it set.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from conftest import free_port
from paho.mqtt.enums import CallbackAPIVersion
from support import morning, small_site

from edge.domain.clock import ManualClock
from edge.domain.commands import CloseCounter, Issue, OpenCounter
from edge.domain.model import SiteConfig
from edge.mqtt import MqttSettings
from edge.protocol import site_topic
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, SyncSettings, config_file, load_applied_config
from edge.sync.commands import Seen
from edge.sync.outbox import Limits, read_batch

SITE = "test-site"
CONFIG = small_site()
# short session expiry: the shared broker need not keep these test sessions for a day
FAST = SyncSettings(resend_s=10.0, reconnect_min_s=1, reconnect_max_s=2,
                    status_min_interval_s=0.2, session_expiry_s=60)
MOSQUITTO = "/usr/sbin/mosquitto"
REPO = Path(__file__).resolve().parent.parent


# --- helpers -------------------------------------------------------------------------------------


async def until(pred: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait for ``pred`` (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


class FakeHub:
    """Minimal hub: idempotent store on seq, contiguous retained ack, config and commands."""

    def __init__(self, url: str, prefix: str, *, auto_ack: bool = True,
                 mqtt5: bool = True, tls_ca: Path | None = None,
                 login: tuple[str, str] | None = None) -> None:
        self.prefix = prefix
        self.host, self.port = host_port(url)
        self.auto_ack = auto_ack
        self.lock = threading.Lock()
        self.stored: dict[int, str] = {}  # seq -> event id
        self.conflicts: list[int] = []  # a seq delivered again with another id
        self.deliveries: list[tuple[int, bool]] = []  # (seq, replay) in arrival order
        self.batches: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.acked = 0
        self.connected = threading.Event()
        proto = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"fakehub-{uuid.uuid4().hex[:8]}",
                                  protocol=proto)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        if login is not None:
            self.client.username_pw_set(*login)

    def topic(self, kind: str) -> str:
        return site_topic(self.prefix, SITE, kind)

    def start(self) -> FakeHub:
        self.client.connect_async(self.host, self.port, 30)
        self.client.loop_start()
        assert self.connected.wait(10), "fake hub could not connect"
        return self

    def _on_connect(self, c: mqtt.Client, *_a: Any) -> None:
        c.subscribe([(self.topic(k), 1) for k in ("events", "status", "replies")])
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        raw = json.loads(msg.payload)
        kind = msg.topic.rsplit("/", 1)[1]
        with self.lock:
            if kind == "status":
                self.statuses.append(raw)
            elif kind == "replies":
                self.replies.append(raw)
            elif kind == "events":
                self.batches.append(raw)
                for ev in raw["events"]:
                    self.deliveries.append((ev["seq"], raw["replay"]))
                    known = self.stored.setdefault(ev["seq"], ev["id"])
                    if known != ev["id"]:
                        self.conflicts.append(ev["seq"])
                top = self.acked
                while top + 1 in self.stored:
                    top += 1
                advance = self.auto_ack and top > self.acked
        if kind == "events" and advance:
            self.ack(top, wait=False)  # in paho's thread: waiting here would block it

    def ack(self, seq: int, wait: bool = True) -> None:
        with self.lock:
            self.acked = max(self.acked, seq)
        self.publish("ack", {"v": 1, "site": SITE, "seq": seq, "at": "now"}, retain=True,
                     wait=wait)

    def publish(self, kind: str, payload: dict[str, Any] | bytes, retain: bool = False,
                wait: bool = True) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(self.topic(kind), data, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(5)

    def config(self, version: int, toml: str) -> None:
        self.publish("config", {"v": 1, "site": SITE, "version": version, "toml": toml},
                     retain=True)

    def command(self, cid: str, kind: str, data: dict[str, Any],
                expires_in_s: float | None = 60.0) -> None:
        exp = None if expires_in_s is None else \
            (datetime.now(UTC) + timedelta(seconds=expires_in_s)).isoformat()
        self.publish("commands", {"v": 1, "site": SITE, "id": cid, "type": kind,
                                  "expires_at": exp, "data": data})

    def replies_for(self, cid: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.replies if r["command_id"] == cid]

    def seqs(self, replay: bool | None = None) -> list[int]:
        with self.lock:
            return [s for s, r in self.deliveries if replay is None or r == replay]

    def close(self) -> None:
        for kind in ("ack", "config", "status"):
            self.client.publish(self.topic(kind), b"", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


async def online(hub: FakeHub, sync: SyncClient) -> None:
    """The edge's online status reached the hub: its subscriptions are in place too."""
    await until(lambda: any(st["online"] and st["session"] == sync.session
                            for st in list(hub.statuses)), "edge online")


def retained(url: str, topic: str) -> dict[str, Any] | None:
    """The retained message on ``topic`` as a fresh subscriber sees it (None: none)."""
    host, port = host_port(url)
    got: list[bytes] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, f"peek-{uuid.uuid4().hex[:8]}")
    c.on_connect = lambda cl, *_a: cl.subscribe(topic, 1)

    def on_message(_c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        got.append(m.payload)
        done.set()

    c.on_message = on_message
    c.connect(host, port, 30)
    c.loop_start()
    done.wait(1.5)
    c.disconnect()
    c.loop_stop()
    return json.loads(got[0]) if got and got[0] else None


def make_writer(path: Path, durable: bool = True) -> Writer:
    return Writer(EventStore(path, SITE, durable=durable), CONFIG, ManualClock(morning()))


def edge_log(writer: Writer) -> dict[int, str]:
    return {e.seq: e.id for e in writer.store.events()}


def outbox_seqs(writer: Writer) -> list[int]:
    return [e.seq for e in writer.store.outbox(100_000)]


async def issue(writer: Writer, n: int, service: str = "B") -> None:
    for _ in range(n):
        out = await writer.execute(Issue(service))
        assert out.refused is None


def site_toml(version: int, name_en: str = "Test", site: str = SITE) -> str:
    return f"""version = {version}

[site]
id = "{site}"
name = {{ ja = "テスト", en = "{name_en}" }}
timezone = "Asia/Tokyo"

[[services]]
code = "A"
name = {{ ja = "住民異動", en = "Moving" }}
range = [1, 50]

[[counters]]
id = "1"
name = {{ ja = "1番", en = "Counter 1" }}
services = ["A"]
"""


@pytest.fixture
def prefix() -> str:
    return f"test/{uuid.uuid4().hex}"


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    w = make_writer(tmp_path / "edge.db")
    yield w
    w.close()


@pytest.fixture
def hub_factory(mqtt_broker_url: str, prefix: str) -> Iterator[Callable[..., FakeHub]]:
    hubs: list[FakeHub] = []

    def make(**kw: Any) -> FakeHub:
        hub = FakeHub(kw.pop("url", mqtt_broker_url), prefix, **kw).start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
async def sync_factory(mqtt_broker_url: str, prefix: str) -> AsyncIterator[Callable[..., Any]]:
    clients: list[SyncClient] = []

    async def make(writer: Writer, **kw: Any) -> SyncClient:
        kw.setdefault("settings", FAST)
        kw.setdefault("client_id", f"edge-{uuid.uuid4().hex[:8]}")
        client = SyncClient(writer, CONFIG, kw.pop("url", mqtt_broker_url), prefix=prefix, **kw)
        await client.start()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.stop()


# --- units (no broker) ---------------------------------------------------------------------------


def test_broker_url() -> None:
    u = MqttSettings.from_url("mqtts://site%2Fa:p%40ss@hub.example.jp")
    assert (u.host, u.port, u.tls, u.username, u.password) == \
        ("hub.example.jp", 8883, True, "site/a", "p@ss")
    assert MqttSettings.from_url("mqtt://127.0.0.1").port == 1883
    with pytest.raises(ValueError, match="not an MQTT URL"):
        MqttSettings.from_url("http://x")


async def test_batches_respect_limits_and_never_span_a_gap(writer: Writer) -> None:
    await issue(writer, 9)  # DayOpened + 9 TicketIssued
    store = writer.store
    b = read_batch(store, 0, Limits(events=4))
    assert b is not None
    assert (b.first, b.last, b.count) == (1, 4, 4)
    payload = json.loads(b.payload)
    assert payload["v"] == 1
    assert payload["site"] == SITE
    assert payload["replay"] is False
    assert payload["events"] == [e.to_dict() for e in store.events(limit=4)]
    one = len(json.dumps(payload["events"][1]).encode())
    small = read_batch(store, 0, Limits(events=100, bytes=one * 2))
    assert small is not None
    assert 1 <= small.count <= 2
    store.ack(3)
    store.conn.execute("DELETE FROM outbox WHERE seq = 6")  # a hole (never happens for real)
    b = read_batch(store, 0, Limits())
    assert b is not None
    assert (b.first, b.last) == (4, 5)
    r = read_batch(store, 1, Limits(), replay=True, upto=8)
    assert r is not None
    assert (r.first, r.last) == (2, 8)
    assert json.loads(r.payload)["replay"]


def test_seen_commands_expire_and_are_bounded() -> None:
    s = Seen(None, 1000.0, ttl_s=100, keep=3)
    for i in range(5):
        s.add(f"c{i}", 1000.0 + i, {"ok": True})
    assert len(s) == 3
    assert s.get("c0") is None
    assert s.get("c4") is not None
    again = Seen(s.dump(), 1050.0, ttl_s=100, keep=3)
    assert again.get("c4") == (1004.0, {"ok": True})
    assert len(Seen(s.dump(), 5000.0, ttl_s=100)) == 0
    assert len(Seen("not json", 0.0)) == 0


async def test_broker_down_never_blocks_the_queue(writer: Writer, prefix: str) -> None:
    port = free_port()  # nothing listens there
    sync = SyncClient(writer, CONFIG, f"mqtt://127.0.0.1:{port}", prefix=prefix, settings=FAST)
    await sync.start()
    try:
        await issue(writer, 20)
        assert not sync.connected
        assert len(outbox_seqs(writer)) == 21
    finally:
        await sync.stop()


# --- against the shared mosquitto ----------------------------------------------------------------


async def test_events_in_order_and_deleted_only_after_the_hub_ack(
        writer: Writer, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory(auto_ack=False)
    await issue(writer, 10)  # a backlog, so that batches are full
    await sync_factory(writer, settings=replace(FAST, batch_events=3, window=2, resend_s=60))
    await until(lambda: len(hub.seqs()) >= 6, "6 events at the hub")
    await asyncio.sleep(0.3)  # paced: 2 batches of 3 ahead of the hub's ack, no more
    assert hub.seqs() == list(range(1, 7))
    assert all(len(b["events"]) <= 3 and b["replay"] is False for b in hub.batches)
    # a PUBACK is not delivery: nothing leaves the outbox yet
    assert outbox_seqs(writer) == list(range(1, 12))
    hub.ack(4)
    await until(lambda: outbox_seqs(writer) == list(range(5, 12)), "outbox after ack 4")
    await until(lambda: len(hub.seqs()) >= 9, "one more batch after the ack")
    hub.ack(9)
    await until(lambda: hub.seqs() == list(range(1, 12)), "the rest, in order")
    hub.ack(11)
    await until(lambda: outbox_seqs(writer) == [], "outbox empty")
    assert hub.stored == edge_log(writer)
    assert not hub.conflicts


async def test_resend_without_ack(writer: Writer, hub_factory: Callable[..., FakeHub],
                                  sync_factory: Any) -> None:
    hub = hub_factory(auto_ack=False)
    sync = await sync_factory(writer, settings=replace(FAST, resend_s=0.5))
    await issue(writer, 2)
    await until(lambda: hub.seqs().count(1) >= 2, "seq 1 sent again")
    assert sync.stats.resends >= 1
    assert hub.seqs()[:3] == [1, 2, 3]
    hub.ack(3)
    await until(lambda: outbox_seqs(writer) == [], "outbox empty")
    assert hub.stored == edge_log(writer)


async def test_duplicated_reordered_and_impossible_acks_are_harmless(
        writer: Writer, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory(auto_ack=False)
    await issue(writer, 7)
    sync = await sync_factory(writer, settings=replace(FAST, resend_s=60))
    await until(lambda: len(hub.seqs()) >= 8, "8 events at the hub")
    hub.ack(5)
    hub.ack(3)
    hub.ack(5)
    await until(lambda: outbox_seqs(writer) == [6, 7, 8], "outbox after ack 5")
    assert sync.floor == 5
    assert sync.stats.stale_acks >= 2
    hub.ack(10_000)  # beyond the edge's log: a replaced database, never deletes anything
    await until(lambda: sync.sync_error is not None, "sync_error reported")
    await issue(writer, 1)
    await until(lambda: 9 in hub.seqs(), "seq 9 still sent")
    assert outbox_seqs(writer) == [6, 7, 8, 9]
    hub.ack(9)
    await until(lambda: outbox_seqs(writer) == [], "outbox empty")
    assert sync.sync_error is None


async def test_malformed_messages_are_dropped(
        writer: Writer, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory()
    await sync_factory(writer)
    await until(lambda: bool(hub.statuses), "edge online (so subscribed)")
    hub.publish("ack", b"not json")
    hub.publish("ack", {"v": 99, "site": SITE, "seq": 1})
    hub.publish("ack", {"v": 1, "site": "other-site", "seq": 1})
    hub.publish("commands", {"v": 1, "site": SITE, "type": "issue"})  # no id
    hub.publish("commands", b"\x00" * 1_100_000)
    hub.publish("config", {"v": 1, "site": SITE, "version": "x", "toml": 1})
    await issue(writer, 3)
    await until(lambda: hub.acked == 4 and outbox_seqs(writer) == [], "still syncing")
    assert hub.replies == []


async def test_config_newer_older_bad_and_restart(
        tmp_path: Path, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory()
    writer = make_writer(tmp_path / "edge.db")
    applied: list[SiteConfig] = []

    async def on_config(cfg: SiteConfig) -> None:
        applied.append(cfg)

    sync = await sync_factory(writer, on_config=on_config)
    hub.config(3, site_toml(1, "Three"))  # the message's version wins over the TOML's
    await until(lambda: len(applied) == 1, "config 3 applied")
    assert applied[0].version == 3
    assert applied[0].name.get("en") == "Three"
    await until(lambda: any(s.get("versions", {}).get("config") == 3 for s in hub.statuses),
                "status reports config 3")
    hub.config(2, site_toml(2, "Older"))
    hub.config(4, "version = 4\n[site]\nid = 'test-site'\n")  # refused: incomplete
    await until(lambda: sync.config_error is not None, "config 4 refused")
    assert sync.config_error["version"] == 4
    assert "services" in sync.config_error["message"]
    await until(lambda: any((s.get("config_error") or {}).get("version") == 4
                            for s in hub.statuses), "status reports the refusal")
    hub.config(5, site_toml(5, "Other", site="other-site"))
    await until(lambda: (sync.config_error or {}).get("version") == 5, "wrong site refused")
    assert [c.version for c in applied] == [3]
    assert sync.config_version == 3
    assert "version 3" in config_file(tmp_path / "edge.db").read_text(encoding="utf-8")
    hub.config(6, site_toml(6, "Six"))
    await until(lambda: len(applied) == 2, "config 6 applied")
    assert sync.config_error is None

    await sync.stop()  # restart: the retained version 6 is not applied a second time
    writer.close()
    loaded = load_applied_config(tmp_path / "edge.db", SITE)
    assert loaded is not None
    assert loaded.version == 6
    assert loaded.name.get("en") == "Six"
    writer = make_writer(tmp_path / "edge.db")
    again: list[SiteConfig] = []
    sync2 = await sync_factory(writer, on_config=again.append)
    await online(hub, sync2)
    await asyncio.sleep(0.5)
    assert again == []
    assert sync2.config_version == 6
    hub.config(7, site_toml(7))
    await until(lambda: [c.version for c in again] == [7], "config 7 applied after restart")
    await sync2.stop()
    writer.close()


async def test_commands_issue_dedupe_expiry(
        writer: Writer, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory()
    sync = await sync_factory(writer)
    await online(hub, sync)
    hub.command("c-1", "issue", {"service": "B", "lang": "en"})
    await until(lambda: len(hub.replies_for("c-1")) == 1, "reply to c-1")
    rep = hub.replies_for("c-1")[0]
    assert rep["ok"] is True
    assert rep["site"] == SITE
    ticket = rep["data"]["ticket"]
    assert ticket["number"] == 201
    assert ticket["token"]
    assert ticket["channel"] == "web"
    hub.command("c-1", "issue", {"service": "B"})  # redelivered: same reply, no second ticket
    await until(lambda: len(hub.replies_for("c-1")) == 2, "second reply to c-1")
    assert hub.replies_for("c-1")[1] == rep
    assert writer.read(lambda st: st.services["B"].issued) == 1
    hub.command("c-2", "issue", {"service": "B"}, expires_in_s=-1)
    await until(lambda: len(hub.replies_for("c-2")) == 1, "reply to c-2")
    assert hub.replies_for("c-2")[0]["error"]["code"] == "expired"
    hub.command("c-3", "issue", {"service": "Z"})
    hub.command("c-4", "issue", {"service": "B", "bogus": 1})
    hub.command("c-5", "launch", {})
    await until(lambda: all(hub.replies_for(c) for c in ("c-3", "c-4", "c-5")), "refusals")
    codes = [hub.replies_for(c)[0]["error"]["code"] for c in ("c-3", "c-4", "c-5")]
    assert codes[1:] == ["bad_command", "unknown_command"]
    assert codes[0] != "expired"
    assert all(hub.replies_for(c)[0]["error"]["message_ja"] for c in ("c-3", "c-4", "c-5"))
    assert writer.read(lambda st: st.services["B"].issued) == 1
    await until(lambda: hub.acked == writer.store.last_seq(), "ticket event synced")


async def test_seen_commands_survive_a_restart(
        tmp_path: Path, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory()
    writer = make_writer(tmp_path / "edge.db")
    sync = await sync_factory(writer)
    await online(hub, sync)
    hub.command("w-1", "issue", {"service": "B"})
    await until(lambda: len(hub.replies_for("w-1")) == 1, "reply")
    await sync.stop()
    sync2 = await sync_factory(writer)
    await online(hub, sync2)
    hub.command("w-1", "issue", {"service": "B"})
    await until(lambda: len(hub.replies_for("w-1")) == 2, "reply after restart")
    first, second = hub.replies_for("w-1")
    assert first == second
    assert writer.read(lambda st: st.services["B"].issued) == 1
    await sync2.stop()
    writer.close()


async def test_replay_command(writer: Writer, hub_factory: Callable[..., FakeHub],
                              sync_factory: Any) -> None:
    hub = hub_factory()
    await sync_factory(writer, settings=replace(FAST, batch_events=4, window=1))
    await issue(writer, 12)
    await until(lambda: hub.acked == 13 and outbox_seqs(writer) == [], "all acked")
    hub.command("r-1", "replay", {"from_seq": 3})
    await until(lambda: hub.seqs(replay=True) == list(range(3, 14)), "replayed 3..13")
    assert hub.replies_for("r-1")[0]["data"] == {"from_seq": 3, "to_seq": 13}
    assert hub.stored == edge_log(writer)
    assert not hub.conflicts
    assert all(len(b["events"]) <= 4 for b in hub.batches)


async def test_presence_status_and_last_will(
        mqtt_broker_url: str, writer: Writer, hub_factory: Callable[..., FakeHub],
        sync_factory: Any) -> None:
    hub = hub_factory()
    board = [{"id": "printer-1", "state": "ok"}]
    sync = await sync_factory(writer, devices=lambda: list(board))
    await issue(writer, 2)
    await until(lambda: any(s["online"] for s in hub.statuses), "online status")
    st = retained(mqtt_broker_url, hub.topic("status"))
    assert st is not None
    assert st["online"] is True
    assert st["session"] == sync.session
    assert st["versions"]["schema"] == writer.store.schema_version
    assert st["versions"]["software"]
    assert st["devices"] == board
    assert {"last_seq", "outbox", "at", "config_error"} <= set(st)

    board[0] = {"id": "printer-1", "state": "error"}
    sync.devices_changed()
    await until(lambda: hub.statuses[-1]["devices"] == board, "device change published")

    before = len(hub.statuses)
    assert sync._link is not None
    sync._link.drop_connection()  # no DISCONNECT: the broker publishes the last will
    await until(lambda: any(not s["online"] for s in hub.statuses[before:]), "last will")
    will = next(s for s in hub.statuses[before:] if not s["online"])
    assert will == {"v": 1, "site": SITE, "online": False, "session": sync.session, "at": None}
    await until(lambda: hub.statuses[-1]["online"], "back online after reconnect")

    await sync.stop()
    st = retained(mqtt_broker_url, hub.topic("status"))
    assert st is not None
    assert st["online"] is False
    assert st["at"] is not None


_CHILD = """
import asyncio, sys
sys.path.insert(0, "tests")
from pathlib import Path
from test_edge_sync import CONFIG, make_writer
from edge.domain.commands import CloseCounter, OpenCounter
from edge.sync import SyncClient, SyncSettings

async def main(db, url, prefix, client_id):
    writer = make_writer(Path(db))
    sync = SyncClient(writer, CONFIG, url, prefix=prefix, client_id=client_id,
                      settings=SyncSettings(batch_events=20, session_expiry_s=60))
    await sync.start()
    print(sync.session, flush=True)
    i = 0
    while True:  # until SIGKILL
        await writer.execute(OpenCounter("1") if i % 2 == 0 else CloseCounter("1"))
        i += 1
        await asyncio.sleep(0.002)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_edge_sigkilled_mid_stream_resumes_exactly_once(
        tmp_path: Path, mqtt_broker_url: str, prefix: str,
        hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    hub = hub_factory()
    db = tmp_path / "edge.db"
    client_id = f"edge-{uuid.uuid4().hex[:8]}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(db), mqtt_broker_url, prefix, client_id,
        cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        session = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().strip()
        await until(lambda: hub.acked >= 300, "the child's events reach the hub")
    finally:
        child.kill()  # SIGKILL: no DISCONNECT, no goodbye, maybe a batch half-acked
        await child.wait()
    await until(lambda: any(not st["online"] and st["session"] == session
                            for st in list(hub.statuses)), "the last will of the killed edge")
    writer = make_writer(db)
    sync = await sync_factory(writer, client_id=client_id)  # same id: the session resumes
    try:
        last = writer.store.last_seq()
        await until(lambda: hub.acked == last, f"hub acks {last} after the restart")
        await until(lambda: outbox_seqs(writer) == [], "outbox empty")
        assert hub.stored == edge_log(writer)
        assert not hub.conflicts
        assert sync.session != session
    finally:
        await sync.stop()
        writer.close()


# --- brokers started by the test -----------------------------------------------------------------


class Mosquitto:
    """A private mosquitto on a free port that the test may stop and restart."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\nlog_dest none\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def make_tls(tmp: Path) -> Path:
    """A test CA and a server certificate for 127.0.0.1 (openssl CLI); returns the folder."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    return tmp


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"{MOSQUITTO} not installed")
    m = Mosquitto(tmp_path)
    m.start()
    yield m
    m.stop()


async def test_broker_outage_queue_keeps_working_and_all_arrive_once(
        writer: Writer, mosquitto: Mosquitto, prefix: str, sync_factory: Any) -> None:
    hub = FakeHub(mosquitto.url, prefix).start()
    sync = await sync_factory(writer, url=mosquitto.url)
    try:
        await issue(writer, 10)
        await until(lambda: hub.acked == 11, "first events acked")
        # the ack must have reached the edge too (the hub publishing it is not enough)
        await until(lambda: outbox_seqs(writer) == [], "first events out of the outbox")
        mosquitto.stop()
        for i in range(30):  # the queue keeps working with the broker down
            await writer.execute(OpenCounter("1") if i % 2 == 0 else CloseCounter("1"))
            await issue(writer, 1)
        await asyncio.sleep(3)
        assert not sync.connected
        assert len(outbox_seqs(writer)) == 60
        mosquitto.start()
        await issue(writer, 5)
        last = writer.store.last_seq()
        await until(lambda: hub.acked == last, f"hub acks {last}", timeout=30)
        await until(lambda: outbox_seqs(writer) == [], "outbox empty")
        assert hub.stored == edge_log(writer)
        assert not hub.conflicts
        assert sorted(set(hub.seqs())) == list(range(1, last + 1))
    finally:
        hub.client.disconnect()
        hub.client.loop_stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    """A private mosquitto with TLS and a password file: users test-site and hub."""
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"{MOSQUITTO} not installed")
    tls = make_tls(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), SITE, "site-secret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "hub", "hub-secret"], check=True)
    m = Mosquitto(tmp_path)
    m.conf.write_text(
        f"listener {m.port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
        f"cafile {tls / 'ca.crt'}\ncertfile {tls / 'server.crt'}\nkeyfile {tls / 'server.key'}\n"
        # as root mosquitto would drop to user "mosquitto", who cannot read pytest's tmp dirs
        f"user {getpass.getuser()}\npersistence false\nlog_dest none\n")
    m.start()
    yield m, tls / "ca.crt"
    m.stop()


async def test_tls_with_site_credentials(tls_broker: tuple[Mosquitto, Path], writer: Writer,
                                         prefix: str, sync_factory: Any) -> None:
    m, ca = tls_broker
    url = f"mqtts://127.0.0.1:{m.port}"
    hub = FakeHub(url, prefix, tls_ca=ca, login=("hub", "hub-secret")).start()
    try:
        wrong = await sync_factory(writer, url=url, ca_file=ca, username=SITE,
                                   password="wrong")
        await issue(writer, 2)
        await asyncio.sleep(1.5)
        assert not wrong.connected
        assert hub.seqs() == []
        await wrong.stop()
        sync = await sync_factory(writer, url=url, ca_file=ca, username=SITE,
                                  password="site-secret")
        await online(hub, sync)
        await until(lambda: hub.acked == 3, "acked over TLS")
        await until(lambda: outbox_seqs(writer) == [], "outbox empty")
    finally:
        hub.client.disconnect()
        hub.client.loop_stop()


async def test_amqtt_round_trip_mqtt311(writer: Writer, prefix: str, sync_factory: Any) -> None:
    from amqtt.broker import Broker

    port = free_port()
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {
            "allow_anonymous": True}},
    })
    await broker.start()
    url = f"mqtt://127.0.0.1:{port}"
    hub = await asyncio.to_thread(lambda: FakeHub(url, prefix, mqtt5=False).start())
    try:
        sync = await sync_factory(writer, url=url, mqtt5=False, username=SITE)
        await issue(writer, 5)
        await until(lambda: hub.acked == 6 and outbox_seqs(writer) == [], "acked over amqtt")
        assert hub.stored == edge_log(writer)
        await asyncio.to_thread(hub.command, "a-1", "issue", {"service": "B"})
        await until(lambda: bool(hub.replies_for("a-1")), "reply over amqtt")
        assert hub.replies_for("a-1")[0]["ok"] is True
        assert any(s["online"] and s["session"] == sync.session for s in hub.statuses)
        await sync.stop()
    finally:
        await asyncio.to_thread(hub.close)
        await broker.shutdown()


@pytest.mark.slow
async def test_backlog_of_20000_events_replayed_and_acked(
        tmp_path: Path, hub_factory: Callable[..., FakeHub], sync_factory: Any) -> None:
    writer = make_writer(tmp_path / "edge.db", durable=False)
    try:
        for i in range(20_000):
            writer.execute_sync(OpenCounter("1") if i % 2 == 0 else CloseCounter("1"))
        total = writer.store.last_seq()
        hub = hub_factory()
        t0 = time.monotonic()
        sync = await sync_factory(writer)
        await until(lambda: hub.acked == total, f"{total} acked", timeout=120)
        await until(lambda: outbox_seqs(writer) == [], "outbox empty")
        elapsed = time.monotonic() - t0
        assert hub.stored == edge_log(writer)
        assert not hub.conflicts
        print(json.dumps({"backlog_events": total, "backlog_acked_s": round(elapsed, 2),
                          "batches": sync.stats.batches_sent, "resends": sync.stats.resends,
                          "duplicate_deliveries": len(hub.seqs()) - total}))
    finally:
        writer.close()
