"""The generated mosquitto configuration enforced by a real mosquitto, and the embedded amqtt.

Each test module starts its own mosquitto on free ports (never the shared one). "Never sees it"
is shown without timing: mosquitto hands a message to subscribers before it acks the publisher,
and one connection delivers in order, so a marker published after the forbidden message arrives
first only if the forbidden message was dropped.
"""

from __future__ import annotations

import getpass
import os
import queue
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import free_port, unavailable
from paho.mqtt.enums import CallbackAPIVersion

from edge.embedded_broker import start_embedded_broker
from edge.protocol import DEFAULT_PREFIX, hub_status_topic, site_topic
from edge.provision.files import parse_env
from edge.provision.sites import provision_broker, provision_site

P = DEFAULT_PREFIX
WAIT_S = 10.0  # a deadline for things that should happen at once, not a timing assertion
NOT_AUTHORIZED = 135  # MQTT 5 reason code; also what paho maps MQTT 3.1.1 CONNACK 5 to


@contextmanager
def run_mosquitto(conf: Path, ports: list[int]) -> Iterator[subprocess.Popen[bytes]]:
    """Start mosquitto with ``conf`` and wait until ``ports`` accept connections."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(exe, os.X_OK):
        unavailable("mosquitto not installed (apt install mosquitto)")
    # as root mosquitto would switch to user 'mosquitto', who cannot read the test's private dir
    test_conf = conf.with_name("test-mosquitto.conf")
    test_conf.write_text(conf.read_text() + f"user {getpass.getuser()}\n")
    log = conf.with_name("mosquitto.log")
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(test_conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WAIT_S
        for port in ports:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"mosquitto exited:\n{log.read_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"mosquitto not listening on {port}:\n{log.read_text()}")
                    time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(WAIT_S)


class Client:
    """A blocking paho client for tests: connect, subscribe, publish, wait for messages."""

    def __init__(self, port: int, user: str | None, password: str | None, *,
                 protocol: int = mqtt.MQTTv5, ca: Path | None = None, verify: bool = True,
                 client_id: str = "", clean: bool = True) -> None:
        self.port = port
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                             clean_session=None if protocol == mqtt.MQTTv5 else clean)
        if user is not None:
            self.c.username_pw_set(user, password)
        if ca is not None or not verify:
            self.c.tls_set(ca_certs=str(ca) if ca else None)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[Any] = queue.Queue()
        self.acks: dict[int, queue.Queue[Any]] = {}
        self.disconnects: queue.Queue[Any] = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self._ack(mid, rcs)
        self.c.on_publish = lambda c, u, mid, rc, p: self._ack(mid, rc)

    def _ack(self, mid: int, value: Any) -> None:
        self.acks.setdefault(mid, queue.Queue()).put(value)

    def _wait_ack(self, mid: int) -> Any:
        return self.acks.setdefault(mid, queue.Queue()).get(timeout=WAIT_S)

    def connect(self, **kw: Any) -> int:
        """The CONNACK reason code (0 = accepted); the network loop stops on a refusal."""
        self.c.connect("127.0.0.1", self.port, **kw)
        self.c.loop_start()
        rc = int(self.connack.get(timeout=WAIT_S).value)
        if rc != 0:
            self.c.loop_stop()
        return rc

    def subscribe(self, *topics: str) -> list[int]:
        _, mid = self.c.subscribe([(t, 1) for t in topics])
        return [int(rc.value) for rc in self._wait_ack(mid)]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (always 0 under MQTT 3.1.1)."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        return int(self._wait_ack(info.mid).value)

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT_S)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@dataclass
class Broker:
    port: int
    tls_port: int
    ca: Path
    creds: dict[str, tuple[str, str]]  # who -> (user, password)

    def client(self, who: str, **kw: Any) -> Client:
        user, password = self.creds[who]
        c = Client(self.port, user, password, **kw)
        assert c.connect() == 0
        return c


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("prov")
    port, tls_port = free_port(), free_port()
    for site in ("alpha", "beta"):
        provision_site(root, site, broker_host="localhost")
    conf, _ = provision_broker(root, port=port, tls=True, tls_port=tls_port,
                               broker_host="localhost", prefix=None)
    creds = {}
    for who, env_path in [("alpha", root / "sites/alpha/mqtt.env"),
                          ("beta", root / "sites/beta/mqtt.env"), ("hub", root / "hub/mqtt.env")]:
        env = parse_env(env_path.read_text())
        creds[who] = (env["MADOGUCHI_MQTT_USERNAME"], env["MADOGUCHI_MQTT_PASSWORD"])
    with run_mosquitto(conf, [port, tls_port]):
        yield Broker(port, tls_port, root / "broker/tls/ca.crt", creds)


def test_site_cannot_publish_to_another_sites_topics(broker: Broker) -> None:
    hub, alpha, beta = broker.client("hub"), broker.client("alpha"), broker.client("beta")
    try:
        assert hub.subscribe(f"{P}/#") == [1]
        assert beta.subscribe(*(site_topic(P, "beta", k) for k in ("ack", "config", "commands")),
                              hub_status_topic(P)) == [1, 1, 1, 1]
        forged = [site_topic(P, "beta", k) for k in
                  ("events", "status", "replies", "ack", "config", "commands")]
        for topic in [*forged, hub_status_topic(P), site_topic(P, "alpha", "ack"), "other/x"]:
            assert alpha.publish(topic, b"forged", retain=True) == NOT_AUTHORIZED, topic
        # alpha's own event is allowed and is the first thing the hub sees
        assert alpha.publish(site_topic(P, "alpha", "events"), b"own") == 0
        first = hub.next_message()
        assert (first.topic, first.payload) == (site_topic(P, "alpha", "events"), b"own")
        # the hub's marker is the first thing beta sees: nothing forged reached it
        assert hub.publish(site_topic(P, "beta", "commands"), b"marker") == 0
        got = beta.next_message()
        assert (got.topic, got.payload) == (site_topic(P, "beta", "commands"), b"marker")
        assert hub.next_message().payload == b"marker"  # hub's own copy via the '#' filter
        assert hub.messages.empty()
        assert beta.messages.empty()
    finally:
        for c in (hub, alpha, beta):
            c.close()


def alpha_until_marker(hub: Client, alpha: Client) -> set[str]:
    """Topics alpha got up to the hub's marker (overlapping filters deliver several copies)."""
    hub.publish(site_topic(P, "alpha", "commands"), b"marker")
    topics = set()
    while (m := alpha.next_message()).payload != b"marker":
        topics.add(m.topic)
    return topics | {m.topic}


