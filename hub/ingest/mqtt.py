"""The hub's side of the shared MQTT wrapper (``edge/mqtt.py``): its client id and session.

Only the hub's defaults live here: a client id fixed per topic prefix and a week-long session,
so edges' events published while the hub is down wait at the broker. Messages are queued by paho
while disconnected (acks, configs and commands go out after the reconnect).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from edge.mqtt import Handlers, Link, MqttSettings

SESSION_EXPIRY_S = 7 * 86400  # the broker keeps the hub's session (queued QoS 1) this long

MqttLink = Link  # the hub's name for it (``hub.ingest.commands``)

__all__ = ["SESSION_EXPIRY_S", "MqttLink", "MqttSettings", "hub_link", "stable_client_id"]


def stable_client_id(role: str, prefix: str) -> str:
    """A fixed client id per role and topic prefix: the broker keeps the session across restarts,
    and two hubs on different prefixes (tests, tenants) never take over each other's session."""
    return f"madoguchi-{role}-{hashlib.sha1(prefix.encode()).hexdigest()[:10]}"  # noqa: S324


def hub_link(settings: MqttSettings, prefix: str, *, subscriptions: Sequence[str],
             on_message: Callable[[str, bytes], None], on_connect: Callable[[], None],
             will: tuple[str, bytes]) -> Link:
    """The ingest's link: the URL's client id and session expiry, else the hub's defaults."""
    return Link(settings.with_defaults(client_id=stable_client_id("hub", prefix),
                                       session_expiry_s=SESSION_EXPIRY_S),
                Handlers(on_message, connected=lambda _session_present: on_connect()),
                subscriptions=subscriptions, will=will, queue_offline=True)
