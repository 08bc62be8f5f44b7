"""The ``status`` payloads: online (retained, refreshed) and offline (the last will).

Built with ``edge.protocol.Status``, the model the hub validates with, so what the edge says
about itself is what the hub accepts. Building never raises: the status loop must keep running,
so a device view that does not fit the model is logged (the rule, not the content) and sent
as it is, and a status that does not fit is sent as built by hand (the hub then refuses it
with its reason, which the operator sees there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge import __version__
from edge.protocol import SYNC_VERSION, DeviceHealth, Status, WireError

_LOGGER = logging.getLogger(__name__)

DeviceViews = Callable[[], list[dict[str, Any]]]


def offline(site: str, session: str, at: str | None) -> dict[str, Any]:
    """``at`` is None in the last will (the broker sends it, nobody knows when)."""
    fields: dict[str, Any] = {"v": SYNC_VERSION, "site": site, "online": False,
                              "session": session, "at": at}
    return _checked(fields)


def online(site: str, session: str, now: datetime, config_version: int, schema_version: int,
           last_seq: int, outbox: int, devices: DeviceViews | None, *,
           config_error: dict[str, Any] | None, sync_error: str | None) -> dict[str, Any]:
    views: list[dict[str, Any]] = []
    if devices is not None:
        try:
            views = [_device(view) for view in devices()]
        except Exception:
            _LOGGER.exception("device views failed")
    return _checked({
        "v": SYNC_VERSION, "site": site, "online": True, "session": session,
        "at": now.isoformat(timespec="milliseconds"),
        "versions": {"software": __version__, "config": config_version,
                     "schema": schema_version},
        "last_seq": last_seq, "outbox": outbox, "devices": views,
        "config_error": config_error, "sync_error": sync_error,
    })


def _device(view: dict[str, Any]) -> dict[str, Any]:
    try:
        return DeviceHealth.from_raw(view).to_wire()
    except WireError as exc:
        _LOGGER.warning("device view does not fit the status model (the hub will refuse the "
                        "status): %s", exc)
        return view


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return Status.from_raw(fields).to_wire()
    except WireError as exc:
        _LOGGER.error("status does not fit the wire model (the hub will refuse it): %s", exc)
        return fields
