"""Event logs for the statistics tests: made by the edge's own ``decide`` and ``apply``, so every
log is one a real site could have written (refused commands write only their rollover).

``Step``s are drawn by hypothesis (``steps()``): commands at counters, time passing within a day,
nights, and midnight crossings while the day is still open; the start is picked around fiscal
year ends (March 31 → April 1) so those boundaries are crossed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from support import TZ, small_site

from edge.domain.commands import (
    CallNext,
    Cancel,
    CheckIn,
    CloseCounter,
    CloseDay,
    Command,
    Context,
    Finish,
    Issue,
    MarkAbsent,
    OpenCounter,
    Recall,
    Refused,
    Transfer,
    decide,
    rollover,
)
from edge.domain.state import State, apply
from edge.protocol import ENVELOPE_VERSION, SYNC_VERSION, Envelope, dumps

CONFIG = small_site(range_size=30)
STAFF = ("", "sato", "tanaka")
STARTS = (datetime(2026, 3, 30, 8, 30, tzinfo=TZ), datetime(2026, 3, 31, 16, 0, tzinfo=TZ),
          datetime(2025, 3, 31, 23, 0, tzinfo=TZ), datetime(2026, 11, 21, 8, 30, tzinfo=TZ))


@dataclass(frozen=True)
class Step:
    kind: str  # "cmd" | "wait" | "night" | "midnight"
    cmd: Command | None = None
    seconds: int = 0
    staff: str = ""


COUNTERS = ("1", "2", "3")


def _command(rnd: random.Random) -> Command:
    """Mostly issues and calls (so tickets live whole lives), now and then the rest."""
    c = rnd.choice(COUNTERS)
    roll = rnd.random()
    if roll < 0.3:
        return Issue(rnd.choice(("A", "A", "B")), rnd.choice(("kiosk", "kiosk", "web")),
                     priority=rnd.random() < 0.1)
    if roll < 0.55:
        return CallNext(c)
    if roll < 0.7:
        return Finish(c)
    if roll < 0.75:
        return Recall(c)
    if roll < 0.8:
        return MarkAbsent(c)
    if roll < 0.86:
        return Transfer(c, to_service=rnd.choice(("C", "B")))
    if roll < 0.9:
        return Cancel(number=rnd.choice((*range(1, 9), *range(201, 209))))
    if roll < 0.95:
        return OpenCounter(c)
    return CloseCounter(c)


def plan(rnd: random.Random, length: int) -> list[Step]:
    """Counters opened, then ``length`` steps: commands by staff (or none), check-ins, waits,
    and rarely a night, a midnight crossing or a day closed by staff."""
    out = [Step("cmd", OpenCounter(c), staff="sato") for c in COUNTERS]
    for _ in range(length):
        roll = rnd.random()
        if roll < 0.75:
            out.append(Step("cmd", _command(rnd), staff=rnd.choice(STAFF)))
        elif roll < 0.8:
            out.append(Step("cmd", CheckIn(""), staff=rnd.choice(STAFF)))
        elif roll < 0.97:
            out.append(Step("wait", seconds=rnd.randint(1, 900)))
        else:
            out.append(rnd.choice((Step("night"), Step("midnight"), Step("cmd", CloseDay()))))
    return out


def steps() -> st.SearchStrategy[tuple[datetime, list[Step]]]:
    """A start near a fiscal year's end and a plan drawn from a hypothesis-chosen seed (a plan
    drawn step by step lets hypothesis favour refused commands: logs without tickets)."""
    return st.tuples(st.sampled_from(STARTS),
                     st.builds(plan, st.randoms(use_true_random=False), st.integers(10, 160)))


def event_log(site: str, start: datetime, plan: Sequence[Step]) -> list[Envelope]:
    """The events a site writes for ``plan`` (as ``edge.store.writer.Writer`` emits them)."""
    state = State(CONFIG)
    now = start
    n = 0
    out: list[Envelope] = []
    tokens: list[str] = []

    def fresh(prefix: str) -> str:
        nonlocal n
        n += 1
        return f"{site}-{prefix}-{n:06d}"

    def emit(kind: str, data: dict[str, Any]) -> None:
        day = data["day"] if kind == "DayOpened" else state.day
        env = Envelope(ENVELOPE_VERSION, site, state.seq + 1, fresh("ev"), now.isoformat(),
                       str(day), kind, data)
        apply(state, env)
        out.append(env)

    def run(step: Step) -> None:
        nonlocal now
        cmd = step.cmd
        if isinstance(cmd, CheckIn):
            cmd = CheckIn(tokens[len(out) % len(tokens)]) if tokens else None
        rolled = rollover(state, now)
        for kind, data in rolled:
            emit(kind, data)
        if rolled:  # a new day: staff open two counters before anything else
            for c in ("1", "2"):
                decide_and_emit(OpenCounter(c), "tanaka")
        if cmd is not None:
            decide_and_emit(cmd, step.staff)
            now += timedelta(seconds=7)

    def decide_and_emit(cmd: Command, staff: str) -> None:
        try:
            decided = decide(state, cmd, Context(now, lambda: fresh("t"), lambda: fresh("tok")))
        except Refused:
            return
        for kind, data in decided:
            emit(kind, {**data, "staff": staff} if staff else data)
            if kind == "TicketIssued":
                tokens.append(str(data["token"]))

    for step in plan:
        if step.kind == "wait":
            now += timedelta(seconds=step.seconds)
        elif step.kind == "night":  # the next morning
            now = (now + timedelta(days=1)).replace(hour=8, minute=30, second=0)
        elif step.kind == "midnight":  # past midnight with the day still open
            now = now.replace(hour=23, minute=58) + timedelta(minutes=4)
        else:
            run(step)
    return out


def batches(site: str, envs: Sequence[Envelope], sizes: Iterator[int]) -> list[bytes]:
    """``envs`` cut into event batches as the edge publishes them."""
    out: list[bytes] = []
    i = 0
    while i < len(envs):
        size = max(1, next(sizes))
        part = envs[i:i + size]
        out.append(dumps({"v": SYNC_VERSION, "site": site, "replay": False,
                          "events": [e.to_dict() for e in part]}))
        i += size
    return out


def as_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)), sort_keys=True)
