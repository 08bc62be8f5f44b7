"""A ticket's own page: found by its unguessable token, showing that ticket and nothing else.

The token (128 random bits, the QR payload) is the only key: there is no way to list tickets or
walk numbers. Lookups are dict lookups in the folds' ``State.tokens``. Shape is checked first,
and each client address has two budgets: lookups in general, and misses (a bad or unknown
token), which a holder of a real ticket never spends, so guessing is throttled quickly while
the holder's own page keeps working. Tokens are never logged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.domain import web
from edge.domain.state import State, Ticket
from edge.domain.views import ahead_of, ticket_view
from hub.ingest.projection import SiteFold
from hub.web.ratelimit import RateLimiter
from hub.web.residents import qr
from hub.web.residents.broadcast import Subscriber

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
LIVE = frozenset({"waiting", "called", "held", "absent"})
NOTICE_STATES = frozenset({"waiting", "held"})  # before the call: a notice still helps
NAMED = frozenset({"called", "held", "absent"})  # states whose counter the holder should know
AHEAD_SHOWN = frozenset({"waiting", "next", "checked_in", "checkin_before",
                         "checkin_optional"})


def find(folds: Mapping[str, SiteFold], token: str) -> tuple[SiteFold, Ticket] | None:
    for fold in folds.values():
        state = fold.state
        if state is not None and (tid := state.tokens.get(token)) is not None:
            return fold, state.tickets[tid]
    return None


def phase(state: State, t: Ticket) -> str:
    """What the holder should read (``msg_<phase>`` in ``hub/web/i18n``): the ticket's state,
    refined for web tickets by the check-in rule (``edge/domain/web.py``) and, while waiting, by
    whether anyone is ahead. "Grace over" is judged by the site's own clock (its latest event),
    so the page never says so before the site does."""
    rules = web.rules_of(state, t)
    never_in = t.channel == "web" and t.checked_in_at is None
    if t.state == "absent":
        if never_in and t.absent_reason == "not_checked_in":
            return "checkin_over"
        return "absent_web" if never_in else "absent"
    if t.state != "waiting":
        return t.state
    if never_in and rules is not None:
        if not rules.checkin_required:
            return "checkin_optional"
        deadline = web.checkin_deadline(state, t)
        if deadline is None:
            return "checkin_before"
        if state.last_at is not None and state.last_at >= deadline:
            return "checkin_over"
        return "deferred"
    if not ahead_of(state, t):
        return "next"
    return "checked_in" if t.channel == "web" else "waiting"


def public_view(fold: SiteFold, t: Ticket) -> dict[str, Any]:
    """What the holder may see: their number, queue position, estimate, the calling counter,
    and for a live web ticket its check-in QR's payload and deadline."""
    state = fold.state
    assert state is not None
    assert fold.config is not None
    config = fold.config
    view = ticket_view(state, t)
    svc = config.services.get(t.service)
    counter = config.counters.get(t.counter) if t.counter and t.state in NAMED else None
    shown = phase(state, t)
    ahead = view["ahead"] if shown in AHEAD_SHOWN else None
    deadline = web.checkin_deadline(state, t)
    rules = web.rules_of(state, t)
    return {
        "site": config.site, "site_name": config.name.values,
        "service": t.service, "service_name": svc.name.values if svc else {"ja": t.service},
        "number": t.number, "state": t.state, "stage": t.stage, "day": t.day,
        "phase": shown, "channel": t.channel,
        "ahead": ahead,
        # an estimate only when there is something to estimate: people ahead (None: no counter)
        "estimate": view["estimate"] if ahead else None,
        "counter": t.counter if counter else None,
        "counter_name": counter.name.values if counter else None,
        "called_at": view["called_at"],
        "notice": t.state in NOTICE_STATES,
        "checked_in": t.checked_in_at is not None,
        "deadline": deadline.strftime("%H:%M") if deadline else None,
        "grace_min": rules.checkin_grace_min if rules is not None else None,
        "qr": qr.payload(config.status_url, t.token) if t.channel == "web" and t.live else None,
    }


def pending_view(row: Mapping[str, Any], folds: Mapping[str, SiteFold]) -> dict[str, Any]:
    """A web ticket the hub recorded but has not folded yet: "issued, updating…"."""
    fold = folds.get(str(row["site"]))
    config = fold.config if fold is not None else None
    svc = config.services.get(str(row["service"])) if config is not None else None
    return {
        "site": row["site"], "site_name": config.name.values if config else {"ja": row["site"]},
        "service": row["service"],
        "service_name": svc.name.values if svc else {"ja": row["service"]},
        "number": row["number"], "state": "pending", "stage": 1, "day": row["day"],
        "phase": "pending", "channel": "web",
        "ahead": None, "estimate": None, "counter": None, "counter_name": None,
        "called_at": None, "notice": False, "checked_in": False, "deadline": None,
        "grace_min": None, "qr": None,
    }


def frame(view: dict[str, Any]) -> bytes:
    body = json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()
    return b"event: ticket\ndata: %s\n\n" % body


class Guard:
    """Per-address budgets for ticket lookups (all requests) and misses (bad/unknown tokens)."""

    def __init__(self, rate: float = 2.0, burst: float = 60.0, miss_rate: float = 0.1,
                 miss_burst: float = 10.0) -> None:
        self.lookups = RateLimiter(rate, burst)
        self.misses = RateLimiter(miss_rate, miss_burst)

    def admit(self, ip: str) -> int | None:
        """None if this address may look up a token now, else the seconds to wait."""
        wait = self.misses.retry_after(ip)
        if wait > 0 or not self.lookups.allow(ip):
            return max(1, math.ceil(max(wait, self.lookups.retry_after(ip))))
        return None

    def missed(self, ip: str) -> None:
        self.misses.allow(ip)


@dataclass(eq=False)
class Watch:
    """One open ticket stream: the newest frame it was sent, to send only changes."""

    token: str
    sub: Subscriber = field(default_factory=Subscriber)
    last: bytes | None = None


class Watchers:
    """Ticket streams by site, refreshed when that site's state changes."""

    def __init__(self, max_watchers: int = 50_000) -> None:
        self.max_watchers = max_watchers
        self.by_site: dict[str, set[Watch]] = {}

    def __len__(self) -> int:
        return sum(len(w) for w in self.by_site.values())

    def add(self, site: str, watch: Watch) -> None:
        self.by_site.setdefault(site, set()).add(watch)

    def remove(self, site: str, watch: Watch) -> None:
        group = self.by_site.get(site)
        if group is not None:
            group.discard(watch)
            if not group:
                del self.by_site[site]

    def refresh(self, sites: set[str], folds: Mapping[str, SiteFold]) -> None:
        for site in sites:
            for watch in list(self.by_site.get(site, ())):
                found = find(folds, watch.token)
                if found is None:
                    continue  # still pending (or gone with the day): nothing new to say
                data = frame(public_view(*found))
                if data != watch.last:
                    watch.last = data
                    watch.sub.offer(data)
