"""The single writer: every command goes through one thread, one transaction at a time.

Peers compute the next number as max+1 without a lock and print before committing; here a
command is decided, applied and committed (``synchronous=FULL``) before anyone hears of it, and
listeners (websockets, printer, sync relay) are told only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edge.domain.clock import Clock
from edge.domain.commands import Command, Context, EventData, Issue, Refused, decide, rollover
from edge.domain.model import SiteConfig
from edge.domain.state import State, apply
from edge.domain.views import ticket_view
from edge.protocol import ENVELOPE_VERSION, Envelope, uuid7
from edge.store.store import EventStore, Rows, StoreError

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
Listener = Callable[[list[Envelope]], None]
ARCHIVE_CHUNK = 20_000  # events per archive file: ~0.1 s of the writer's time to read or delete


def new_token() -> str:
    """128 random bits, URL-safe: the QR payload, unguessable by design."""
    return secrets.token_urlsafe(16)


@dataclass(slots=True)
class Outcome:
    """What a command did: its committed events, and the ticket it concerns (if any)."""

    events: list[Envelope] = field(default_factory=list)
    refused: Refused | None = None
    ticket: dict[str, Any] | None = None


class Writer:
    def __init__(self, store: EventStore, config: SiteConfig, clock: Clock, *,
                 new_id: Callable[[], str] = uuid7,
                 new_token: Callable[[], str] = new_token) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._new_id = new_id
        self._new_token = new_token
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="madoguchi-writer")
        self._listeners: list[Listener] = []
        self.state: State = store.load_state(config)

    async def responsive(self) -> bool:
        """The writer thread takes work and its database answers (the watchdog's liveness
        check: a writer stuck in a lock or a dead disk stops the pings)."""
        loop = asyncio.get_running_loop()
        return bool(await loop.run_in_executor(self._executor, self.store.ping))

    def subscribe(self, listener: Listener) -> None:
        """Called on the event loop with each committed batch of events."""
        self._listeners.append(listener)

    async def execute(self, cmd: Command | None, actor: str | None = None) -> Outcome:
        """``actor``: the signed-in staff member who gave the command; recorded as ``staff``
        in the data of each event it decides (statistics count per person; rollovers have
        none)."""
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._executor, self.execute_sync, cmd, actor)
        if outcome.events:
            for listener in self._listeners:
                try:
                    listener(outcome.events)
                except Exception:
                    _LOGGER.exception("listener failed")
        return outcome

    def execute_sync(self, cmd: Command | None, actor: str | None = None) -> Outcome:
        """Decide, apply and commit one command; ``None`` only rolls the business day over."""
        with self._lock:
            state = self.state
            now = self.clock.now()
            envs: list[Envelope] = []
            rows = Rows()

            def emit(kind: str, data: dict[str, Any]) -> None:
                day = data["day"] if kind == "DayOpened" else state.day
                env = Envelope(ENVELOPE_VERSION, self.config.site, state.seq + 1,
                               self._new_id(), now.isoformat(), str(day), kind, data)
                apply(state, env)
                rows.capture(state, env)
                envs.append(env)

            for kind, data in rollover(state, now):
                emit(kind, data)
            outcome = Outcome()
            decided: list[EventData] = []
            if cmd is not None:
                try:
                    decided = decide(state, cmd, Context(now, self._new_id, self._new_token))
                except Refused as r:
                    outcome.refused = r
            for kind, data in decided:
                emit(kind, data if actor is None else {**data, "staff": actor})
            if envs:
                closed = any(e.type == "DayClosed" for e in envs)
                try:
                    self.store.commit(envs, rows, state if closed else None)
                except StoreError:
                    _LOGGER.exception("commit failed; reloading state from the event log")
                    self.state = self.store.load_state(self.config)
                    raise
            outcome.events = envs
            if decided and "ticket" in decided[-1][1]:
                t = state.tickets[decided[-1][1]["ticket"]]
                outcome.ticket = ticket_view(state, t)
                if isinstance(cmd, Issue):
                    outcome.ticket["token"] = t.token
            return outcome

    def apply_config(self, config: SiteConfig) -> None:
        """Take a new site configuration (pushed by the hub): the state is refolded from the
        event log under the new config, so numbering, queues and counters follow it at once."""
        with self._lock:
            self.state = self.store.load_state(config)
            self.config = config

    def read(self, fn: Callable[[State], T]) -> T:
        """Run a read-only function against a consistent state (between two commands)."""
        with self._lock:
            return fn(self.state)

    def needs_rollover(self) -> bool:
        """True once the clock has crossed into a new business day (checked periodically)."""
        with self._lock:
            return bool(rollover(self.state, self.clock.now()))

    async def archive_old(self, retention_days: int, chunk: int = ARCHIVE_CHUNK) -> int:
        """Move events older than ``retention_days`` (and acknowledged, and behind a snapshot)
        out of the live database, ``chunk`` at a time; returns how many moved.

        Reading and deleting run on the writer's thread (one writer); compressing and writing
        the file run on another, so commands wait at most for one chunk's read or delete.
        """
        loop = asyncio.get_running_loop()
        today = self.clock.now().date().isoformat()
        moved = 0
        while True:
            upto = await loop.run_in_executor(
                self._executor, self.store.archivable_upto, today, retention_days)
            rows = await loop.run_in_executor(
                self._executor, self.store.archive_rows, upto, chunk)
            if not rows or self.store.archive is None:
                return moved
            await asyncio.to_thread(self.store.archive.write, rows)
            await loop.run_in_executor(self._executor, self.store.drop_archived, rows[-1][0])
            moved += len(rows)
            _LOGGER.info("archived events %d..%d", rows[0][0], rows[-1][0])

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.store.close()

