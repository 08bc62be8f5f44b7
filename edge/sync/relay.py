"""SyncClient: the edge's MQTT link to the hub (outbox relay, presence, config, commands).

Everything runs on the event loop; paho's thread only forwards (``edge/mqtt.py``), database
work runs on the relay's own thread and connection (``outbox.py``). The client never raises into
the writer: with the broker or the hub down, the queue keeps working and the outbox grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from edge.domain.model import SiteConfig
from edge.mqtt import Handlers, Link, MqttSettings
from edge.protocol import (
    DEFAULT_PREFIX,
    HUB_TOPICS,
    MAX_PAYLOAD,
    SYNC_VERSION,
    Envelope,
    dumps,
    parse_site_topic,
    site_topic,
)
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import commands as cmds
from edge.sync import presence, site_config
from edge.sync.outbox import Limits, SyncDb, counts, first_unacked, read_batch
from edge.sync.replay import Replayer, wait_event
from edge.sync.reservations import ReservationBook, reservation_follower
from edge.sync.staff import StaffBook, staff_follower

_LOGGER = logging.getLogger(__name__)

DeviceViews = presence.DeviceViews


@dataclass(frozen=True, slots=True)
class SyncSettings:
    batch_events: int = 200
    batch_bytes: int = 256_000
    # batches published and not yet acked by the hub (replay: not PUBACKed); at 50 events/s a
    # batch per commit filled 4 in ~80 ms, shorter than the ack round trip, so events waited
    window: int = 16
    resend_s: float = 10.0  # no hub ack for this long: resend from the first unacked seq
    status_min_interval_s: float = 1.0
    status_refresh_s: float = 30.0
    session_expiry_s: int = 86_400
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    commands_ttl_s: float = 86_400
    commands_kept: int = 500


@dataclass(slots=True)
class SyncStats:
    batches_sent: int = 0
    events_sent: int = 0
    resends: int = 0
    stale_acks: int = 0
    status_published: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SyncClient:
    """Relay the outbox to the hub and follow the hub's acks, config and commands.

    ``on_config`` gets each newly applied hub configuration (sync or async); ``devices`` returns
    the device health views for the status message (call ``devices_changed`` on each change).
    """

    def __init__(self, writer: Writer, config: SiteConfig, mqtt_url: str, *,
                 prefix: str = DEFAULT_PREFIX, username: str | None = None,
                 password: str | None = None, ca_file: str | Path | None = None,
                 client_id: str | None = None, mqtt5: bool = True,
                 on_config: site_config.OnConfig | None = None, devices: DeviceViews | None = None,
                 settings: SyncSettings | None = None,
                 now: Callable[[], datetime] = _utcnow,
                 staff: StaffBook | None = None,
                 reservations: ReservationBook | None = None) -> None:
        self.writer = writer
        self.site = config.site
        self.prefix = prefix
        self.settings = s = settings or SyncSettings()
        self.session = str(uuid.uuid4())
        self.stats = SyncStats()
        self._mqtt = MqttSettings.from_url(  # arguments given here beat what the URL says
            mqtt_url, username=username, password=password,
            ca_file=None if ca_file is None else str(ca_file), client_id=client_id,
            protocol=None if mqtt5 else "3.1.1", keepalive=s.keepalive_s,
            reconnect_min_s=s.reconnect_min_s, reconnect_max_s=s.reconnect_max_s,
        ).with_defaults(client_id=f"madoguchi-edge-{config.site}",
                        session_expiry_s=s.session_expiry_s)
        self._devices = devices
        self._now = now
        self._limits = Limits(s.batch_events, s.batch_bytes)
        self._db = SyncDb(writer)
        self._link: Link | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._listening = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._status_wake = asyncio.Event()
        base = None if writer.store.path == ":memory:" else Path(writer.store.path).parent
        self.config = site_config.ConfigFollower(self.site, base, on_config,
                                                 self._status_wake.set)
        self.replayer = Replayer(self._db, self._limits, s.window,
                                 lambda p: self._publish("events", p), lambda: self.connected)
        # relay state: everything <= floor is acked by the hub; sent = last seq published
        self.floor = 0
        self._sent = 0
        self._last_seq = 0
        self._round = 0
        self._inflight: deque[tuple[int, float]] = deque()  # (last seq of a batch, sent at)
        self._progress_at = 0.0
        self._local_version = config.version
        self.sync_error: str | None = None
        # staff who may sign in at the counters (the web app's book, so logins see pushes)
        self.staff = staff_follower(staff if staff is not None else StaffBook())
        # bookings the kiosk may check in (the web app's book, so scans see pushes)
        self.reservations = reservation_follower(
            reservations if reservations is not None else ReservationBook())
        self.desk = cmds.Desk(writer, self.site, self._db.run, self._reply, self._start_replay,
                              now)
        self._replay_task: asyncio.Task[None] | None = None

    # --- lifetime ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._running:
            return
        await self._db.open()

        def load(st: EventStore) -> tuple[int, int, int | None, str | None]:
            return (first_unacked(st), st.last_seq(), site_config.applied_version(st),
                    st.meta(cmds.META_SEEN))

        self.floor, self._last_seq, self.config.version, seen = await self._db.run(load)
        self._sent = self.floor
        s = self.settings
        self.desk.seen = cmds.Seen(seen, time.time(), ttl_s=s.commands_ttl_s, keep=s.commands_kept)
        handlers = Handlers(self._on_message, connected=self._connected,
                            disconnected=self._disconnected, published=self._published)
        will = dumps(presence.offline(self.site, self.session, None))
        self._loop = asyncio.get_running_loop()
        self._link = Link(self._mqtt, handlers, will=(self._topic("status"), will),
                          subscriptions=[self._topic(k) for k in HUB_TOPICS])
        if not self._listening:
            self.writer.subscribe(self._on_commit)
            self._listening = True
        self._running = True
        self._link.start()
        self._spawn(self._relay_loop())
        self._spawn(self._status_loop())
        _LOGGER.info("sync for site %s: broker %s, outbox from seq %d", self.site,
                     self._mqtt.describe(), self.floor + 1)

    async def stop(self) -> None:
        """Say goodbye (retained offline status), disconnect cleanly, close the database."""
        if not self._running:
            return
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._link is not None:
            offline = presence.offline(self.site, self.session,
                                       self._now().isoformat(timespec="milliseconds"))
            await self._link.stop(final=[(self._topic("status"), dumps(offline))])
        await self._db.close()

    @property
    def config_version(self) -> int | None:
        """The hub configuration version applied here (None: none yet)."""
        return self.config.version

    @property
    def config_error(self) -> dict[str, Any] | None:
        """``{version, message}`` of the last refused hub configuration, if any."""
        return self.config.error

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    def devices_changed(self) -> None:
        """Device health changed: publish the status soon (at most once per second). Any thread."""
        loop = self._loop
        if loop is not None and self._running:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._status_wake.set)

    def _topic(self, kind: str) -> str:
        return site_topic(self.prefix, self.site, kind)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("sync task failed", exc_info=task.exception())

    # --- link events -------------------------------------------------------------------------
    def _on_commit(self, events: list[Envelope]) -> None:
        """Writer listener (after each commit): never raises, never blocks."""
        try:
            if self._running and events:
                self._last_seq = max(self._last_seq, events[-1].seq)
                self._wake.set()
        except Exception:  # pragma: no cover - defensive: the writer must not see it
            _LOGGER.exception("sync listener failed")

    def _connected(self, _session_present: bool) -> None:
        self._restart_round()  # the link has subscribed already (``subscriptions``)
        self._status_wake.set()
        self._wake.set()

    def _disconnected(self) -> None:
        self.replayer.disconnected()

    def _published(self, mid: int) -> None:
        self.replayer.published(mid)

    def _publish(self, kind: str, payload: bytes) -> int | None:
        return None if self._link is None else self._link.publish(self._topic(kind), payload)

    def _on_message(self, topic: str, payload: bytes) -> None:
        where = parse_site_topic(self.prefix, topic)
        if where is None or where[0] != self.site or not payload:
            return  # not ours, or a retained message being cleared
        kind = where[1]
        if len(payload) > MAX_PAYLOAD:
            _LOGGER.warning("dropped %s message: %d bytes", kind, len(payload))
            return
        try:
            raw = json.loads(payload)
        except ValueError:
            _LOGGER.warning("dropped %s message: not JSON", kind)
            return
        if not isinstance(raw, dict) or raw.get("v") != SYNC_VERSION \
                or raw.get("site") != self.site:
            _LOGGER.warning("dropped %s message: wrong version or site", kind)
            return
        if kind == "ack":
            self._on_ack(raw)
        elif kind == "config":
            self._spawn(self.config.handle(raw, self._db.run))
        elif kind == "commands":
            self._spawn(self.desk.handle(raw))
        elif kind == "staff":
            self._spawn(self.staff.handle(raw, self._db.run))
        elif kind == "reservations":
            self._spawn(self.reservations.handle(raw, self._db.run))

    # --- outbox relay ------------------------------------------------------------------------
    def _restart_round(self) -> None:
        """Publish again from the first unacked seq (after connect, or an ack timeout)."""
        self._round += 1
        self._inflight.clear()
        self._sent = self.floor
        self._progress_at = time.monotonic()

    async def _relay_loop(self) -> None:
        while self._running:
            await wait_event(self._wake, 1.0)
            self._wake.clear()
            try:
                self._check_resend()
                await self._pump()
            except Exception:
                _LOGGER.exception("sync relay step failed; retrying")
                await asyncio.sleep(1.0)

    def _check_resend(self) -> None:
        if not self._inflight or not self.connected:
            return
        waited = time.monotonic() - max(self._progress_at, self._inflight[0][1])
        if waited >= self.settings.resend_s:
            _LOGGER.info("no ack from the hub for %.0f s: resending from seq %d",
                         waited, self.floor + 1)
            self.stats.resends += 1
            self._restart_round()

    async def _pump(self) -> None:
        """Publish batches while fewer than ``window`` are waiting for the hub's ack."""
        assert self._link is not None
        while self._running and self.connected and len(self._inflight) < self.settings.window:
            rnd, after = self._round, self._sent
            batch = await self._db.run(partial(read_batch, after=after, limits=self._limits))
            if batch is None:
                return
            if rnd != self._round or after != self._sent:
                continue  # a reconnect, resend or ack moved the start meanwhile
            if self._link.publish(self._topic("events"), batch.payload) is None:
                return
            self._sent = batch.last
            self._last_seq = max(self._last_seq, batch.last)
            self._inflight.append((batch.last, time.monotonic()))
            self.stats.batches_sent += 1
            self.stats.events_sent += batch.count

    def _on_ack(self, raw: dict[str, Any]) -> None:
        seq = raw.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            _LOGGER.warning("dropped ack: seq must be a non-negative integer")
            return
        if seq <= self.floor:
            self.stats.stale_acks += 1  # duplicated or reordered: already covered
            return
        if seq > self._last_seq:
            self._spawn(self._ack_ahead(seq))
            return
        self._apply_ack(seq)

    def _apply_ack(self, seq: int) -> None:
        self.floor = seq
        self.sync_error = None
        self._sent = max(self._sent, seq)
        while self._inflight and self._inflight[0][0] <= seq:
            self._inflight.popleft()
        self._progress_at = time.monotonic()
        self._spawn(self._db.run(lambda st: st.ack(seq)))
        self._wake.set()

    async def _ack_ahead(self, seq: int) -> None:
        """An ack beyond what we know: re-read last_seq; still ahead means a replaced database."""
        self._last_seq = max(self._last_seq, (await self._db.run(counts))[0])
        if seq <= self.floor:
            return
        if seq <= self._last_seq:
            self._apply_ack(seq)
            return
        if self.sync_error is None:
            _LOGGER.error("the hub acknowledges seq %d but this edge's log ends at %d "
                          "(database replaced?); ack ignored", seq, self._last_seq)
        self.sync_error = f"ack_ahead: hub {seq}, edge {self._last_seq}"
        self._status_wake.set()

    # --- presence ----------------------------------------------------------------------------
    def status(self, last_seq: int, outbox: int) -> dict[str, Any]:
        version = self.config.version if self.config.version is not None else self._local_version
        return presence.online(
            self.site, self.session, self._now(), version, self.writer.store.schema_version,
            last_seq, outbox, self._devices, config_error=self.config.error,
            sync_error=self.sync_error)

    async def _status_loop(self) -> None:
        s = self.settings
        last = -s.status_min_interval_s
        while self._running:
            await wait_event(self._status_wake, s.status_refresh_s)
            wait = s.status_min_interval_s - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            self._status_wake.clear()  # what changed while waiting is in this publish
            if not self.connected or self._link is None:
                continue
            try:
                last_seq, outbox = await self._db.run(counts)
            except Exception:
                _LOGGER.exception("status: counts failed")
                continue
            self._last_seq = max(self._last_seq, last_seq)
            payload = dumps(self.status(last_seq, outbox))
            if self._link.publish(self._topic("status"), payload, retain=True) is not None:
                self.stats.status_published += 1
                last = time.monotonic()

    # --- commands ----------------------------------------------------------------------------
    def _reply(self, rep: dict[str, Any]) -> None:
        if self._link is not None:
            self._link.publish(self._topic("replies"), dumps(rep), queue=True)

    async def _start_replay(self, start: int) -> int:
        """Replay ``start..last_seq`` (replacing a running replay); returns last_seq."""
        upto = (await self._db.run(counts))[0]
        if self._replay_task is not None:
            self._replay_task.cancel()  # the newer request covers what the hub still misses
        if start <= upto:
            self._replay_task = self._spawn(self.replayer.run(start - 1, upto))
        return upto
