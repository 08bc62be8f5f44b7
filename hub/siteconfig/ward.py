"""The ward's own closed days, set once for every site (issue 13 item 2). No aiohttp.

Why one page for all sites: a closed day the ward decides (an election, a system change) holds
for all 18 sites; editing 18 settings one by one invites a missed site. The list is still
written into each site's TOML (``[calendar] closed``), because each edge must decide "open
now?" offline from its own pushed configuration. Each site gets a new version applied onto its
live text (tomlkit: nothing else changes), with the usual version check, so an edit someone is
publishing on one site at the same moment is never overwritten: that site is reported and can
be retried.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass

import tomlkit

from edge.config import ConfigError
from edge.domain.calendar import YEAR_END, in_year_end, national_holiday
from hub.ingest import Ingest
from hub.settings import HubSettings
from hub.siteconfig import service
from hub.siteconfig.view import load
from hub.store import HubStore


@dataclass(frozen=True)
class SiteDays:
    site: str
    version: int
    closed: tuple[_dt.date, ...]


@dataclass(frozen=True)
class Outcome:
    site: str
    version: int | None  # the new version, None when unchanged or refused
    error: str | None = None  # "conflict" | "invalid"


async def known_sites(store: HubStore) -> list[str]:
    """Every site with a configuration at the hub, in id order."""
    async with store.read() as tx:
        return sorted((await tx.config_versions()).keys())


async def current(store: HubStore, sites: Iterable[str]) -> list[SiteDays]:
    out = []
    for site in sites:
        live = await store.config(site)
        if live is None:
            continue
        cal = load(live[1]).get("calendar")
        days = cal.get("closed", []) if isinstance(cal, dict) else []
        out.append(SiteDays(site, live[0], tuple(sorted(d for d in days
                                                       if isinstance(d, _dt.date)))))
    return out


def with_closed(text: str, days: Iterable[_dt.date]) -> str:
    """The site TOML with ``[calendar] closed`` set to ``days`` (sorted), nothing else changed;
    an empty list removes the key."""
    doc = tomlkit.parse(text)
    wanted = sorted(set(days))
    cal = doc.get("calendar")
    if cal is None:
        if not wanted:
            return text
        cal = tomlkit.table()
        doc["calendar"] = cal
        cal = doc["calendar"]
    if wanted:
        arr = tomlkit.array()
        arr.extend(wanted)
        cal["closed"] = arr
    elif "closed" in cal:
        del cal["closed"]
    return tomlkit.dumps(doc)


async def apply_all(store: HubStore, ingest: Ingest | None, settings: HubSettings,
                    sites: Iterable[SiteDays], days: Iterable[_dt.date], *, actor: str,
                    ip: str | None) -> list[Outcome]:
    """Publish ``days`` as the closed days of each site whose list differs."""
    wanted = tuple(sorted(set(days)))
    out = []
    for s in sites:
        if s.closed == wanted:
            out.append(Outcome(s.site, None))
            continue
        live = await store.config(s.site)
        if live is None:
            continue
        try:
            version = await service.publish(store, ingest, settings, s.site,
                                            with_closed(live[1], wanted), base=live[0],
                                            actor=actor, ip=ip)
        except service.Conflict:
            out.append(Outcome(s.site, None, "conflict"))
        except ConfigError:
            out.append(Outcome(s.site, None, "invalid"))
        else:
            out.append(Outcome(s.site, version))
    return out


def parse_days(text: str, today: _dt.date) -> tuple[list[_dt.date], list[str]]:
    """One date per line (``2027-01-04``, ``2027/1/4``); returns the dates and the lines that are
    not a date or lie in the past (a closed day in the past changes nothing)."""
    days: list[_dt.date] = []
    bad: list[str] = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip().translate(str.maketrans("０１２３４５６７８９／－", "0123456789/-"))
        if not line:
            continue
        parts = line.replace("/", "-").split("-")
        try:
            d = _dt.date(*(int(p) for p in parts)) if len(parts) == 3 else None
        except ValueError:
            d = None
        if d is None or d < today:
            bad.append(raw.strip()[:40])
        else:
            days.append(d)
    return sorted(set(days)), bad


def automatic(start: _dt.date, days: int = 366) -> list[tuple[_dt.date, str]]:
    """The days every site is closed anyway (national holidays, the year end) from ``start``,
    for staff to see what need not be entered."""
    out = []
    for i in range(days):
        d = start + _dt.timedelta(days=i)
        name = national_holiday(d)
        if name is not None:
            out.append((d, name))
        elif in_year_end(YEAR_END, d):
            out.append((d, "年末年始"))
    return out
