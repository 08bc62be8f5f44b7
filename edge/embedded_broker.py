"""An in-process MQTT broker (amqtt) so ``madoguchi demo`` needs no mosquitto.

Limits (amqtt 0.12): MQTT 3.1.1 only (clients must connect with ``MQTTv311``), no shared
subscriptions, no ACL and no password check. It runs with ``allow_anonymous`` off because amqtt
marks every session anonymous when anonymous access is on and then drops persistent sessions
(``clean_session=False`` is ignored, queued QoS 1 messages are lost while a client is away). So a
client must send a user name (any name; the password is not checked) to keep its session. Demo
and tests only: production uses mosquitto with the configuration from ``madoguchi provision``.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["EmbeddedBroker", "start_embedded_broker"]

_LOGGER = logging.getLogger(__name__)


@dataclass
class EmbeddedBroker:
    """A running broker; ``port`` is the bound one (useful when started on port 0)."""

    host: str
    port: int
    _broker: Any

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def connected_clients(self) -> set[str]:
        """Client ids with a live connection (for the demo's summary; empty once stopped)."""
        if self._broker is None:
            return set()
        sessions: dict[str, Any] = getattr(self._broker, "_sessions", {})
        return {cid for cid, (session, _) in sessions.items()
                if getattr(getattr(session, "transitions", None), "state", "") == "connected"}

    async def stop(self) -> None:
        """Close the listener and every session; safe to call twice."""
        if self._broker is None:
            return
        broker, self._broker = self._broker, None
        await broker.shutdown()
        _LOGGER.info("embedded MQTT broker on %s:%d stopped", self.host, self.port)


async def start_embedded_broker(host: str = "127.0.0.1", port: int = 1883) -> EmbeddedBroker:
    """Start amqtt on ``host:port`` (0 picks a free port) and return once it accepts clients."""
    # amqtt ships no type information; import it as Any so mypy --strict needs no override
    broker_mod: Any = importlib.import_module("amqtt.broker")
    amqtt_log = logging.getLogger("amqtt")
    if amqtt_log.level == logging.NOTSET:  # its INFO lines (every connection) drown the demo's
        amqtt_log.setLevel(logging.WARNING)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        },
    }
    broker = broker_mod.Broker(config)
    await broker.start()
    bound = port
    server = getattr(broker, "_servers", {}).get("default")
    sockets = getattr(getattr(server, "instance", None), "sockets", None) or []
    if sockets:
        bound = int(sockets[0].getsockname()[1])
    _LOGGER.info("embedded MQTT broker (amqtt) listening on %s:%d", host, bound)
    return EmbeddedBroker(host, bound, broker)
