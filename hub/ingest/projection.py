"""Per-site queue state at the hub, folded with the edge's own ``apply`` (one fold, two places).

Why the edge's fold: the hub's queues, counters and estimates then mean exactly what the site's
screens show. The fold needs the site's ``SiteConfig``: the hub uses the version the edge reports
as applied when it holds that text, else its newest. A site that never got a config from this
hub has no services to fold into, so only its seq and last event time are tracked
(``status == "no_config"``) until a config arrives; then today's events are folded again.

State is rebuilt from today's events only (from the last ``DayOpened``): queues restart every
business day, so that is everything current. Past days' handling-time history (a fallback of the
wait estimate) is therefore not carried, and estimates early in a day can differ slightly from
the edge's until today's handling times are observed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from edge.config import ConfigError, parse_site_config
from edge.domain.model import SiteConfig
from edge.domain.state import State, apply
from edge.domain.views import service_rows
from edge.protocol import Envelope
from hub.store import Tx
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)

ROWS_INTERVAL_S = 0.25  # a busy site's projection rows are rewritten at most this often


class SiteFold:
    """One site's live state; ``status``: ok | no_config | error (only if the day's applied
    events no longer fold after a skip: paused until the next ``DayOpened``)."""

    def __init__(self, site: str, config: SiteConfig | None = None,
                 version: int | None = None, seq: int = 0) -> None:
        self.site = site
        self.config = config
        self.version = version
        self.state: State | None = State(config) if config is not None else None
        self.seq = seq  # last seq folded (or seen, without a config)
        self.error: str | None = None
        self._today: list[Envelope] = []  # applied since the last DayOpened (for ``_rebuild``)
        self.failed: list[tuple[Envelope, str]] = []  # skipped, for ingest to quarantine

    @property
    def status(self) -> str:
        if self.config is None:
            return "no_config"
        return "ok" if self.state is not None else "error"

    def advance(self, envs: Iterable[Envelope]) -> None:
        """Fold contiguous events in seq order. An event the fold cannot apply is skipped and
        put in ``failed`` (ingest quarantines it and alerts): the state is rebuilt from the
        day's events that did apply, so one bad event never blanks the site's queues."""
        for ev in envs:
            self.seq = ev.seq
            if self.state is None:
                if self.config is None or ev.type != "DayOpened":
                    continue
                self.state, self.error = State(self.config), None
            if ev.type == "DayOpened":
                self._today = []
            try:
                apply(self.state, ev)
            except Exception as exc:  # events are facts; a bad one must not stop the ingest
                reason = f"seq {ev.seq} ({ev.type}): {type(exc).__name__}"
                self.failed.append((ev, reason))
                _LOGGER.warning("site %s: cannot fold event seq %d of type %s (%s); skipped "
                                "and quarantined", self.site, ev.seq, ev.type,
                                type(exc).__name__)
                self._rebuild()
            else:
                self._today.append(ev)

    def _rebuild(self) -> None:
        """The state of the day's applied events (``apply`` may have changed it half-way)."""
        assert self.config is not None
        state = State(self.config)
        try:
            for ok in self._today:
                apply(state, ok)
        except Exception as exc:  # cannot happen for a pure fold; pause rather than guess
            self.state, self.error = None, f"rebuild: {type(exc).__name__}"
            return
        self.state = state

    def rows(self, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ``site_queues`` and ``site_counters`` rows of the current state."""
        state = self.state
        if state is None:
            return [], []
        queues = []
        for r in service_rows(state, state.last_at or now):
            est = r["estimate"] or {}
            queues.append({
                "service": r["code"], "status": r["status"], "waiting": r["waiting"],
                "second_wait": r["second_wait"], "issued": r["issued"],
                "open_counters": r["open_counters"], "estimate_low_s": est.get("low_s"),
                "estimate_high_s": est.get("high_s"), "updated_at": now,
            })
        counters = []
        for cid in state.config.counters:
            cur = state.current_ticket(cid)
            counters.append({
                "counter": cid, "open": state.counter(cid).open,
                "current_number": cur.number if cur else None,
                "current_service": cur.service if cur else None,
            })
        return queues, counters


def parse_config(site: str, version: int, text: str) -> SiteConfig | None:
    """A stored config as the fold needs it; None (logged) if it no longer parses."""
    try:
        config = parse_site_config(text, f"hub:{site}@v{version}")
    except ConfigError as exc:
        _LOGGER.warning("site %s: stored config v%d does not parse (%d problems); projection "
                        "without config", site, version, len(exc.problems))
        return None
    if config.site != site:
        _LOGGER.warning("site %s: stored config v%d names another site", site, version)
        return None
    return config


async def pick_config(tx: Tx, site: str, applied: int | None) -> tuple[int, str] | None:
    """The version the edge runs if we hold it, else our newest."""
    found = await tx.config(site, applied) if applied is not None else None
    return found or await tx.config(site)


async def build_fold(tx: Tx, site: str, upto: int, applied: int | None) -> SiteFold:
    """Today's state of ``site`` from stored events ``<= upto`` (the contiguous seq)."""
    chosen = await pick_config(tx, site, applied)
    config = None if chosen is None else parse_config(site, *chosen)
    if chosen is None or config is None:
        return SiteFold(site, seq=upto)
    fold = SiteFold(site, config, chosen[0])
    start = await tx.last_day_opened(site, upto) or 1
    fold.advance(await tx.events(site, after=start - 1, upto=upto))
    fold.seq = upto
    return fold


class RowWriter:
    """The ``site_queues``/``site_counters`` rows of sites whose fold moved (``stale``).

    Why throttled: ``rows()`` and rewriting them cost ~3 ms per site, a third of a busy group's
    transaction, while events, seqs and acks must not wait. Ingest writes, inside the group's
    transaction, the rows of every stale site when no message is waiting (the end of a burst,
    so a quiet hub's rows are current when its ack goes out), else only of sites not written
    for ``interval_s``.
    """

    def __init__(self, folds: dict[str, SiteFold], interval_s: float = ROWS_INTERVAL_S) -> None:
        self.folds = folds
        self.interval_s = interval_s
        self.stale: set[str] = set()
        self._written: dict[str, float] = {}

    async def write(self, tx: Tx, site: str, fold: SiteFold) -> None:
        queues, counters = fold.rows(now_utc())
        await tx.replace_projection(site, queues, counters)
        self.stale.discard(site)
        self._written[site] = time.monotonic()

    async def write_stale(self, tx: Tx, *, every: bool) -> None:
        due = time.monotonic() - self.interval_s
        for site in sorted(self.stale):
            if not (every or self._written.get(site, 0.0) <= due):
                continue
            fold = self.folds.get(site)
            if fold is None:  # dropped by a rolled-back group: fold the committed events
                row = await tx.site(site)
                fold = self.folds[site] = await build_fold(
                    tx, site, row["last_seq_contiguous"] if row else 0,
                    row["config_version_applied"] if row else None)
            if fold.config is None:
                self.stale.discard(site)
            else:
                await self.write(tx, site, fold)
