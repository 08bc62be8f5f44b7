"""The offline half of ``bench edge``: a realistic event log, and the rebuild of its projections.

The log is written by the real ``Writer`` over ``EventStore(durable=False)`` with a
``ManualClock``, so it holds exactly what a site would have written over some weeks.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig
from edge.store.store import EventStore
from edge.store.writer import Writer


@dataclass
class EstimateScore:
    """How well the wait range printed on a ticket matched the wait that followed (DESIGN)."""

    pending: dict[str, tuple[datetime, int, int]] = field(default_factory=dict)
    scored: int = 0
    inside: int = 0
    abs_err_s: float = 0.0

    def issued(self, ticket: dict[str, Any] | None, now: datetime) -> None:
        if ticket and ticket.get("estimate"):
            est = ticket["estimate"]
            self.pending[ticket["id"]] = (now, est["low_s"], est["high_s"])

    def called(self, ticket_id: str, now: datetime) -> None:
        entry = self.pending.pop(ticket_id, None)
        if entry is None:
            return
        issued, low, high = entry
        wait = (now - issued).total_seconds()
        self.scored += 1
        self.inside += low <= wait <= high
        self.abs_err_s += abs(wait - (low + high) / 2)

    def figures(self) -> dict[str, Any]:
        if not self.scored:
            return {}
        return {"estimate_in_range_ratio": round(self.inside / self.scored, 3),
                "estimate_mid_mae_s": round(self.abs_err_s / self.scored, 1),
                "estimate_scored": self.scored}


def generate_log(path: Path, config: SiteConfig, events: int, seed: int = 7,
                 score: EstimateScore | None = None) -> int:
    """Write at least ``events`` events: business days of issues, calls, finishes, transfers
    (two-part A -> T), absences, holds, call-backs, cancellations and day rollovers."""
    rng = random.Random(seed)
    clock = ManualClock(datetime(2026, 11, 2, 8, 30, tzinfo=ZoneInfo(config.timezone)))
    writer = Writer(EventStore(path, config.site, durable=False), config, clock,
                    new_id=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    new_token=lambda: f"{rng.getrandbits(128):032x}")
    kiosk = [s.code for s in config.services.values() if s.kiosk]
    weights = [{"A": 25, "B": 40, "M": 15}.get(code, 10) for code in kiosk]
    # two-part visitors of the first such service go on to the second-stage queue (A -> T)
    first = next((s.code for s in config.services.values() if s.ticket == "two-part"), "")
    second = next((s.code for s in config.services.values() if not s.kiosk), None)
    try:
        day = clock.now()
        while writer.state.seq < events:
            _simulate_day(writer, clock, rng, day, kiosk, weights, (first, second), events,
                          score or EstimateScore())
            day += timedelta(days=3 if day.weekday() == 4 else 1)
        return writer.state.seq
    finally:
        writer.close()


def _simulate_day(writer: Writer, clock: ManualClock, rng: random.Random, day: datetime,
                  kiosk: list[str], weights: list[int], transfer: tuple[str, str | None],
                  limit: int, score: EstimateScore) -> None:
    run: Callable[[c.Command], Any] = writer.execute_sync
    config, state = writer.config, writer.state
    first, second = transfer
    clock.set(day)
    for cid in config.counters:
        run(c.OpenCounter(cid))
    busy_until: dict[str, datetime] = {}
    set_aside: list[tuple[str, int]] = []  # ("held" | "absent", number)
    step_s = 20.0
    end = day + timedelta(hours=8, minutes=30)
    while clock.now() < end and writer.state.seq < limit:
        state = writer.state
        now = clock.now()
        if rng.random() < 0.6:
            channel = rng.choices(("kiosk", "web", "reservation"), (90, 8, 2))[0]
            booking = f"{rng.getrandbits(256):064x}" if channel == "reservation" else None
            issued = run(c.Issue(rng.choices(kiosk, weights)[0], channel,
                                 rng.choice(("ja", "ja", "ja", "en", "zh", "ko")),
                                 reservation=booking))
            score.issued(issued.ticket, now)
        if rng.random() < 0.01 and (waiting := [n for n, tid in state.live_numbers.items()
                                                if state.tickets[tid].state == "waiting"]):
            run(c.Cancel(number=rng.choice(waiting)))
        for cid in config.counters:
            cur = state.current_ticket(cid)
            if cur is not None:
                if now < busy_until[cid]:
                    continue
                r = rng.random()
                if second is not None and cur.stage == 1 and cur.service == first:
                    run(c.Transfer(cid, to_service=second))
                elif r < 0.03:
                    run(c.MarkAbsent(cid))
                    set_aside.append(("absent", cur.number))
                elif r < 0.05:
                    run(c.Hold(cid))
                    set_aside.append(("held", cur.number))
                elif r < 0.07:
                    run(c.Recall(cid))
                    busy_until[cid] = now + timedelta(seconds=60)
                    continue
                else:
                    run(c.Finish(cid))
            if set_aside and rng.random() < 0.05:
                kind, number = set_aside.pop(0)
                out = run(c.CallHeld(cid, number) if kind == "held"
                          else c.ClearAbsence(cid, number=number))
            else:
                out = run(c.CallNext(cid))
            called = state.current_ticket(cid)
            if out.refused is None and called is not None:
                score.called(called.id, now)
                mean = config.services[called.service].handling_s
                busy_until[cid] = now + timedelta(seconds=max(30.0, rng.expovariate(1 / mean)))
        clock.advance(step_s)
    for cid in config.counters:
        if state.current_ticket(cid) is not None:
            run(c.Finish(cid))
        run(c.CloseCounter(cid))
    if rng.random() < 0.5:
        run(c.CloseDay())  # otherwise the next day's first command rolls the day over


def rebuild_figures(workdir: Path, config: SiteConfig, quick: bool) -> dict[str, Any]:
    db = workdir / "rebuild.db"
    score = EstimateScore()
    count = generate_log(db, config, 20_000 if quick else 100_000, score=score)
    store = EventStore(db, config.site)
    try:
        t0 = time.perf_counter()
        store.load_state(config)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.rebuild(config)
        rebuild_s = time.perf_counter() - t0
    finally:
        store.close()
    out: dict[str, Any] = {"rebuild_s": round(rebuild_s, 3), "rebuild_events": count}
    if count >= 100_000:
        out["rebuild_100k_s"] = round(rebuild_s, 3)
    out["startup_load_s"] = round(load_s, 3)
    out.update(score.figures())
    return out