def test_site_cannot_read_another_sites_commands_or_config(broker: Broker) -> None:
    hub, alpha, beta = broker.client("hub"), broker.client("alpha"), broker.client("beta")
    try:
        # mosquitto 2.0 grants any subscription and applies the ACL per delivered message, so
        # what counts is what arrives, not the SUBACK
        beta_topics = [site_topic(P, "beta", k) for k in ("commands", "config", "ack", "events")]
        alpha.subscribe(*beta_topics, f"{P}/sites/+/commands", f"{P}/#", "#")
        assert beta.subscribe(site_topic(P, "beta", "commands")) == [1]
        assert hub.publish(site_topic(P, "beta", "config"), b'{"version":1}', retain=True) == 0
        assert hub.publish(site_topic(P, "beta", "ack"), b'{"seq":1}', retain=True) == 0
        assert hub.publish(site_topic(P, "beta", "commands"), b"for-beta") == 0
        assert beta.next_message().payload == b"for-beta"  # the command was delivered...
        # ...but alpha's filters matched only its own topics up to the hub's marker
        assert alpha_until_marker(hub, alpha) == {site_topic(P, "alpha", "commands")}
        # retained config of beta is not handed out on a later subscription either
        alpha.subscribe(site_topic(P, "beta", "config"))
        assert alpha_until_marker(hub, alpha) == {site_topic(P, "alpha", "commands")}
    finally:
        for c in (hub, alpha, beta):
            c.close()


def test_own_events_reach_the_hub_and_hub_commands_reach_the_site(broker: Broker) -> None:
    hub, alpha = broker.client("hub"), broker.client("alpha", protocol=mqtt.MQTTv311)
    try:
        # the hub's ingest may use a shared subscription (several hub processes)
        assert hub.subscribe(f"$share/ingest/{P}/sites/+/events") == [1]
        assert alpha.subscribe(site_topic(P, "alpha", "commands"), hub_status_topic(P)) == [1, 1]
        alpha.publish(site_topic(P, "alpha", "events"), b'{"events":[]}')
        got = hub.next_message()
        assert (got.topic, got.payload) == (site_topic(P, "alpha", "events"), b'{"events":[]}')
        assert hub.publish(hub_status_topic(P), b'{"online":true}') == 0
        assert hub.publish(site_topic(P, "alpha", "commands"), b'{"id":"c1"}') == 0
        assert alpha.next_message().topic == hub_status_topic(P)
        assert alpha.next_message().payload == b'{"id":"c1"}'
    finally:
        hub.close()
        alpha.close()


