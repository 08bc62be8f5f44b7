"""The fleet watcher in the hub process: observations -> rules -> incidents -> e-mails.

Runs where ingest runs (``runtime.live`` set; a web-only process has no live state and no
watcher). Two inputs:
- an ingest listener: each status the hub stores gives a clock sample (``trends.ClockOffset``,
  the hub's time when told less the status ``at``), an outbox sample and the time the site was
  last heard of (a site silent for ``stale_s`` counts as offline even if no offline status came);
- a tick every ``tick_s`` (and at once after a status): reads the sites and their devices from
  the store, asks each site's calendar whether it is open now, runs the pure rules and engine,
  stores what opened or recovered, and hands the e-mails to a task of their own (a slow SMTP
  server never delays the next evaluation).
Open incidents are read back at start, so a restart sends no second "opened" e-mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from edge.config import ConfigError, parse_site_config
from edge.domain.calendar import open_at
from edge.domain.model import SiteConfig
from edge.web.metrics import MetricsAccess
from hub.fleet import mail, service
from hub.fleet.engine import Engine, Timing, Transition
from hub.fleet.rules import Device, Observation, findings
from hub.fleet.settings import FleetSettings
from hub.fleet.trends import ClockOffset, OutboxTrend
from hub.ingest.listeners import Change
from hub.kit.runtime import Runtime
from hub.notify.senders import Sender, SmtpSender
from hub.store.schema import sites
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)


@dataclass
class SiteView:
    """One site as the fleet page and /metrics show it."""

    site: str
    name: dict[str, str] | None
    online: bool
    heard: bool  # a status arrived within ``stale_s`` (or the hub has not run that long)
    open_now: bool
    lag_s: int | None
    outbox: int | None
    devices: list[dict[str, Any]]
    host: dict[str, Any]
    clock_offset_s: float | None
    status_at: str | None


def _parse_at(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.timestamp() if at.tzinfo is not None else None


def sync_lag(row: dict[str, Any], status: dict[str, Any], now: datetime) -> int | None:
    """How far behind the hub's copy of the site's log is, in seconds: 0 when the hub holds
    every event the edge said it has; else the age of the newest event the hub holds. None
    before the edge has said anything."""
    edge_seq = status.get("last_seq")
    if not isinstance(edge_seq, int):
        return None
    if edge_seq <= int(row.get("last_seq_contiguous") or 0):
        return 0
    last = row.get("last_event_at")
    return None if last is None else max(0, round((now - last).total_seconds()))


def open_now(config: SiteConfig | None, now: datetime) -> bool:
    """Within the site's opening hours by its calendar; a site without a config counts as
    open (an alert too many beats a silent outage)."""
    if config is None:
        return True
    return open_at(config.calendar, config.hours, now.astimezone(ZoneInfo(config.timezone)))


class Fleet:
    def __init__(self, rt: Runtime, settings: FleetSettings, sender: Sender | None) -> None:
        self.rt, self.settings, self.sender = rt, settings, sender
        self.engine = Engine(Timing(settings.clear_s, settings.flap_rises,
                                    settings.flap_window_s))
        self.clocks: dict[str, ClockOffset] = {}
        self.outboxes: dict[str, OutboxTrend] = {}
        self.heard: dict[str, float] = {}  # hub time a status was last told
        self._last_at: dict[str, str] = {}
        self.started = now_utc().timestamp()
        self.views: list[SiteView] = []
        self.counts = {"opened": 0, "recovered": 0, "mail_sent": 0, "mail_failed": 0}
        self._wake = asyncio.Event()
        self._mails: set[asyncio.Task[None]] = set()
        self._evaluated = asyncio.Event()
        self.evaluations = 0
        self._configs: dict[tuple[str, int], SiteConfig | None] = {}

    # --- inputs --------------------------------------------------------------------------------
    async def on_change(self, change: Change) -> None:
        """Ingest listener: note each new status (clock, outbox, heard) and wake the tick."""
        if not change.sites:
            return
        now = now_utc().timestamp()
        async with self.rt.store.read() as tx:  # one query for every site told
            rows = (await tx.conn.execute(select(sites.c.site, sites.c.status).where(
                sites.c.site.in_(sorted(change.sites))))).all()
        fresh = False
        for row in rows:
            if not row.status:
                continue
            try:
                status = json.loads(row.status)
            except ValueError:
                continue
            at_text = status.get("at")
            if not status.get("online") or not isinstance(at_text, str):
                continue
            site = str(row.site)
            if self._last_at.get(site) == at_text:
                continue  # not a new status (events moved this site)
            self._last_at[site] = at_text
            self.heard[site] = now
            fresh = True
            at = _parse_at(at_text)
            if at is not None:
                self.clocks.setdefault(site, ClockOffset()).add(now, at, at_text)
            outbox = status.get("outbox")
            if isinstance(outbox, int):
                self.outboxes.setdefault(site, OutboxTrend()).add(now, outbox)
        if fresh:
            self._wake.set()

    async def restore(self) -> None:
        for inc in await service.open_incidents(self.rt.store):
            self.engine.restore((inc.site, inc.rule, inc.subject), inc.opened_at.timestamp(),
                                inc.detail)

    # --- one evaluation ------------------------------------------------------------------------
    async def observe(self) -> list[SiteView]:
        now = now_utc()
        ts = now.timestamp()
        async with self.rt.store.read() as tx:
            rows = await tx.sites()
            devices = await tx.devices()
        live = self.rt.live
        views = []
        for row in rows:
            site = str(row["site"])
            config = await live.config(site) if live is not None else \
                await self._stored_config(site)
            try:
                status = json.loads(row["status"]) if row.get("status") else {}
            except ValueError:
                status = {}
            host = status.get("host") if isinstance(status.get("host"), dict) else {}
            clock = self.clocks.get(site)
            views.append(SiteView(
                site=site, name=None if config is None else dict(config.name.values),
                online=bool(row.get("online")),
                heard=ts - self.heard.get(site, self.started) <= self.settings.stale_s,
                open_now=open_now(config, now),
                lag_s=sync_lag(row, status, now),
                outbox=status.get("outbox") if isinstance(status.get("outbox"), int) else None,
                devices=devices.get(site, []), host=host or {},
                clock_offset_s=None if clock is None else clock.estimate(ts),
                status_at=status.get("at") if isinstance(status.get("at"), str) else None))
        return views

    async def _stored_config(self, site: str) -> SiteConfig | None:
        """A web-only process has no live sites: the newest stored config, parsed once per
        version (for the site's name and calendar)."""
        found = await self.rt.store.config(site)
        if found is None:
            return None
        key = (site, found[0])
        if key not in self._configs:
            try:
                self._configs[key] = parse_site_config(found[1])
            except ConfigError:
                self._configs[key] = None
        return self._configs[key]

    def observation(self, v: SiteView, now: float) -> Observation:
        disk = v.host.get("disk_pct")
        trend = self.outboxes.get(v.site)
        return Observation(
            site=v.site, online=v.online and v.heard, open_now=v.open_now,
            devices=tuple(Device(str(d["device"]), str(d["kind"]), str(d["state"]),
                                 d.get("reason")) for d in v.devices),
            disk_pct=float(disk) if isinstance(disk, int | float) else None,
            outbox=v.outbox, outbox_growing_s=0.0 if trend is None else trend.growing_s(now),
            clock_offset_s=v.clock_offset_s)

    async def evaluate(self) -> list[Transition]:
        views = await self.observe()
        self.views = views
        now = now_utc().timestamp()
        rules = await service.all_rules(self.rt.store)
        found = []
        for v in views:
            found += findings(self.observation(v, now), service.rules_for(rules, v.site),
                              hold_s=self.settings.hold_s, minute_s=self.settings.minute_s)
        transitions = self.engine.step(now, found)
        if transitions:
            await self._record(transitions, {v.site: v.name for v in views})
        self.evaluations += 1
        self._evaluated.set()
        return transitions

    async def _record(self, transitions: list[Transition],
                      names: dict[str, dict[str, str] | None]) -> None:
        by_site: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for tr in transitions:
            site, rule, subject = tr.key
            at = datetime.fromtimestamp(tr.at, UTC)
            item: dict[str, Any] = {"kind": tr.kind, "rule": rule, "subject": subject,
                                    "at": tr.at, "flapping": tr.flapping}
            if tr.kind == "opened":
                iid = await service.open_incident(self.rt.store, site, rule, subject, at,
                                                  {**tr.detail, "flapping": tr.flapping})
                self.counts["opened"] += 1
            else:
                opened = await service.close_incident(self.rt.store, site, rule, subject, at)
                if opened is None:
                    continue
                iid = opened
                self.counts["recovered"] += 1
                item["opened_at"] = await self._opened_at(iid)
            _LOGGER.info("fleet: %s %s at site %s%s", rule, tr.kind, site,
                         f" ({subject})" if subject else "")
            by_site.setdefault(site, []).append((iid, item))
        for site, items in by_site.items():
            task = asyncio.create_task(self._mail(site, names.get(site), items))
            self._mails.add(task)
            task.add_done_callback(self._mails.discard)

    async def _opened_at(self, iid: str) -> float | None:
        for inc in await service.recent_incidents(self.rt.store, None, limit=200):
            if inc.id == iid:
                return inc.opened_at.timestamp()
        return None

    async def _mail(self, site: str, names: dict[str, str] | None,
                    items: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            recipients = await service.recipients(self.rt.store, self.rt.settings,
                                                  [site, service.ALL_SITES])
            url = f"{self.rt.settings.public_url}/admin/fleet"
            outcome = await mail.send_all(self.sender, recipients, site, names,
                                          [i for _, i in items], url,
                                          self.settings.mail_retries, items[0][0])
            self.counts["mail_sent" if outcome == "sent" else "mail_failed"] += int(
                outcome in ("sent", "failed"))
            for kind in ("opened", "recovered"):
                ids = [iid for iid, i in items if i["kind"] == kind]
                if ids:
                    await service.mark_mail(self.rt.store, ids, kind, outcome)
        except Exception:
            _LOGGER.exception("fleet: alert e-mails for site %s failed", site)

    async def idle(self) -> None:
        """Until the e-mails handed out so far are done (tests)."""
        while self._mails:
            await asyncio.gather(*list(self._mails), return_exceptions=True)

    # --- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.restore()
        while True:
            try:
                await self.evaluate()
            except Exception:
                _LOGGER.exception("fleet: evaluation failed; tried again next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.tick_s)
            self._wake.clear()


FLEET: web.AppKey[Fleet] = web.AppKey("fleet", Fleet)
FLEET_SETTINGS: web.AppKey[FleetSettings] = web.AppKey("fleet_settings", FleetSettings)
METRICS_GATE: web.AppKey[MetricsAccess] = web.AppKey("fleet_metrics_gate", MetricsAccess)


def setup(app: web.Application, rt: Runtime) -> None:
    """Settings on the app; where ingest runs, the watcher (listener and loop) for the app's
    lifetime, sending through ``SmtpSender`` when ``MADOGUCHI_SMTP_URL`` is set."""
    settings = FleetSettings.from_env()
    app[FLEET_SETTINGS] = settings
    # parsed now: a network that is none stops the start instead of failing every scrape
    app[METRICS_GATE] = MetricsAccess.from_env({
        "MADOGUCHI_METRICS_TOKEN": settings.metrics_token or "",
        "MADOGUCHI_METRICS_ALLOW": ",".join(settings.metrics_allow)})
    if rt.live is None:
        return
    sender = SmtpSender(rt.settings.smtp_url, rt.settings.smtp_from) \
        if rt.settings.smtp_url else None
    fleet = app[FLEET] = Fleet(rt, settings, sender)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        assert rt.live is not None
        rt.live.listen(fleet.on_change)
        task = asyncio.create_task(fleet.run(), name="hub-fleet")
        yield
        rt.live.unlisten(fleet.on_change)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for mail_task in list(fleet._mails):
            mail_task.cancel()

    app.cleanup_ctx.append(lifetime)
