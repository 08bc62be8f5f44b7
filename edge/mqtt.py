"""The one MQTT connection of the edge and the hub: paho in its own thread, asyncio everywhere else.

Why paho and a thread: paho is the reference client (MQTT 5 sessions, TLS, wills, shared
subscriptions) and its loop thread reconnects by itself with backoff; nothing here runs user code
in that thread. Connect, disconnect, message and PUBACK callbacks are handed to the event loop
with ``call_soon_threadsafe``, so the sync logic of both sides stays single-threaded.

Sessions are persistent on purpose (queued QoS 1 survives a restart): ``clean_start=False`` is
passed explicitly under MQTT 5 (paho's default would start clean after every restart) and
``clean_session=False`` under MQTT 3.1.1 (brokers like the demo's embedded amqtt). The edge
(``edge/sync/relay.py``) and the hub (``hub/ingest/mqtt.py``) both build on ``Link``; only their
defaults (client id, session expiry) differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.aio import wait_event

_LOGGER = logging.getLogger(__name__)

Protocol = Literal["5", "3.1.1"]

DEFAULT_SESSION_EXPIRY_S = 86_400  # when neither the URL nor the caller says otherwise
_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True, "tls": True}
_PROTOCOLS: dict[str, Protocol] = {"5": "5", "5.0": "5", "3": "3.1.1", "311": "3.1.1",
                                   "3.1.1": "3.1.1"}


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to connect.

    From a URL: ``mqtt[s]://[user:pass@]host[:port][/?query]`` (1883, or TLS on 8883); query keys
    ``protocol`` (5 | 3.1.1), ``client_id``, ``session_expiry`` (seconds), ``ca`` (a CA file; it
    implies TLS). ``client_id`` and ``session_expiry_s`` None: the caller's default
    (``with_defaults``).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    protocol: Protocol = "5"
    client_id: str | None = None
    keepalive: int = 30
    session_expiry_s: int | None = None
    ca_file: str | None = None
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttSettings:
        """Parse ``url``; ``overrides`` that are not None replace what the URL says."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"not an MQTT URL (mqtt://host:port or mqtts://host:port): {url!r}")
        tls = _SCHEMES[parts.scheme]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        protocol = _PROTOCOLS.get(query.get("protocol", "5"))
        if protocol is None:
            raise ValueError("MQTT protocol must be 5 or 3.1.1")
        expiry = query.get("session_expiry")
        settings = cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            protocol=protocol,
            client_id=query.get("client_id"),
            session_expiry_s=int(expiry) if expiry is not None else None,
            ca_file=query.get("ca"),
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        # a CA file means the broker is to be verified: never fall back to plain TCP silently
        return replace(settings, tls=True) if settings.ca_file is not None else settings

    def with_defaults(self, *, client_id: str, session_expiry_s: int) -> MqttSettings:
        """Fill what neither the URL nor the caller chose (the edge's and the hub's defaults)."""
        return replace(
            self, client_id=self.client_id if self.client_id is not None else client_id,
            session_expiry_s=(self.session_expiry_s if self.session_expiry_s is not None
                              else session_expiry_s))

    @property
    def mqtt5(self) -> bool:
        return self.protocol == "5"

    def describe(self) -> str:
        """For logs: never the password."""
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{user}{self.host}:{self.port} (MQTT {self.protocol})"


@dataclass(frozen=True, slots=True)
class Handlers:
    """Called on the event loop, never in paho's thread."""

    message: Callable[[str, bytes], None]
    connected: Callable[[bool], None] | None = None  # argument: session_present
    disconnected: Callable[[], None] | None = None  # only after a connection that was up
    published: Callable[[int], None] | None = None  # mid of a PUBACKed message


class Link:
    """One paho client: persistent session, QoS 1, ``subscriptions`` renewed on every connect.

    ``queue_offline``: ``publish`` hands messages to paho while disconnected (sent after the
    reconnect; the hub's acks and commands) instead of refusing them (the edge's outbox relay,
    which resends from its own log).
    """

    def __init__(self, settings: MqttSettings, handlers: Handlers, *,
                 subscriptions: Sequence[str] = (), will: tuple[str, bytes] | None = None,
                 queue_offline: bool = False) -> None:
        if settings.client_id is None:
            raise ValueError("a persistent MQTT session needs a fixed client id")
        self.settings = settings
        self.client_id = settings.client_id
        self.subscriptions = list(subscriptions)
        self._h = handlers
        self._queue_offline = queue_offline
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()  # only touched on the event loop
        self._last_refusal = ""
        s = settings
        if s.mqtt5:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, s.client_id, protocol=mqtt.MQTTv5)
        else:  # 3.1.1: the persistent session is asked for here, not at connect
            c = mqtt.Client(CallbackAPIVersion.VERSION2, s.client_id, protocol=mqtt.MQTTv311,
                            clean_session=False)
        if s.username is not None:
            c.username_pw_set(s.username, s.password)
        if s.tls or s.ca_file is not None:
            c.tls_set(ca_certs=s.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        c.on_connect = self._t_connect
        c.on_disconnect = self._t_disconnect
        c.on_message = self._t_message
        c.on_socket_open = self._t_socket_open
        if handlers.published is not None:  # else no thread hop per PUBACK
            c.on_publish = self._t_publish
        self._client = c

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- lifetime ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background: a broker that is down now is retried with backoff."""
        self._loop = asyncio.get_running_loop()
        s = self.settings
        if s.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = (s.session_expiry_s if s.session_expiry_s is not None
                                           else DEFAULT_SESSION_EXPIRY_S)
            self._client.connect_async(s.host, s.port, s.keepalive, clean_start=False,
                                       properties=props)
        else:
            self._client.connect_async(s.host, s.port, s.keepalive)
        self._client.loop_start()

    async def wait_connected(self, timeout: float | None) -> bool:
        """True once connected; not ``asyncio.wait_for(event.wait())`` (see ``edge/aio.py``)."""
        return await wait_event(self._connected, timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                queue: bool | None = None) -> int | None:
        """QoS 1; the mid, or None when refused. While disconnected the message is refused
        unless ``queue`` (default: the link's ``queue_offline``): then paho sends it later."""
        queue = self._queue_offline if queue is None else queue
        if not (self.connected or queue):
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            return info.mid if queue else None
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            _LOGGER.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            return None
        return info.mid

    async def stop(self, final: Sequence[tuple[str, bytes]] = (), timeout_s: float = 3.0) -> None:
        """Publish ``final`` retained messages (the offline status) when connected, wait for
        their PUBACKs at most ``timeout_s`` in all, then DISCONNECT cleanly (no last will)."""
        if self.connected and final:
            infos = [self._client.publish(t, p, qos=1, retain=True) for t, p in final]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            for info in infos:
                with contextlib.suppress(RuntimeError, ValueError):  # not sent: stop anyway
                    await asyncio.to_thread(info.wait_for_publish,
                                            max(0.0, deadline - loop.time()))
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._connected.clear()

    def drop_connection(self) -> None:
        """Cut the TCP connection without DISCONNECT (tests: the broker sends the last will)."""
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # --- paho thread -> event loop -----------------------------------------------------------
    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: shutting down
            loop.call_soon_threadsafe(fn, *args)

    @staticmethod
    def _t_socket_open(_c: mqtt.Client, _u: Any, sock: Any) -> None:
        """No Nagle: a batch or an ack waiting for the previous segment's TCP ACK adds ~40 ms
        to every round trip between edge and hub."""
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _t_connect(self, c: mqtt.Client, _u: Any, flags: mqtt.ConnectFlags, rc: ReasonCode,
                   _p: Properties | None) -> None:
        if not rc.is_failure and self.subscriptions:
            # from paho's thread, straight after CONNACK: nothing waits on a busy event loop
            c.subscribe([(t, 1) for t in self.subscriptions])
        self._post(self._connected_on_loop, not rc.is_failure, flags.session_present, str(rc))

    def _t_disconnect(self, _c: mqtt.Client, _u: Any, _f: mqtt.DisconnectFlags, rc: ReasonCode,
                      _p: Properties | None) -> None:
        self._post(self._disconnected_on_loop, rc.is_failure, str(rc))

    def _t_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._post(self._h.message, msg.topic, bytes(msg.payload))

    def _t_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: ReasonCode,
                   _p: Properties | None) -> None:
        if self._h.published is not None:
            self._post(self._h.published, mid)

    # --- on the event loop -------------------------------------------------------------------
    def _connected_on_loop(self, ok: bool, session_present: bool, reason: str) -> None:
        if not ok:
            if reason != self._last_refusal:  # credentials etc.: say it once, keep retrying
                _LOGGER.warning("broker %s refused the connection: %s",
                                self.settings.describe(), reason)
                self._last_refusal = reason
            return
        self._last_refusal = ""
        self._connected.set()
        _LOGGER.info("connected to broker %s as %s (session present: %s)",
                     self.settings.describe(), self.client_id, session_present)
        if self._h.connected is not None:
            self._h.connected(session_present)

    def _disconnected_on_loop(self, failure: bool, reason: str) -> None:
        was = self.connected
        self._connected.clear()
        if not was:
            return
        if failure:
            _LOGGER.warning("connection to broker %s lost (%s); reconnecting",
                            self.settings.describe(), reason)
        else:
            _LOGGER.info("disconnected from broker %s: %s", self.settings.describe(), reason)
        if self._h.disconnected is not None:
            self._h.disconnected()
