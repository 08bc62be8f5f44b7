"""The ``status`` payloads: online (retained, refreshed) and offline (the last will).

Built with ``edge.protocol.Status``, the model the hub validates with, so what the edge says
about itself is what the hub accepts. Building never raises: the status loop must keep running,
so a device view that does not fit the model is logged (the rule, not the content) and sent
as it is, and a status that does not fit is sent as built by hand (the hub then refuses it
with its reason, which the operator sees there).

``host``: the mini-PC's disk, memory and load, read from ``/proc`` and ``statvfs`` (no psutil:
three numbers do not need a dependency; each one that cannot be read is left out, e.g. memory
off Linux). The clock offset is not here: an edge cannot know its own; the hub compares ``at``
with the time it received the status (hub/fleet/README.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge import __version__
from edge.protocol import SYNC_VERSION, DeviceHealth, Status, WireError

_LOGGER = logging.getLogger(__name__)

DeviceViews = Callable[[], list[dict[str, Any]]]
DISK_PATH = "/"  # the file system whose use is reported (the edge's data lives on it)
MEMINFO = "/proc/meminfo"


def offline(site: str, session: str, at: str | None) -> dict[str, Any]:
    """``at`` is None in the last will (the broker sends it, nobody knows when)."""
    fields: dict[str, Any] = {"v": SYNC_VERSION, "site": site, "online": False,
                              "session": session, "at": at}
    return _checked(fields)


def online(site: str, session: str, now: datetime, config_version: int, schema_version: int,
           last_seq: int, outbox: int, devices: DeviceViews | None, *,
           config_error: dict[str, Any] | None, sync_error: str | None,
           disk_path: str | None = None) -> dict[str, Any]:
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
        "host": host(disk_path or DISK_PATH),
    })


def host(disk_path: str, meminfo: str = MEMINFO) -> dict[str, Any]:
    """Disk use (%) of ``disk_path``'s file system, memory in use (%), the 1-minute load and
    the CPU count; what cannot be read is left out (never raises: the status must go out)."""
    out: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        du = shutil.disk_usage(disk_path)
        out["disk_pct"] = round(100.0 * du.used / du.total, 1) if du.total else 0.0
    mem = _mem_pct(meminfo)
    if mem is not None:
        out["mem_pct"] = mem
    with contextlib.suppress(OSError, AttributeError):  # no load average off Unix
        out["load1"] = round(max(0.0, os.getloadavg()[0]), 2)
    out["cpus"] = max(1, os.cpu_count() or 1)
    return out


def _mem_pct(meminfo: str) -> float | None:
    """(MemTotal - MemAvailable) / MemTotal from ``/proc/meminfo``; None if unreadable."""
    values: dict[str, int] = {}
    try:
        with open(meminfo, encoding="ascii") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in ("MemTotal", "MemAvailable"):
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    if not total or available is None:
        return None
    return round(min(100.0, max(0.0, 100.0 * (total - available) / total)), 1)


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
