"""paho-mqtt driven from asyncio: paho's network loop runs in its own thread, messages and
connection events are handed to the event loop with ``call_soon_threadsafe``.

Why paho and a thread: paho is the reference client (MQTT 5 sessions, TLS, wills) and its loop
thread reconnects by itself; the hub's logic stays single-threaded on the asyncio loop.
``clean_start=False`` is passed explicitly (paho's MQTT 5 default would start clean after every
restart); MQTT 3.1.1 (``clean_session=False``) is there for brokers like amqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.aio import wait_event

_LOGGER = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86400  # the broker keeps the hub's session (queued QoS 1) this long

Protocol = Literal["5", "3.1.1"]
OnMessage = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to connect. From a URL: ``mqtt[s]://user:pass@host:port/?protocol=3.1.1``
    (query keys: ``protocol`` 5 | 3.1.1, ``client_id``, ``session_expiry`` seconds, ``ca``)."""

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = None
    protocol: Protocol = "5"
    client_id: str | None = None
    keepalive: int = 30
    session_expiry_s: int = SESSION_EXPIRY_S
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, not {parts.scheme!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        protocol = query.get("protocol", "5")
        if protocol in ("3", "311", "3.1.1"):
            protocol = "3.1.1"
        if protocol not in ("5", "3.1.1"):
            raise ValueError("protocol must be 5 or 3.1.1")
        settings = cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            protocol=protocol,  # type: ignore[arg-type]
            client_id=query.get("client_id"),
            session_expiry_s=int(query.get("session_expiry", SESSION_EXPIRY_S)),
            ca_file=query.get("ca"),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def describe(self) -> str:
        """For logs: never the password."""
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{user}{self.host}:{self.port} (MQTT {self.protocol})"


def stable_client_id(role: str, prefix: str) -> str:
    """A fixed client id per role and topic prefix: the broker keeps the session across restarts,
    and two hubs on different prefixes (tests, tenants) never take over each other's session."""
    return f"madoguchi-{role}-{hashlib.sha1(prefix.encode()).hexdigest()[:10]}"  # noqa: S324


def _reason(rc: ReasonCode | int) -> str:
    return str(rc)


class MqttLink:
    """One paho client: subscribes on every (re)connect, publishes QoS 1."""

    def __init__(self, settings: MqttSettings, client_id: str, *,
                 subscriptions: Sequence[str], on_message: OnMessage,
                 on_connect: Callable[[], None] | None = None,
                 will: tuple[str, bytes] | None = None) -> None:
        self.settings = settings
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self._on_message_cb = on_message
        self._on_connect_cb = on_connect
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        v5 = settings.protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        if settings.username is not None:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self.client.tls_set(ca_certs=settings.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._paho_connect
        self.client.on_disconnect = self._paho_disconnect
        self.client.on_message = self._paho_message
        self.client.on_socket_open = self._paho_socket_open

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background (retrying until the broker is there) and run paho's loop."""
        self._loop = asyncio.get_running_loop()
        s = self.settings
        if s.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            self.client.connect_async(s.host, s.port, s.keepalive, clean_start=False,
                                      properties=props)
        else:
            self.client.connect_async(s.host, s.port, s.keepalive)
        self.client.loop_start()

    async def wait_connected(self, timeout: float) -> bool:
        # not ``asyncio.wait_for(event.wait())``: it can swallow a cancellation (edge/aio.py)
        return await wait_event(self._connected, timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> mqtt.MQTTMessageInfo:
        """QoS 1; queued by paho while disconnected."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            _LOGGER.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
        return info

    async def stop(self, final: Sequence[tuple[str, bytes]] = (), timeout: float = 3.0) -> None:
        """Publish ``final`` retained messages (when connected), then disconnect cleanly."""
        if self.connected:
            infos = [self.publish(t, p, retain=True) for t, p in final]
            for info in infos:
                await asyncio.to_thread(info.wait_for_publish, timeout)
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        self._connected.clear()

    # --- paho thread ----------------------------------------------------------------------------
    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: shutting down
            loop.call_soon_threadsafe(fn, *args)

    @staticmethod
    def _paho_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        """No Nagle (as the edge's link): an ack waiting for the previous segment's TCP ACK adds
        ~40 ms to every edge's round trip."""
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _paho_connect(self, client: mqtt.Client, _userdata: Any, flags: Any,
                      rc: ReasonCode, _props: Any) -> None:
        if rc.is_failure:
            _LOGGER.warning("MQTT connection refused by %s: %s", self.settings.describe(),
                            _reason(rc))
            return
        if self.subscriptions:
            client.subscribe([(t, 1) for t in self.subscriptions])
        _LOGGER.info("MQTT connected to %s as %s (session present: %s)",
                     self.settings.describe(), self.client_id,
                     getattr(flags, "session_present", "?"))
        self._call(self._connected.set)
        if self._on_connect_cb is not None:
            self._call(self._on_connect_cb)

    def _paho_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                         rc: ReasonCode, _props: Any) -> None:
        self._call(self._connected.clear)
        if rc.is_failure:
            _LOGGER.warning("MQTT connection to %s lost (%s); reconnecting",
                            self.settings.describe(), _reason(rc))

    def _paho_message(self, _client: mqtt.Client, _userdata: Any,
                      msg: mqtt.MQTTMessage) -> None:
        self._call(self._on_message_cb, msg.topic, bytes(msg.payload))
