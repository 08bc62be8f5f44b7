"""The day-before reminder (R5): from 10:00 (Tokyo) the day before, each active reservation of
the next day with an e-mail address gets one reminder in its language, with the link to its
confirmation page. ``reminded_at`` is set in the same statement that claims the row, so two hub
processes, or a restart, never send a reminder twice; a failed send is not retried the same day
(the resident has the confirmation already). Checked every ``EVERY_S`` for the app's lifetime.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
from typing import Any

from aiohttp import web
from sqlalchemy import and_, select, update

from hub.kit.runtime import Runtime
from hub.kit.tasks import run_for_lifetime
from hub.notify.crypto import CryptoError, open_sealed
from hub.notify.senders import Notice, Sender, deliver
from hub.reservations.tables import reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)
SEND_FROM = _dt.time(10, 0)
EVERY_S = 300.0


def due_window(now: _dt.datetime) -> tuple[_dt.datetime, _dt.datetime] | None:
    """The slot times whose reminders are due at ``now``: tomorrow (Tokyo), from 10:00 today."""
    local = now.astimezone(TOKYO)
    if local.time() < SEND_FROM:
        return None
    tomorrow = _dt.datetime.combine(local.date() + _dt.timedelta(days=1), _dt.time(0), TOKYO)
    return tomorrow, tomorrow + _dt.timedelta(days=1)


async def send_due(store: HubStore, settings: HubSettings, sender: Sender,
                   texts: dict[str, dict[str, Any]], now: _dt.datetime) -> int:
    """Send every due reminder once; returns how many were claimed."""
    window = due_window(now)
    if window is None:
        return 0
    async with store.read() as tx:
        rows = (await tx.conn.execute(
            select(reservations.c.id, reservations.c.rid, reservations.c.email_sealed,
                   reservations.c.lang, reservations.c.token, reservation_slots.c.starts_at,
                   reservation_slots.c.ends_at)
            .join(reservation_slots, reservation_slots.c.id == reservations.c.slot_id)
            .where(and_(reservations.c.status == "active",
                        reservations.c.reminded_at.is_(None),
                        reservations.c.email_sealed.is_not(None),
                        reservation_slots.c.starts_at >= window[0],
                        reservation_slots.c.starts_at < window[1])))).all()
    base = os.environ.get("MADOGUCHI_HUB_PUBLIC_URL", "").rstrip("/")
    sent = 0
    for row_id, rid, sealed, lang, token, starts, ends in rows:
        async with store.begin() as tx:  # claim first: one reminder, whoever sends it
            claimed = await tx.conn.execute(
                update(reservations).where(and_(reservations.c.id == row_id,
                                                reservations.c.reminded_at.is_(None)))
                .values(reminded_at=now))
        if claimed.rowcount != 1:
            continue
        try:
            to = open_sealed(settings.keys, row_id, sealed)
        except CryptoError:
            _LOGGER.warning("reminder %s: the contact's key is gone", row_id)
            continue
        t = texts.get(lang) or texts["ja"]
        local = starts.astimezone(TOKYO)
        when = t["date_format"].format(y=local.year, m=local.month, d=local.day,
                                       w=t["weekdays"][local.weekday()])
        when += f" {local:%H:%M}〜{ends.astimezone(TOKYO):%H:%M}"
        body = t["reminder_body"].format(rid=rid, when=when,
                                         url=f"{base}/r/done/{token}?lang={lang}")
        await deliver(sender, Notice(ref=f"reservation:{row_id}:reminder", to=to, lang=lang,
                                     subject=t["reminder_subject"].format(when=when), body=body))
        sent += 1
    return sent


def setup_reminders(app: web.Application, rt: Runtime, texts: dict[str, dict[str, Any]],
                    sender_of: Any) -> None:
    """Check for due reminders every ``EVERY_S`` for the app's lifetime (when e-mail is on)."""

    async def loop() -> None:
        while True:
            sender = sender_of(app)
            if sender is not None:
                try:
                    await send_due(rt.store, rt.settings, sender, texts, now_utc())
                except Exception:
                    _LOGGER.exception("reservation reminders failed; trying again later")
            await asyncio.sleep(EVERY_S)

    run_for_lifetime(app, loop, "hub-reservation-reminders")
