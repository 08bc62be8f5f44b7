"""The edge's MQTT connection is the shared wrapper in ``edge/mqtt.py`` (one for edge and hub).

Kept as a name only: ``parse_broker_url`` is how edge code and tests have read broker URLs.
"""

from __future__ import annotations

from edge.mqtt import Handlers, Link, MqttSettings

__all__ = ["Handlers", "Link", "MqttSettings", "parse_broker_url"]


def parse_broker_url(url: str) -> MqttSettings:
    """``mqtt://[user:pass@]host[:port]`` (1883) or ``mqtts://…`` (TLS, 8883)."""
    return MqttSettings.from_url(url)
