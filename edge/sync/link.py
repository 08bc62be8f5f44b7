"""The MQTT connection: a paho client in its own thread, every callback handed to asyncio.

paho's network loop runs in its thread (``loop_start``) and reconnects by itself with backoff;
nothing here ever runs user code in that thread: connect, disconnect, message and PUBACK
callbacks are forwarded with ``call_soon_threadsafe`` so that the sync logic is single-threaded
on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

_LOGGER = logging.getLogger(__name__)

_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True, "tls": True}


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://[user:pass@]host[:port]`` (1883) or ``mqtts://…`` (TLS, 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ValueError(f"not an MQTT URL (mqtt://host:port or mqtts://host:port): {url!r}")
    tls = _SCHEMES[parts.scheme]
    return BrokerUrl(
        parts.hostname, parts.port or (8883 if tls else 1883), tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


@dataclass(frozen=True, slots=True)
class LinkOptions:
    client_id: str
    mqtt5: bool = True
    session_expiry_s: int = 86_400
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    username: str | None = None
    password: str | None = None
    ca_file: str | Path | None = None


@dataclass(slots=True)
class Handlers:
    """Called on the event loop, never in paho's thread."""

    connected: Callable[[bool], None]  # session_present
    disconnected: Callable[[], None]
    message: Callable[[str, bytes], None]
    published: Callable[[int], None]  # mid of a PUBACKed message


class Link:
    def __init__(self, loop: asyncio.AbstractEventLoop, url: BrokerUrl, opts: LinkOptions,
                 handlers: Handlers, will: tuple[str, bytes]) -> None:
        self._loop = loop
        self._url = url
        self._opts = opts
        self._h = handlers
        self.connected = False  # only touched on the event loop
        self._last_refusal = ""
        proto = mqtt.MQTTv5 if opts.mqtt5 else mqtt.MQTTv311
        if opts.mqtt5:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, opts.client_id, protocol=proto)
        else:  # 3.1.1 (amqtt): the persistent session is asked for here
            c = mqtt.Client(CallbackAPIVersion.VERSION2, opts.client_id, protocol=proto,
                            clean_session=False)
        username = opts.username if opts.username is not None else url.username
        password = opts.password if opts.password is not None else url.password
        if username is not None:
            c.username_pw_set(username, password)
        if url.tls or opts.ca_file is not None:
            ca = str(opts.ca_file) if opts.ca_file is not None else None
            c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(will[0], will[1], qos=1, retain=True)
        c.reconnect_delay_set(opts.reconnect_min_s, opts.reconnect_max_s)
        c.on_connect = self._t_connect
        c.on_disconnect = self._t_disconnect
        c.on_message = self._t_message
        c.on_publish = self._t_publish
        c.on_socket_open = self._t_socket_open
        self._client = c

    # --- lifetime ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background: a broker that is down now is retried with backoff."""
        u, o = self._url, self._opts
        if o.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = o.session_expiry_s
            # explicit: paho's MQTT 5 default would start a clean session after each restart
            self._client.connect_async(u.host, u.port, o.keepalive_s, clean_start=False,
                                       properties=props)
        else:
            self._client.connect_async(u.host, u.port, o.keepalive_s)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                queue: bool = False) -> int | None:
        """QoS 1; the mid, or None when not connected (unless ``queue``: paho sends it later)."""
        if not (self.connected or queue):
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            _LOGGER.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            return None
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and not queue:
            return None
        return info.mid

    def subscribe(self, topics: list[str]) -> None:
        self._client.subscribe([(t, 1) for t in topics])

    async def stop(self, goodbye: tuple[str, bytes] | None, timeout_s: float = 2.0) -> None:
        """Publish ``goodbye`` (the offline status) if connected, then DISCONNECT cleanly."""
        if goodbye is not None and self.connected:
            info = self._client.publish(goodbye[0], goodbye[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                await asyncio.to_thread(info.wait_for_publish, timeout_s)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self.connected = False

    def drop_connection(self) -> None:
        """Cut the TCP connection without DISCONNECT (tests: the broker sends the last will)."""
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # --- paho thread -> event loop -----------------------------------------------------------
    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            self._loop.call_soon_threadsafe(fn, *args)

    @staticmethod
    def _t_socket_open(_c: mqtt.Client, _u: Any, sock: Any) -> None:
        """No Nagle: a batch waiting for the previous segment's ACK adds ~40 ms per round trip."""
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _t_connect(self, _c: mqtt.Client, _u: Any, flags: mqtt.ConnectFlags, rc: ReasonCode,
                   _p: Properties | None) -> None:
        self._post(self._connected, not rc.is_failure, flags.session_present, str(rc))

    def _t_disconnect(self, _c: mqtt.Client, _u: Any, _f: mqtt.DisconnectFlags, rc: ReasonCode,
                      _p: Properties | None) -> None:
        self._post(self._disconnected, str(rc))

    def _t_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._post(self._h.message, msg.topic, bytes(msg.payload))

    def _t_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: ReasonCode,
                   _p: Properties | None) -> None:
        self._post(self._h.published, mid)

    # --- on the event loop -------------------------------------------------------------------
    def _connected(self, ok: bool, session_present: bool, reason: str) -> None:
        if not ok:
            if reason != self._last_refusal:  # credentials etc.: say it once, keep retrying
                _LOGGER.warning("broker %s:%s refused the connection: %s",
                                self._url.host, self._url.port, reason)
                self._last_refusal = reason
            return
        self._last_refusal = ""
        self.connected = True
        _LOGGER.info("connected to broker %s:%s (session present: %s)",
                     self._url.host, self._url.port, session_present)
        self._h.connected(session_present)

    def _disconnected(self, reason: str) -> None:
        was = self.connected
        self.connected = False
        if was:
            _LOGGER.info("disconnected from broker: %s", reason)
            self._h.disconnected()
