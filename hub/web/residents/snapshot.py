"""One public status snapshot of every site (W1-W3), built from the ingest's in-process folds.

Why one snapshot: thousands of phones watch the same figures, so they are computed once per
change and served as the same pre-encoded bytes (JSON for ``/api/status``, an SSE frame for
the stream); the HTML page is rendered once per snapshot and language. Queue figures come from
the edge's own ``service_rows`` (never re-computed here), so the web says what the office's
screens say. Nothing about a single visitor (numbers, tokens) is in it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.domain.calendar import day, open_at
from edge.domain.model import SiteConfig
from edge.domain.views import service_rows
from hub.ingest.projection import SiteFold
from hub.web.residents.recommend import Option, compare

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DISPLAY_TZ = ZoneInfo("Asia/Tokyo")  # the "updated" time residents read


@dataclass(frozen=True)
class Snapshot:
    version: int
    data: dict[str, Any]
    body: bytes  # JSON
    etag: str
    sse: bytes  # one server-sent event carrying ``body``


def encode(version: int, data: dict[str, Any], epoch: str) -> Snapshot:
    body = json.dumps({"version": version, **data}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    digest = hashlib.sha256(body).hexdigest()[:16]
    sse = b"id: %d\nevent: status\ndata: %s\n\n" % (version, body)
    return Snapshot(version, data, body, f'"{epoch}-{version}-{digest}"', sse)


def open_now(config: SiteConfig, local: datetime) -> bool | None:
    """Open at ``local`` (site time) by the ward's calendar and today's hours; None when the
    site configures no hours and no calendar rule closes today."""
    today = day(config.calendar, config.hours, local.date())
    if today.open and config.hours is None and today.hours is None:
        return None
    return open_at(config.calendar, config.hours, local)


def _site(fold: SiteFold, online: bool, now: datetime) -> dict[str, Any] | None:
    state, config = fold.state, fold.config
    if state is None or config is None:
        return None
    local = now.astimezone(ZoneInfo(config.timezone))
    is_open = open_now(config, local)
    today = day(config.calendar, config.hours, local.date())
    hours = None if config.hours is None else {
        DAY_KEYS[d]: list(span) for d, span in sorted(config.hours.items())}
    services = []
    for r in service_rows(state, local):
        svc = config.services[r["code"]]
        available = (online and is_open is not False and r["status"] == "open"
                     and r["estimate"] is not None and svc.kiosk)
        services.append({
            "code": r["code"], "name": r["name"], "kiosk": svc.kiosk, "status": r["status"],
            "waiting": r["waiting"], "second_wait": r["second_wait"],
            "open_counters": r["open_counters"], "estimate": r["estimate"],
            "available": available, "quieter": [], "web": svc.web is not None,
        })
    return {
        "site": config.site, "name": config.name.values, "online": online,
        "open_now": is_open, "hours": hours,
        "today": None if today.hours is None else list(today.hours),
        # closed by the ward's calendar (a holiday, the year end, a closed day): why, for texts
        "closed_reason": today.reason if today.reason != "weekly" else None,
        "holiday": today.holiday,
        "day_open": state.day_open, "services": services,
        "waiting": sum(s["waiting"] for s in services),
        "second_wait": sum(s["second_wait"] for s in services),
    }


def build_status(folds: Mapping[str, SiteFold], online: Mapping[str, bool],
                 now: datetime, main: str | None = None) -> dict[str, Any]:
    """Every site with a folded state, its services, and the W2 comparison (no ``version``);
    ``main``: the main office, which the page lists first (a hub setting)."""
    sites = [s for site in sorted(folds)
             if (s := _site(folds[site], online.get(site, False), now)) is not None]
    options = [Option(s["site"], v["code"], v["estimate"]["low_s"], v["estimate"]["high_s"],
                      v["waiting"])
               for s in sites for v in s["services"] if v["available"]]
    comparisons = compare(options)
    names = {(s["site"], v["code"]): v["name"] for s in sites for v in s["services"]}
    for s in sites:
        for v in s["services"]:
            cmp = comparisons.get(v["code"])
            if cmp is not None and v["available"]:
                v["quieter"] = [{"site": q.site, "low_s": q.low_s, "high_s": q.high_s}
                                for q in cmp.quieter.get(s["site"], ())]
    compare_rows = [{
        "code": code,
        "name": names[(cmp.ranking[0].site, code)],
        "sites": [{"site": o.site, "low_s": o.low_s, "high_s": o.high_s, "waiting": o.waiting,
                   "crowded": o.site in cmp.quieter} for o in cmp.ranking],
    } for code, cmp in sorted(comparisons.items())]
    return {"at": now.astimezone(DISPLAY_TZ).isoformat(timespec="seconds"), "main": main,
            "sites": sites,
            "compare": compare_rows, "site_names": {s["site"]: s["name"] for s in sites}}
