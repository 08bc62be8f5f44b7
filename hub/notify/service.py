"""The notifier (W5-W7): watches each site's live state and sends "N ahead" and "called" notices.

Why it works from the fold's state and not only from events: state says exactly how many are
ahead (the edge's own ``ahead_of``) and whether the ticket is still live, also after a restart
or a refold; the events of the change only add what state cannot tell afterwards (a call that
was followed by a finish within the same group, and at which counter).

Each notice is sent at most once: its mark (``sent_*_at``) and, when the ticket is done, the
erasure of the contact are committed first; only then is the prepared message handed to the
sender (retries with backoff in the background). A crash between the two loses a notice but
never sends it twice and never keeps a contact. Contacts are erased as soon as the ticket is
called, cancelled, finished or expired, or its day is over (a new day's fold no longer has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.domain.model import LANGS
from edge.domain.state import State, Ticket
from edge.domain.views import ahead_of
from edge.protocol import Envelope
from hub.ingest import Ingest
from hub.ingest.service import Change
from hub.kit.live import LiveSites
from hub.notify import crypto, subscriptions
from hub.notify import texts as texts_mod
from hub.notify.senders import (
    RETRY_DELAYS_S,
    HttpSmsSender,
    Notice,
    Sender,
    SmtpSender,
    deliver,
)
from hub.settings import HubSettings
from hub.store import HubStore

_LOGGER = logging.getLogger(__name__)

DEFAULT_AHEAD = 3
DONE = frozenset({"finished", "cancelled", "expired", "held"})
MAX_PARALLEL_SENDS = 4


@dataclass(frozen=True)
class Action:
    send: str | None  # ahead | called | None
    erase: bool
    ahead: int = 0
    counter: str | None = None


def decide(sub: subscriptions.Sub, state: State | None, called: dict[str, str]) -> Action | None:
    """What to do for one live subscription; None: nothing yet. ``called``: ticket id -> counter
    of the TicketCalled events in this change."""
    if state is None:  # projection paused or no config: wait (the daily safety net erases)
        return None
    t = state.tickets.get(sub.ticket_id)
    if t is None:  # another business day
        return Action(None, True)
    counter = called.get(t.id)
    if counter is not None or t.state == "called":
        return Action(None if sub.sent_called else "called", True,
                      counter=counter or t.counter)
    if t.state in DONE or (t.state == "absent" and t.called_at is not None):
        return Action(None, True)  # called earlier without us seeing it: too late to notify
    if t.state == "waiting" and not sub.sent_ahead:
        ahead = ahead_of(state, t)
        if ahead <= sub.ahead_n:
            return Action("ahead", False, ahead=ahead)
    return None  # waiting, or a web ticket passed over (absent, may check in and return)


def text_kind(kind: str, ahead: int) -> str:
    """The text to send: an "ahead" notice with nobody ahead any more says "you are next" (a
    ticket registered when its turn is near; "0 visitor(s) ahead" reads as a mistake)."""
    return "next" if kind == "ahead" and ahead == 0 else kind


def ahead_n(state: State, t: Ticket) -> int:
    """The N set by staff for the ticket's current service (the default if it has no rules)."""
    svc = state.config.services.get(t.service)
    return svc.web.notify_ahead if svc is not None and svc.web is not None else DEFAULT_AHEAD


def build_senders(settings: HubSettings) -> dict[str, Sender]:
    senders: dict[str, Sender] = {}
    if settings.smtp_url:
        senders["email"] = SmtpSender(settings.smtp_url, settings.smtp_from)
    if settings.sms_url:
        senders["sms"] = HttpSmsSender(settings.sms_url, settings.sms_token)
    return senders


