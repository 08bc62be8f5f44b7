"""Event integrity at the hub: which events are believed, which are set aside, and why.

Threat: whoever holds a site's broker credentials can publish on that site's topics. The hub
cannot tell such a publisher from the edge by the message alone, so it relies on how the edge
behaves: it relays its outbox strictly in seq order and resends everything unacked until the hub
acks it. The rules (reason codes are stable: logs, ``ingest_alerts`` and ``event_quarantine``):

1. **Plausible seq** (``seq_implausible``): ``1 <= seq < 2**53`` (``validate``), and at most
   ``max_jump`` past the site's stored contiguous seq. Beyond that the event is refused (never
   stored) and alerted; a replay from the contiguous seq is asked for, so an edge that really is
   that far ahead (a hub database restored from backup) fills in from below.
2. **Held until delivered in order**: the edge sends in seq order, so an event that arrives
   above a gap (seq > contiguous + 1) is out of order: it is stored but *held*, neither acked nor
   folded, and filling the gap below does not promote it. The contiguous seq advances only over
   seqs delivered in order (in one group of messages); a held event counts once the edge
   delivers it again in order (it resends everything unacked, and the hub asks it for a replay
   from the gap), unchanged. Acks only ever cover the contiguous seq, so the hub never acks
   over a seq whose stored event is held.
3. **A conflict on a held seq** (``conflict_displaced``): another event (other id, or the same
   id with other content) arrives for a held seq: the later one takes the seq and the held one
   goes to quarantine. Why the later one: a forgery planted ahead of the edge arrives before the
   edge's event for that seq, and the edge's event always comes (resent until acked), so the
   edge's event wins; when it comes in order it is acked. A forger who publishes again after
   the edge's event but before the gap below fills takes the seq back, and loses it again to
   the edge's resend; every swap is an alert. Two events for one seq in the same group: the
   later one in arrival order wins the same way.
4. **A conflict on an acked seq** (``conflict_after_ack``): the stored event was acked and
   folded; the newcomer is quarantined, never stored over it. This is the case the hub cannot
   decide alone: a forgery at exactly the next seq (contiguous + 1) is acked at once. The edge
   ignores an ack beyond its own log (``ack_ahead``), so its real event then arrives here and is
   kept in quarantine (not lost), with an alert for staff to resolve. Only signed events could
   tell the two apart at arrival (see the note in issue 12).
5. **Fold failure** (``fold_failed``): an event ``edge.domain.state.apply`` raises on stays in
   the log (it is the edge's fact, and acked) but is quarantined as well and skipped by the
   fold; the site's state is rebuilt from the day's other events and stays visible.
6. **Enrolment** (``unknown_site``): with ``enrolment="required"`` events and status of a site
   the hub holds no config for (and has no site row for) are refused and alerted. ``"open"``
   (the default until every deployment enrols its sites with ``hub config set``) accepts them
   and records one ``site_first_seen`` alert.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from edge.protocol import Envelope
from hub.store import Tx
from hub.store import integrity as q

_LOGGER = logging.getLogger(__name__)

MAX_JUMP = 100_000
ALERT_EVERY_S = 10.0

SEQ_IMPLAUSIBLE = "seq_implausible"
CONFLICT_DISPLACED = "conflict_displaced"
CONFLICT_AFTER_ACK = "conflict_after_ack"
DUPLICATE_ID = "duplicate_id"
FOLD_FAILED = "fold_failed"
UNKNOWN_SITE = "unknown_site"
SITE_FIRST_SEEN = "site_first_seen"

Enrolment = Literal["open", "required"]


def enrolment_from_env() -> Enrolment:
    """``MADOGUCHI_HUB_ENROLMENT=required`` refuses sites the hub has not enrolled."""
    return "required" if os.environ.get("MADOGUCHI_HUB_ENROLMENT") == "required" else "open"


def plausible(seq: int, contiguous: int, max_jump: int) -> bool:
    return 1 <= seq <= contiguous + max_jump


class Guard:
    """Alerts (a WARNING log with the reason code, and an ``ingest_alerts`` row) and the
    rate limit on refusals, which a hostile publisher could otherwise turn into a flood of rows:
    at most one row per site and reason every ``every_s`` (the log says how many were skipped)."""

    def __init__(self, enrolment: Enrolment = "open", max_jump: int = MAX_JUMP,
                 every_s: float = ALERT_EVERY_S) -> None:
        self.enrolment = enrolment
        self.max_jump = max_jump
        self.every_s = every_s
        self._enrolled: set[str] = set()  # known enrolled (the store is asked until then)
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self.counts: dict[str, int] = {}

    def _due(self, site: str, reason: str) -> tuple[bool, int]:
        now = time.monotonic()
        last, skipped = self._last.get((site, reason), (-self.every_s, 0))
        if now - last < self.every_s:
            self._last[(site, reason)] = (last, skipped + 1)
            return False, skipped + 1
        self._last[(site, reason)] = (now, 0)
        return True, skipped

    async def alert(self, tx: Tx, site: str, reason: str, seq: int | None, detail: str, *,
                    limited: bool = False) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        due, skipped = self._due(site, reason) if limited else (True, 0)
        if not due:
            return
        more = f" ({skipped} more since the last alert)" if skipped else ""
        _LOGGER.warning("integrity alert %s: site %s seq %s: %s%s", reason, site, seq, detail,
                        more)
        await q.alert(tx, site, reason, seq, detail + more)

    async def quarantine(self, tx: Tx, env: Envelope, reason: str, detail: str,
                         at: datetime) -> None:
        """Quarantine and alert once per event and reason (a resent event adds nothing)."""
        if await q.quarantine(tx, env, reason, at):
            await self.alert(tx, env.site, reason, env.seq, detail)

    def forget(self) -> None:
        """A rolled-back transaction: what it learnt about enrolment is asked again."""
        self._enrolled.clear()

    async def enrolled(self, tx: Tx, site: str) -> bool:
        """Rule 6; alerts on a refusal (rate-limited) or on a site first seen while open."""
        if site in self._enrolled:
            return True
        if await q.enrolled(tx, site):
            self._enrolled.add(site)
            return True
        if self.enrolment == "required":
            await self.alert(tx, site, UNKNOWN_SITE, None, "payload from a site this hub has "
                             "not enrolled; refused", limited=True)
            return False
        await self.alert(tx, site, SITE_FIRST_SEEN, None, "first payload of a site without "
                         "a config; accepted (enrolment is open)")
        self._enrolled.add(site)
        return True

    async def admit(self, tx: Tx, site: str, by_seq: dict[int, Envelope], contiguous: int,
                    collided: list[Envelope], at: datetime) -> int | None:
        """Rules 6, 3 (displaced within the group) and 1 before anything is stored: None if the
        site is not enrolled (nothing is stored), else how many implausible events were removed
        from ``by_seq``."""
        if not await self.enrolled(tx, site):
            return None
        for env in collided:
            await self.quarantine(tx, env, CONFLICT_DISPLACED, "a later event for this seq "
                                  "came in the same group", at)
        far = [s for s in by_seq if not plausible(s, contiguous, self.max_jump)]
        for seq in far:
            del by_seq[seq]
        if far:
            await self.alert(tx, site, SEQ_IMPLAUSIBLE, min(far),
                             f"{len(far)} events more than {self.max_jump} past the contiguous "
                             f"seq {contiguous}; refused", limited=True)
        return len(far)

    async def resolve(self, tx: Tx, site: str, by_seq: dict[int, Envelope],
                      conflicts: Sequence[int], contiguous: int, at: datetime) -> set[int]:
        """Rules 3 and 4 for the seqs ``insert_events`` could not store; returns the seqs where
        the newcomer now is stored (rule 3)."""
        taken: set[int] = set()
        held = await q.stored(tx, site, [s for s in conflicts if s > contiguous])
        for seq in conflicts:
            new = by_seq[seq]
            old = held.get(seq)
            if old is None:  # acked (or its id is taken elsewhere): the newcomer is set aside
                reason = CONFLICT_AFTER_ACK if seq <= contiguous else DUPLICATE_ID
                await self.quarantine(tx, new, reason, "another event is stored for this "
                                      "seq or id; kept the stored one", at)
            elif new.id != old.id and await q.id_stored(tx, new.id):
                await self.quarantine(tx, new, DUPLICATE_ID, "its id is stored at another "
                                      "seq", at)
            else:
                await q.replace_held(tx, old, new, at)
                await self.quarantine(tx, old, CONFLICT_DISPLACED, "a later event took this "
                                      "held seq", at)
                taken.add(seq)
        return taken

    async def folded(self, tx: Tx, failed: list[tuple[Envelope, str]], at: datetime) -> None:
        """Rule 5 for what a fold skipped (``SiteFold.failed``, emptied here)."""
        for env, why in failed:
            await self.quarantine(tx, env, FOLD_FAILED, f"skipped by the fold: {why}", at)
        failed.clear()
