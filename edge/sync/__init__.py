"""Edge <-> hub sync over MQTT (the contract: the end of ``edge/protocol.py``).

1. Every committed event has an outbox row; the relay publishes them in ``seq`` order on
   ``sites/{site}/events`` as batches (QoS 1, <= 200 events / 256 KB, at most 16 batches ahead).
2. The hub stores idempotently on ``(site, seq)`` and publishes the highest contiguous seq as a
   retained ``ack``; only then are outbox rows deleted (a broker PUBACK is not delivery).
3. Without ack progress for 10 s, or after any reconnect, the relay resends from the first unacked
   seq: duplicates are harmless, gaps are not. A broker or hub outage only grows the outbox.
4. ``status`` (retained) says online with a per-process session id, versions, last seq, outbox
   size and device health; the last will is the same topic with ``online: false``.
5. ``config`` (retained) carries the site TOML with a version: newer versions are applied once
   and persisted; bad ones are refused and reported in ``status.config_error``.
6. ``commands`` (``issue`` a web ticket, ``replay`` history from a seq marked ``replay: true``) are
   deduplicated by id, refused when expired, and answered on ``replies``.
"""

from edge.sync.relay import SyncClient, SyncSettings, SyncStats
from edge.sync.site_config import config_file, load_applied_config

__all__ = ["SyncClient", "SyncSettings", "SyncStats", "config_file", "load_applied_config"]