class Notifier:
    def __init__(self, store: HubStore, live: LiveSites | Ingest, settings: HubSettings, *,
                 senders: dict[str, Sender] | None = None,
                 retry_delays: Sequence[float] = RETRY_DELAYS_S,
                 sweep_interval_s: float = 300.0) -> None:
        # live site state through the kit's one interface (an Ingest is wrapped in it)
        self.live = live if isinstance(live, LiveSites) else LiveSites(live)
        self.store, self.settings = store, settings
        self.senders = build_senders(settings) if senders is None else senders
        self.retry_delays = retry_delays
        self.sweep_interval_s = sweep_interval_s
        self.texts = texts_mod.load(settings.notice_texts)  # a bad file stops the start here
        self._texts_mtime = self._mtime()
        self._lock = asyncio.Lock()
        self._sends: set[asyncio.Task[bool]] = set()
        self._slots = asyncio.Semaphore(MAX_PARALLEL_SENDS)
        self._sweeper: asyncio.Task[None] | None = None

    def available(self, channel: str) -> bool:
        return channel in self.senders

    # --- lifetime ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen to ingest; erase what is stale and catch up with every site right away."""
        self.live.listen(self.on_change)
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="hub-notify-sweep")

    async def stop(self, grace_s: float = 5.0) -> None:
        self.live.unlisten(self.on_change)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._sends:
            _done, pending = await asyncio.wait(self._sends, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                _LOGGER.warning("%d notices still being retried were dropped at shutdown",
                                len(pending))

    async def wait_sent(self) -> None:
        """Until every handed-over notice is sent or given up (tests, shutdown)."""
        while self._sends:
            await asyncio.wait(set(self._sends))

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                _LOGGER.exception("notice sweep failed; retrying later")

    async def sweep(self) -> None:
        async with self._lock:
            async with self.store.begin() as tx:
                stale = await subscriptions.erase_stale(tx)
            if stale:
                _LOGGER.info("erased %d contacts older than a day", stale)
                await self._scrub()
        await self.check(None)

    # --- registration --------------------------------------------------------------------------
    def find(self, token: str) -> tuple[str, State, Ticket] | None:
        """The site, state and ticket a token belongs to (today's, any state)."""
        found = self.live.find_token(token)
        if found is None or found[0].state is None:
            return None
        fold, ticket = found
        state = fold.state
        return None if state is None else (fold.site, state, ticket)

    async def register(self, site: str, ticket: Ticket, token: str, channel: str,
                       contact: str, lang: str, n: int) -> str:
        """Store the (normalised) contact encrypted, then evaluate the site at once (the
        ticket may already be N or fewer ahead)."""
        lang = lang if lang in LANGS else "ja"
        async with self._lock:
            sid = await subscriptions.register(
                self.store, self.settings.keys, self.settings.key_id, site=site,
                ticket_id=ticket.id, token=token, channel=channel, contact=contact, lang=lang,
                ahead_n=n)
        _LOGGER.info("notice %s registered (%s, %s) for site %s", sid[:12], channel, lang, site)
        await self.check({site})
        return sid

    # --- evaluation ----------------------------------------------------------------------------
    async def on_change(self, change: Change) -> None:
        await self.check(change.sites, change.events)

    async def check(self, sites: set[str] | None,
                    events: dict[str, list[Envelope]] | None = None) -> None:
        """Decide, mark and erase in one transaction, then hand the prepared notices over."""
        if sites is not None and not sites:
            return
        async with self._lock:
            async with self.store.read() as tx:
                live = await subscriptions.live(tx, sites)
            if not live:
                return
            self._reload_texts()
            called: dict[str, dict[str, str]] = {}
            for site, envs in (events or {}).items():
                for ev in envs:
                    if ev.type == "TicketCalled":
                        called.setdefault(site, {}).setdefault(ev.data["ticket"],
                                                               ev.data["counter"])
            plans: list[tuple[subscriptions.Sub, Action, Notice | None]] = []
            for sub in live:
                state = self.live.state(sub.site)
                action = decide(sub, state, called.get(sub.site, {}))
                if action is not None:
                    notice = (self._notice(sub, action, state)
                              if action.send and state is not None else None)
                    plans.append((sub, action, notice))
            if not plans:
                return
            ready: list[tuple[str, Notice]] = []
            async with self.store.begin() as tx:
                for sub, action, notice in plans:
                    taken = await subscriptions.mark(tx, sub.id, sent=action.send,
                                                     erase=action.erase)
                    if taken and notice is not None:
                        ready.append((sub.channel, notice))
            for sub, action, _n in plans:
                if action.erase:
                    _LOGGER.info("notice %s: contact erased", sub.id[:12])
            if any(action.erase for _s, action, _n in plans):
                await self._scrub()
        for channel, notice in ready:
            self._hand_over(channel, notice)

    def _notice(self, sub: subscriptions.Sub, action: Action, state: State) -> Notice | None:
        t = state.tickets[sub.ticket_id]
        try:
            contact = crypto.open_sealed(self.settings.keys, sub.id, sub.contact_ct)
        except crypto.CryptoError as exc:
            _LOGGER.warning("notice %s: contact cannot be decrypted (%s); not sent",
                            sub.id[:12], exc)
            return None
        cfg, lang = state.config, sub.lang
        svc = cfg.services.get(t.service)
        counter = cfg.counters.get(action.counter or "")
        kind = action.send or "ahead"
        rendered = self.texts.render(
            text_kind(kind, action.ahead), lang, number=t.number,
            service=svc.name.get(lang) if svc else t.service,
            site=cfg.name.get(lang), ahead=action.ahead,
            counter=counter.name.get(lang) if counter else action.counter or "",
            url=f"{self.settings.public_url}/t/{t.token}")
        return Notice(f"{sub.id[:12]}/{kind}", contact, lang, rendered.subject, rendered.body)

    def _hand_over(self, channel: str, notice: Notice) -> None:
        sender = self.senders.get(channel)
        if sender is None:
            _LOGGER.warning("notice %s: channel %s is not configured; not sent", notice.ref,
                            channel)
            return

        async def run() -> bool:
            async with self._slots:
                return await deliver(sender, notice, self.retry_delays)

        task = asyncio.create_task(run(), name=f"notice-{notice.ref}")
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _scrub(self) -> None:
        """SQLite: move erased pages out of the WAL (secure_delete zeroes the freed bytes) so the
        files hold no old ciphertext. PostgreSQL keeps dead rows until (auto)vacuum."""
        if self.store.dialect != "sqlite":
            return
        try:
            async with self.store.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception as exc:  # best effort: the contact is already NULL in the table
            _LOGGER.warning("WAL checkpoint after erasure failed (%s)", type(exc).__name__)

    # --- texts ---------------------------------------------------------------------------------
    def _mtime(self) -> float | None:
        path = self.settings.notice_texts
        try:
            return Path(path).stat().st_mtime if path else None
        except OSError:
            return None

    def _reload_texts(self) -> None:
        """Staff edit the file while the hub runs: reload it when it changes; a bad edit keeps
        the previous texts (and says why)."""
        mtime = self._mtime()
        if mtime == self._texts_mtime:
            return
        self._texts_mtime = mtime
        try:
            self.texts = texts_mod.load(self.settings.notice_texts)
        except texts_mod.TextsError as exc:
            _LOGGER.warning("notice texts not reloaded, keeping the previous ones: %s", exc)
            return
        _LOGGER.info("notice texts reloaded from %s", self.settings.notice_texts)
