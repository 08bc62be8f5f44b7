"""Hub ingest: the MQTT consumer (events, presence, replies), acks, replay of gaps, projections."""

from hub.ingest.mqtt import MqttSettings
from hub.ingest.service import Change, ChangeListener, Ingest, IngestStats

__all__ = ["Change", "ChangeListener", "Ingest", "IngestStats", "MqttSettings"]
