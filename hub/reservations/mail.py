"""The booking confirmation by e-mail (R5): a link to the confirmation page (with its QR), never
the PIN, sent in the resident's language through the hub's e-mail sender (``hub.notify``).

Sent after the booking has committed, in the background with the notice sender's retries: a
slow mail server never holds a booking, and a failed e-mail never undoes one (the page the
resident is looking at already has the QR).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

from hub.notify.senders import Notice, Sender, deliver
from hub.reservations.window import TOKYO

_PENDING: set[asyncio.Task[bool]] = set()  # kept until done: the loop holds tasks weakly


def confirmation(texts: dict[str, Any], *, lang: str, reservation: str, to: str, rid: str,
                 site: str, starts: _dt.datetime, ends: _dt.datetime, url: str,
                 short: bool = False) -> Notice:
    """The e-mail, or with ``short`` the SMS (one line and the link)."""
    local, end = starts.astimezone(TOKYO), ends.astimezone(TOKYO)
    when = texts["date_format"].format(y=local.year, m=local.month, d=local.day,
                                       w=texts["weekdays"][local.weekday()])
    body = texts["sms_body" if short else "mail_body"].format(
        rid=rid, site=site, when=f"{when} {local:%H:%M}〜{end:%H:%M}", url=url)
    return Notice(ref=f"reservation:{reservation}:confirmation", to=to, lang=lang,
                  subject=texts["mail_subject"].format(when=when), body=body)


def send_later(sender: Sender, notice: Notice) -> None:
    task = asyncio.get_running_loop().create_task(deliver(sender, notice))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)
