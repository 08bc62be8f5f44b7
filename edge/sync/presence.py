"""The ``status`` payloads: online (retained, refreshed) and offline (the last will)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge import __version__
from edge.protocol import SYNC_VERSION

_LOGGER = logging.getLogger(__name__)

DeviceViews = Callable[[], list[dict[str, Any]]]


def offline(site: str, session: str, at: str | None) -> dict[str, Any]:
    """``at`` is None in the last will (the broker sends it, nobody knows when)."""
    return {"v": SYNC_VERSION, "site": site, "online": False, "session": session, "at": at}


def online(site: str, session: str, now: datetime, config_version: int, schema_version: int,
           last_seq: int, outbox: int, devices: DeviceViews | None, *,
           config_error: dict[str, Any] | None, sync_error: str | None) -> dict[str, Any]:
    views: list[dict[str, Any]] = []
    if devices is not None:
        try:
            views = list(devices())
        except Exception:
            _LOGGER.exception("device views failed")
    return {
        "v": SYNC_VERSION, "site": site, "online": True, "session": session,
        "at": now.isoformat(timespec="milliseconds"),
        "versions": {"software": __version__, "config": config_version,
                     "schema": schema_version},
        "last_seq": last_seq, "outbox": outbox, "devices": views,
        "config_error": config_error, "sync_error": sync_error,
    }