def test_a_forged_last_will_is_not_delivered(broker: Broker) -> None:
    """A will is published when a connection is taken over (same client id), before CONNACK."""
    user, password = broker.creds["alpha"]
    hub = broker.client("hub")
    try:
        assert hub.subscribe(f"{P}/sites/+/status") == [1]

        def takeover(will_topic: str) -> Client:
            first = Client(broker.port, user, password, client_id="alpha-will")
            first.c.will_set(will_topic, b'{"online":false}', qos=1)
            assert first.connect() == 0
            first.c.loop_stop()  # leave without DISCONNECT
            second = Client(broker.port, user, password, client_id="alpha-will")
            assert second.connect() == 0
            return second

        takeover(site_topic(P, "alpha", "status")).close()  # control: its own will arrives
        assert hub.next_message().topic == site_topic(P, "alpha", "status")
        second = takeover(site_topic(P, "beta", "status"))
        second.publish(site_topic(P, "alpha", "status"), b"marker")
        second.close()
        got = hub.next_message()
        assert (got.topic, got.payload) == (site_topic(P, "alpha", "status"), b"marker")
    finally:
        hub.close()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt311", "mqtt5"])
def test_wrong_password_and_unknown_users_are_refused(broker: Broker, protocol: int) -> None:
    user, password = broker.creds["alpha"]
    for u, pw in [(user, password + "x"), (user, broker.creds["beta"][1]), ("site-gamma", "x"),
                  (None, None)]:
        rc = Client(broker.port, u, pw, protocol=protocol).connect()
        # mosquitto answers 5 "not authorised" (3.1.1) or 135 "not authorized" (5)
        assert rc == NOT_AUTHORIZED, (u, rc)


def test_tls_with_the_test_ca(broker: Broker) -> None:
    user, password = broker.creds["alpha"]
    c = Client(broker.tls_port, user, password, ca=broker.ca)
    c.c.tls_insecure_set(False)
    assert c.connect() == 0  # verified chain and host name (127.0.0.1 is in the SAN)
    try:
        assert c.subscribe(site_topic(P, "alpha", "commands")) == [1]
        hub = broker.client("hub")
        hub.publish(site_topic(P, "alpha", "commands"), b"over-tls")
        hub.close()
        assert c.next_message().payload == b"over-tls"
    finally:
        c.close()
    untrusted = Client(broker.tls_port, user, password, verify=False)  # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.c.connect("127.0.0.1", broker.tls_port)


async def test_embedded_broker_round_trip_and_persistent_session() -> None:
    import asyncio

    b = await start_embedded_broker("127.0.0.1", 0)
    try:
        assert b.port > 0
        assert b.url == f"mqtt://127.0.0.1:{b.port}"
        assert b.connected_clients() == set()

        def round_trip() -> list[bytes]:
            sub = Client(b.port, "site-a", "ignored", protocol=mqtt.MQTTv311,
                         client_id="edge-a", clean=False)
            assert sub.connect() == 0
            assert sub.subscribe("madoguchi/v1/sites/a/commands") == [1]
            pub = Client(b.port, "hub", None, protocol=mqtt.MQTTv311)
            assert pub.connect() == 0
            pub.publish("madoguchi/v1/sites/a/commands", b"one")
            got = [sub.next_message().payload]
            sub.close()  # away: QoS 1 messages must wait in its session
            deadline = time.monotonic() + WAIT_S
            while "edge-a" in b.connected_clients():  # the broker has seen the DISCONNECT
                assert time.monotonic() < deadline
                time.sleep(0.01)
            pub.publish("madoguchi/v1/sites/a/commands", b"two")
            back = Client(b.port, "site-a", "ignored", protocol=mqtt.MQTTv311,
                          client_id="edge-a", clean=False)
            assert back.connect() == 0
            got.append(back.next_message().payload)
            back.close()
            pub.close()
            return got

        assert await asyncio.to_thread(round_trip) == [b"one", b"two"]
    finally:
        await b.stop()
        await b.stop()  # twice is harmless
