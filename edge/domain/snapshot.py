"""The queue state as a snapshot: what start-up loads instead of folding years of events.

Why: ``apply`` over the whole log made start-up grow with history (0.63 s per 100,000 events;
a busy site writes about 2 million a year). The writer stores a snapshot with the events of
each day close (edge/store/store.py); start-up loads the newest one and folds only what
follows it, and ``verify_snapshot`` proves a snapshot equals a fold of the log up to its seq.

A snapshot is exact: ``restore(config, encode(state)) == state`` for every state ``apply`` can
reach (tests/edge/test_snapshot.py checks this on random logs, and that every ``State`` field
is written here, so a new field cannot be forgotten silently). The configuration is not part of
it: the state is restored under the configuration in force at start-up, as a refold did.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from dataclasses import fields
from datetime import datetime
from typing import Any

from edge.domain.model import SiteConfig
from edge.domain.state import (
    PACE_WINDOW,
    Call,
    CounterState,
    Moments,
    ServiceDay,
    ServiceStats,
    State,
    Ticket,
)

FORMAT = 1
# every field of State a snapshot carries; "config" comes from the caller (test: the set of
# State's fields equals this plus "config")
STATE_FIELDS = frozenset({
    "seq", "last_at", "day", "day_open", "tickets", "live_numbers", "numbers_today",
    "reservations_used", "tokens", "waiting", "counters", "services", "stats",
    "history_handling", "history_pace", "recent_calls", "menu",
})
_TICKET_TIMES = frozenset({"issued_at", "queued_at", "called_at", "finished_at",
                           "checked_in_at", "deferred_at"})


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of this format (damaged, or written by another version)."""


def _time(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse(t: str | None) -> datetime | None:
    return None if t is None else datetime.fromisoformat(t)


def _ticket(t: Ticket) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Ticket):
        v = getattr(t, f.name)
        out[f.name] = _time(v) if f.name in _TICKET_TIMES else v
    return out


def _moments(m: Moments) -> list[float]:
    return [m.n, m.total, m.squares]


def _stats(s: ServiceStats) -> dict[str, Any]:
    return {
        "issued_by_hour": [[h, n] for h, n in s.issued_by_hour.items()],
        "wait_sum": s.wait_sum, "wait_count": s.wait_count, "wait_max": s.wait_max,
        "handling": s.handling, "backlog_since": _time(s.backlog_since),
        "pace": list(s.pace),
        "pace_by_hour": [[h, *_moments(m)] for h, m in s.pace_by_hour.items()],
    }


def to_dict(state: State) -> dict[str, Any]:
    """The state as JSON-ready data (every container's order kept: queues are ordered)."""
    return {
        "format": FORMAT,
        "seq": state.seq, "last_at": _time(state.last_at), "day": state.day,
        "day_open": state.day_open, "menu": state.menu,
        "tickets": [_ticket(t) for t in state.tickets.values()],
        "live_numbers": [[n, i] for n, i in state.live_numbers.items()],
        "numbers_today": [[n, i] for n, i in state.numbers_today.items()],
        "reservations_used": [[k, i] for k, i in state.reservations_used.items()],
        "tokens": [[k, i] for k, i in state.tokens.items()],
        "waiting": [[svc, list(q)] for svc, q in state.waiting.items()],
        "counters": [[c.id, c.open, c.current] for c in state.counters.values()],
        "services": [[k, s.last_number, s.lap, s.issued] for k, s in state.services.items()],
        "stats": [[k, _stats(s)] for k, s in state.stats.items()],
        "history_handling": [[k, m, n] for k, (m, n) in state.history_handling.items()],
        "history_pace": [[*key, *_moments(m)] for key, m in state.history_pace.items()],
        "recent_calls": [[c.number, c.counter, c.service, c.at.isoformat(), c.seq]
                         for c in state.recent_calls],
    }


def _restore_ticket(d: dict[str, Any]) -> Ticket:
    kw: dict[str, Any] = {k: (_parse(v) if k in _TICKET_TIMES else v) for k, v in d.items()}
    return Ticket(**kw)


def _restore_stats(d: dict[str, Any]) -> ServiceStats:
    s = ServiceStats()
    s.issued_by_hour = {int(h): int(n) for h, n in d["issued_by_hour"]}
    s.wait_sum, s.wait_count, s.wait_max = d["wait_sum"], d["wait_count"], d["wait_max"]
    s.handling = list(d["handling"])
    s.backlog_since = _parse(d["backlog_since"])
    s.pace = deque(d["pace"], maxlen=PACE_WINDOW)
    s.pace_by_hour = {int(h): Moments(n, t, q) for h, n, t, q in d["pace_by_hour"]}
    return s


def from_dict(config: SiteConfig, d: dict[str, Any]) -> State:
    """The state ``to_dict`` wrote, under ``config`` (counters it names are added, as a fresh
    ``State(config)`` would)."""
    if d.get("format") != FORMAT:
        raise SnapshotError(f"snapshot format {d.get('format')!r}, expected {FORMAT}")
    try:
        state = State(config)
        state.seq, state.last_at = int(d["seq"]), _parse(d["last_at"])
        state.day, state.day_open, state.menu = d["day"], bool(d["day_open"]), d["menu"]
        state.tickets = {t.id: t for t in map(_restore_ticket, d["tickets"])}
        state.live_numbers = {int(n): i for n, i in d["live_numbers"]}
        state.numbers_today = {int(n): i for n, i in d["numbers_today"]}
        state.reservations_used = {k: i for k, i in d["reservations_used"]}
        state.tokens = {k: i for k, i in d["tokens"]}
        state.waiting = {svc: dict.fromkeys(q) for svc, q in d["waiting"]}
        restored = {cid: CounterState(cid, bool(o), cur) for cid, o, cur in d["counters"]}
        state.counters = {**restored, **{k: v for k, v in state.counters.items()
                                         if k not in restored}}
        state.services = {k: ServiceDay(n, lap, issued) for k, n, lap, issued in d["services"]}
        state.stats = {k: _restore_stats(s) for k, s in d["stats"]}
        state.history_handling = {k: (m, n) for k, m, n in d["history_handling"]}
        state.history_pace = {(svc, int(wd), int(h)): Moments(n, t, q)
                              for svc, wd, h, n, t, q in d["history_pace"]}
        state.recent_calls = deque(
            (Call(n, c, s, datetime.fromisoformat(at), seq)
             for n, c, s, at, seq in d["recent_calls"]), maxlen=12)
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"snapshot does not match format {FORMAT}: {exc}") from exc
    return state


def encode(state: State) -> bytes:
    """Compressed JSON: a busy day's close (1,000 tickets) is ~40 kB instead of ~400 kB."""
    return zlib.compress(json.dumps(to_dict(state), separators=(",", ":")).encode(), 6)


def decode(config: SiteConfig, blob: bytes) -> State:
    try:
        data = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise SnapshotError(f"snapshot is damaged: {exc}") from exc
    if not isinstance(data, dict):
        raise SnapshotError("snapshot is not an object")
    return from_dict(config, data)
