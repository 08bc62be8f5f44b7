"""The hub's MQTT consumer: every site's events stored exactly once, acked, gaps repaired.

Why one consumer task: messages are taken off the queue in groups and handled in one
transaction per group (idempotent insert, contiguous seq, site row, due projection rows), so an
ack never covers an uncommitted event and the per-site fold sees events strictly in seq order.
Acks are published only after the commit; a gap (something stored above the contiguous seq)
asks the edge for a replay, at most once per ``replay_interval_s`` while the same gap stays
(doubling up to 5 minutes if the edge cannot fill it). Nothing slower waits on the ack path:
projection rows are throttled per site (``RowWriter``), listeners run in a task of their own
(``Announcer``), and the contiguous seq advances in memory (the store is asked on gaps only).
What is believed, refused or quarantined (forged or implausible events, fold failures, sites not
enrolled) is ``hub.ingest.integrity``'s rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from edge.aio import wait_event
from edge.protocol import (
    DEFAULT_PREFIX,
    SYNC_VERSION,
    Envelope,
    dumps,
    hub_status_topic,
    parse_site_topic,
    site_topic,
)
from hub.ingest import integrity, validate
from hub.ingest.commands import Commands, ReplayAsks
from hub.ingest.listeners import Announcer, Change, ChangeListener
from hub.ingest.mqtt import MqttSettings, hub_link
from hub.ingest.projection import RowWriter, SiteFold, build_fold, pick_config
from hub.stats.live import Rollups
from hub.store import HubStore, Tx
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)

MAX_GROUP = 500  # messages handled in one transaction


@dataclass
class IngestStats:
    messages: int = 0
    events_stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dropped: int = 0
    acks: int = 0
    replays_requested: int = 0
    groups: int = 0
    failures: int = 0


__all__ = ["Change", "ChangeListener", "Ingest", "IngestStats"]


def _iso_now() -> str:
    return now_utc().isoformat(timespec="milliseconds")


class Ingest:
    def __init__(self, store: HubStore, mqtt: MqttSettings, prefix: str = DEFAULT_PREFIX, *,
                 replay_interval_s: float = 5.0, config_poll_s: float = 10.0,
                 max_seq_jump: int = integrity.MAX_JUMP,
                 enrolment: integrity.Enrolment | None = None) -> None:
        self.store = store
        self.guard = integrity.Guard(enrolment or integrity.enrolment_from_env(), max_seq_jump)
        self._collided: dict[str, list[Envelope]] = {}  # displaced within a group (rule 3)
        self.prefix = prefix
        self.replay_interval_s = replay_interval_s
        self.config_poll_s = config_poll_s
        self.stats = IngestStats()
        self.folds: dict[str, SiteFold] = {}
        # this process is the only writer of events (one consumer): the newest contiguous and
        # highest stored seq per site are kept here instead of asked for on every batch
        self._contiguous: dict[str, int] = {}
        self._top: dict[str, int] = {}
        self._published_config: dict[str, int] = {}
        self._published_staff: dict[str, str] = {}  # site -> digest of its staff list
        self._published_reservations: dict[str, str] = {}  # site -> digest of its bookings
        self._drops = validate.DropLog()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._lock = asyncio.Lock()  # one writer of folds and site rows at a time
        self._tasks: list[asyncio.Task[None]] = []
        self._acks_task: asyncio.Task[None] | None = None
        self._config_wakeup = asyncio.Event()
        subs = [site_topic(prefix, "+", kind) for kind in ("events", "status", "replies", "config")]
        self.link = hub_link(
            mqtt, prefix, subscriptions=subs, on_message=self._on_message,
            on_connect=self._on_connect,
            will=(hub_status_topic(prefix), dumps({"v": SYNC_VERSION, "online": False,
                                                   "at": None})),
        )
        self.commands = Commands(self.link, prefix)
        self.replays = ReplayAsks(self.commands, replay_interval_s)
        # told after handled groups (from a task of their own): which sites changed, and the
        # events folded per site (resident pages rebuild their snapshot, the notifier looks
        # for calls)
        self.announcer = Announcer()
        self.listeners: list[ChangeListener] = self.announcer.listeners
        self._fresh: dict[str, list[Envelope]] = {}
        self._touched: set[str] = set()
        self.rows = RowWriter(self.folds)  # projection rows, throttled behind the folds
        self.rollups = Rollups()  # statistics cells, committed with the events (hub.stats)

    # --- lifetime ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Rebuild every known site's state from the store, then connect (in the background)."""
        async with self.store.read() as tx:
            for row in await tx.sites():
                site = row["site"]
                self._contiguous[site] = row["last_seq_contiguous"]
                self.folds[site] = await build_fold(
                    tx, site, row["last_seq_contiguous"], row["config_version_applied"])
        _LOGGER.info("hub ingest: %d sites loaded; broker %s, prefix %s", len(self.folds),
                     self.link.settings.describe(), self.prefix)
        self._tasks = [asyncio.create_task(self._consume(), name="hub-ingest"),
                       asyncio.create_task(self._config_loop(), name="hub-config")]
        self.link.start()

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        return await self.link.wait_connected(timeout)

    async def stop(self) -> None:
        """Say offline (retained), disconnect, and stop the tasks (queued messages are left to
        the broker session and the edges' resends)."""
        offline = dumps({"v": SYNC_VERSION, "online": False, "at": _iso_now()})
        await self.link.stop(final=[(hub_status_topic(self.prefix), offline)])
        tasks = [*self._tasks, *([self._acks_task] if self._acks_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.announcer.stop()
        self.commands.cancel_all()

    # --- commands ------------------------------------------------------------------------------
    async def send_command(self, site: str, type_: str, data: dict[str, Any],
                           ttl_s: float = 30.0) -> dict[str, Any] | None:
        """Send a command to a site and wait for its reply (None if none came within ttl)."""
        return await self.commands.call(site, type_, data, ttl_s)

    # --- config push ---------------------------------------------------------------------------
    def publish_config(self, site: str, version: int, toml: str) -> None:
        self.link.publish(site_topic(self.prefix, site, "config"), dumps(
            {"v": SYNC_VERSION, "site": site, "version": version, "toml": toml}), retain=True)
        self._published_config[site] = version

    def config_changed(self) -> None:
        """A config was stored (by this process or the CLI): publish and refold soon."""
        self._config_wakeup.set()

    async def _config_loop(self) -> None:
        """Publish every site's newest config (retained) that this hub has not yet published,
        and refold sites whose config changed; also after each reconnect (broker may be new)."""
        while True:
            try:
                await self._sync_configs()
            except Exception:
                _LOGGER.exception("config publishing failed; retrying")
            await wait_event(self._config_wakeup, self.config_poll_s)
            self._config_wakeup.clear()

    async def _sync_configs(self) -> None:
        if not self.link.connected:
            return
        async with self.store.read() as tx:
            newest = await tx.config_versions()
            todo = [(s, v) for s, v in newest.items() if self._published_config.get(s, 0) < v]
            texts = [(s, await tx.config(s, v)) for s, v in todo]
        for site, found in texts:
            if found is not None:
                self.publish_config(site, *found)
                await self.refold(site)
        await self._sync_staff()
        await self._sync_reservations()

    async def _sync_staff(self) -> None:
        """Publish (retained) each site's staff list when it changed (hub/auth/edge_push.py),
        so operators sign in at the counters with their own ID while the hub is down."""
        from hub.auth.edge_push import site_lists

        async with self.store.read() as tx:
            lists = await site_lists(tx, [row["site"] for row in await tx.sites()])
        for site, message in lists.items():
            if self._published_staff.get(site) != message["version"]:
                self.link.publish(site_topic(self.prefix, site, "staff"), dumps(message),
                                  retain=True)
                self._published_staff[site] = message["version"]

    async def _sync_reservations(self) -> None:
        """Publish (retained) each configured site's bookings of today and tomorrow when they
        changed (hub/reservations/edge_push.py), so the kiosk checks residents in offline."""
        from hub.reservations.edge_push import site_lists
        from hub.store.store import now_utc

        async with self.store.read() as tx:
            lists = await site_lists(tx, sorted((await tx.config_versions()).keys()), now_utc())
        for site, message in lists.items():
            if self._published_reservations.get(site) != message["version"]:
                self.link.publish(site_topic(self.prefix, site, "reservations"), dumps(message),
                                  retain=True)
                self._published_reservations[site] = message["version"]

    async def refold(self, site: str) -> None:
        """Fold today's events again if the config the fold should use has changed."""
        async with self._lock, self.store.begin() as tx:
            row = await tx.site(site)
            if row is None:
                return
            chosen = await pick_config(tx, site, row["config_version_applied"])
            fold = self.folds.get(site)
            if chosen is None or (fold is not None and fold.version == chosen[0]):
                return
            fold = await build_fold(tx, site, row["last_seq_contiguous"],
                                    row["config_version_applied"])
            await self.guard.folded(tx, fold.failed, now_utc())
            self.folds[site] = fold
            await self._write_projection(tx, site, fold)
            self._touched.add(site)
        _LOGGER.info("site %s: projection refolded with config v%s (%s)", site, fold.version,
                     fold.status)

    async def _write_projection(self, tx: Tx, site: str, fold: SiteFold) -> None:
        await self.rows.write(tx, site, fold)
        await tx.upsert_site(site, projection=fold.status)

    # --- paho callbacks (on the loop) ----------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        self._queue.put_nowait((topic, payload))

    def _on_connect(self) -> None:
        self.link.publish(hub_status_topic(self.prefix), dumps(
            {"v": SYNC_VERSION, "online": True, "at": _iso_now()}), retain=True)
        self._published_config.clear()  # a new broker may have lost retained configs
        self._published_staff.clear()
        self._published_reservations.clear()
        self._config_wakeup.set()
        if self._acks_task is None or self._acks_task.done():
            self._acks_task = asyncio.create_task(self._republish_acks())

    async def _republish_acks(self) -> None:
        try:
            async with self.store.read() as tx:
                rows = await tx.sites()
        except Exception:
            _LOGGER.exception("cannot read sites to republish acks")
            return
        for row in rows:
            if row["last_seq_contiguous"] > 0:
                self._ack(row["site"], row["last_seq_contiguous"])

    # --- the consumer --------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._handle(group)
            except Exception:
                self.stats.failures += 1
                _LOGGER.exception("ingest of %d messages failed (not acked; edges will resend)",
                                  len(group))

    async def _handle(self, group: Sequence[tuple[str, bytes]]) -> None:
        self.stats.groups += 1
        batches: dict[str, dict[int, Envelope]] = {}
        statuses: list[tuple[str, validate.Status]] = []
        for topic, payload in group:
            self.stats.messages += 1
            parsed = parse_site_topic(self.prefix, topic)
            if parsed is None or not payload:  # not a site topic, or a retained message cleared
                continue
            site, kind = parsed
            try:
                if not validate.SITE_ID.match(site):
                    raise validate.Invalid("site id in the topic is not a valid site id")
                if kind == "events":
                    batch = validate.events_batch(payload, site)
                    by_seq = batches.setdefault(site, {})
                    for env in batch.events:
                        first = by_seq.setdefault(env.seq, env)
                        if first == env:
                            self.stats.duplicates += int(first is not env)  # twice in a group
                        else:  # another event for this seq: the later one wins (integrity 3)
                            self._collided.setdefault(site, []).append(first)
                            by_seq[env.seq] = env
                elif kind == "status":
                    statuses.append((site, validate.status(payload, site)))
                elif kind == "replies":
                    self.commands.on_reply(site, validate.reply(payload, site))
                elif kind == "config" and validate.config_version(
                        payload, site) > self._published_config.get(site, 0):
                    self._config_wakeup.set()  # stored by someone else (the CLI)
            except validate.Invalid as exc:
                self._drop(site, kind, str(exc))
        refold: set[str] = set()
        async with self._lock:
            if batches:
                await self._store_batches(batches)
            if statuses:
                refold = await self._store_statuses(statuses)
            if self.rows.stale and self._queue.empty():
                await self._flush_projections()
        for site in refold:
            await self.refold(site)
        await self.flush_changes()

    async def _flush_projections(self) -> None:
        """The end of a burst without events to store: the lagging rows in a transaction of
        their own (a failure leaves them stale for the next group to retry)."""
        stale = set(self.rows.stale)
        try:
            async with self.store.begin() as tx:
                await self.rows.write_stale(tx, every=True)
        except Exception:
            self.rows.stale |= stale
            _LOGGER.exception("writing projection rows failed; retried with the next group")

    async def flush_changes(self) -> None:
        """Hand what changed to the listeners' task (never waits for them; ``settled`` does)."""
        self.announcer.add(self._touched, self._fresh)
        self._touched, self._fresh = set(), {}

    async def settled(self) -> None:
        """Until the listeners have been told every change handled so far."""
        await self.flush_changes()
        await self.announcer.settled()

    def _drop(self, site: str, kind: str, reason: str) -> None:
        self.stats.dropped += 1
        self._drops.warn(site, kind, reason)

    async def _fold(self, tx: Tx, site: str, upto: int, applied: int | None) -> SiteFold:
        fold = self.folds.get(site)
        if fold is None:
            fold = self.folds[site] = await build_fold(tx, site, upto, applied)
        return fold

    async def _store_batches(self, batches: dict[str, dict[int, Envelope]]) -> None:
        now = now_utc()
        results: dict[str, tuple[int, int]] = {}
        stale = set(self.rows.stale)
        replays: dict[str, int] = {}
        try:
            async with self.store.begin() as tx:
                for site, by_seq in batches.items():
                    if not await self._admit(tx, site, by_seq, now, replays):
                        continue
                    results[site] = await self._store_site(tx, site, by_seq, now)
                await self.rows.write_stale(tx, every=self._queue.empty())
                await self.rollups.flush(tx)
        except BaseException:
            self.guard.forget()
            self.rollups.forget(batches)
            self.rows.stale |= stale  # rows written in the rolled-back transaction are not there
            for site in batches:  # the folds may be ahead of what was rolled back
                self.folds.pop(site, None)
                self._contiguous.pop(site, None)
                self._top.pop(site, None)
            raise
        for site, (contiguous, top) in results.items():
            self._contiguous[site] = contiguous
            self._top[site] = top
            self._ack(site, contiguous)
            if top > contiguous:
                self._request_replay(site, contiguous + 1)
            else:
                self.replays.done(site)
        for site, from_seq in replays.items():
            self._request_replay(site, from_seq)

    async def _admit(self, tx: Tx, site: str, by_seq: dict[int, Envelope], now: datetime,
                     replays: dict[str, int]) -> bool:
        """Integrity rules 1, 3 (within a group) and 6 before anything is stored."""
        contiguous = self._contiguous.get(site)
        if contiguous is None:
            row = await tx.site(site)
            contiguous = row["last_seq_contiguous"] if row else 0
        far = await self.guard.admit(tx, site, by_seq, contiguous,
                                     self._collided.pop(site, []), now)
        self.stats.dropped += len(by_seq) if far is None else far
        if far:
            replays[site] = contiguous + 1  # a real edge that far ahead fills in from below
        return far is not None

    async def _store_site(self, tx: Tx, site: str, by_seq: dict[int, Envelope],
                          now: datetime) -> tuple[int, int]:
        envs = [by_seq[s] for s in sorted(by_seq)]  # may be empty: an empty batch is acked too
        res = await tx.insert_events(site, envs, now)
        self.stats.events_stored += res.inserted
        self.stats.duplicates += res.duplicates
        old = self._contiguous.get(site)
        row = None
        if old is None or site not in self.folds:  # else the site row is not needed
            row = await tx.site(site)
            old = row["last_seq_contiguous"] if row else 0
        applied = row["config_version_applied"] if row else None
        taken: set[int] = set()
        if res.conflicts:
            self.stats.conflicts += len(res.conflicts)
            taken = await self.guard.resolve(tx, site, by_seq, res.conflicts, old, now)
        # the contiguous seq advances only over seqs delivered in order in this group (inserted,
        # re-delivered unchanged, or taking a held seq): events stored earlier above a gap stay
        # held until the edge delivers them again in order (integrity rule 2)
        stored = set(by_seq).difference(res.conflicts) | taken
        new = old
        while new + 1 in stored:
            new += 1
        known_top = self._top.get(site)
        top = await tx.max_seq(site) if known_top is None else max(
            known_top, envs[-1].seq if envs else 0, new)
        values: dict[str, Any] = {"last_seq_contiguous": new, "last_seq_received": top}
        if new > old:
            fold = await self._fold(tx, site, old, applied)
            span = range(old + 1, new + 1)
            fresh = [by_seq[s] for s in span]  # each is what is stored at its seq now
            fold.advance(fresh)
            await self.rollups.observe(tx, site, old, fresh)
            await self.guard.folded(tx, fold.failed, now)
            self._fresh.setdefault(site, []).extend(fresh)
            values["last_event_at"] = datetime.fromisoformat(fresh[-1].at)
            if fold.config is not None:
                self.rows.stale.add(site)  # written at the group's end (``RowWriter``)
            values["projection"] = fold.status
        await tx.upsert_site(site, **values)
        return new, top

    def _ack(self, site: str, seq: int) -> None:
        self.stats.acks += 1
        self.link.publish(site_topic(self.prefix, site, "ack"), dumps(
            {"v": SYNC_VERSION, "site": site, "seq": seq, "at": _iso_now()}), retain=True)

    def _request_replay(self, site: str, from_seq: int) -> None:
        if self.replays.ask(site, from_seq):
            self.stats.replays_requested += 1

    async def _store_statuses(self, statuses: list[tuple[str, validate.Status]]) -> set[str]:
        """Presence, device health and applied config; returns sites to refold."""
        replays: list[tuple[str, int]] = []
        refold: set[str] = set()
        async with self.store.begin() as tx:
            for site, st in statuses:
                if not await self.guard.enrolled(tx, site):
                    continue
                row = await tx.site(site)
                if (not st.online and row is not None and row["online"]
                        and row["session"] != st.session):
                    _LOGGER.info("site %s: offline notice of an older session ignored", site)
                    continue
                values: dict[str, Any] = {"online": st.online, "session": st.session,
                                          "status": json.dumps(st.payload, ensure_ascii=False)}
                if st.config_version is not None:
                    values["config_version_applied"] = st.config_version
                    fold = self.folds.get(site)
                    if fold is not None and fold.version != st.config_version:
                        refold.add(site)
                await tx.upsert_site(site, **values)
                self._touched.add(site)
                if st.devices is not None:
                    await tx.replace_devices(site, st.devices)
                contiguous = row["last_seq_contiguous"] if row else 0
                # the edge holds events we lack and has none in flight: they were lost here
                if st.online and st.outbox == 0 and (st.last_seq or 0) > contiguous:
                    replays.append((site, contiguous + 1))
        for site, from_seq in replays:
            self._request_replay(site, from_seq)
        return refold

    def stats_view(self) -> dict[str, Any]:
        return {"connected": self.link.connected, "queued": self._queue.qsize(),
                **asdict(self.stats),
                "projections": {s: f.status for s, f in sorted(self.folds.items())}}
