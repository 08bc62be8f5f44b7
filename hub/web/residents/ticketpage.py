"""What a ticket's page says in each phase (``tickets.phase``), shared by the HTML and its script.

The page renders every text on the server (it works without JavaScript); the script gets the
same templates (``JS_KEYS``) to re-render when the stream sends a change. Why the notice form
has three modes: a holder who has registered, or a server without any notice channel, must not
be offered a form that can only fail (and the page says which it is).
"""

from __future__ import annotations

import hashlib
from typing import Any

from markupsafe import Markup
from sqlalchemy import select

from hub.store import HubStore
from hub.store.schema import notify_subscriptions as subs
from hub.web.residents import qr
from hub.web.residents.i18n import name

PHASES = ("waiting", "next", "checked_in", "checkin_before", "checkin_optional", "deferred",
          "checkin_over", "called", "held", "absent", "absent_web", "finished", "cancelled",
          "expired", "pending")
JS_KEYS = ("live", "reconnecting", "est_range", "est_upto", "counter_any", "rule_before",
           "rule_optional", "rule_after", *(f"msg_{p}" for p in PHASES))
CHANNELS = ("email", "sms")
CHECKIN_PENDING = frozenset({"checkin_before", "checkin_optional", "deferred", "checkin_over",
                             "absent_web", "pending"})


def message(t: dict[str, Any], v: dict[str, Any], lang: str) -> str:
    counter = name(v["counter_name"], lang) if v.get("counter_name") else t["counter_any"]
    return str(t["msg_" + v["phase"]]).format(counter=counter, deadline=v.get("deadline") or "")


def rule(t: dict[str, Any], v: dict[str, Any]) -> str:
    """The check-in rule, before or after the check-in ("" once the message says it all)."""
    if v["phase"] in ("checkin_over", "absent", "absent_web"):
        return ""
    if v.get("checked_in"):
        return str(t["rule_after"])
    if v["phase"] == "checkin_optional":
        return str(t["rule_optional"])
    return str(t["rule_before"]).format(grace=v.get("grace_min") or 0)


def show_qr(v: dict[str, Any]) -> bool:
    """The QR is for checking in (and a counter's scanner): shown until the check-in."""
    return v.get("qr") is not None and (not v.get("checked_in") or v["state"] == "absent")


def show_checkin(v: dict[str, Any]) -> bool:
    """The check-in box: while the QR is of use, and "checked in" while still waiting."""
    return show_qr(v) or (bool(v.get("checked_in")) and v["state"] == "waiting")


def qr_markup(t: dict[str, Any], v: dict[str, Any], payload: str | None) -> Markup | None:
    if payload is None:
        return None
    return Markup(qr.svg(payload, str(t["qr_label"]).format(number=v["number"])))  # noqa: S704


async def registered(store: HubStore, token: str) -> bool:
    """A live notice subscription exists for this ticket (only its hash is stored)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with store.read() as tx:
        row = (await tx.conn.execute(select(subs.c.id).where(
            subs.c.token_hash == digest, subs.c.erased_at.is_(None)).limit(1))).first()
    return row is not None


def notice_mode(channels: list[str], is_registered: bool) -> str:
    """``done`` (registered), ``none`` (no channel on this server) or ``form``."""
    if is_registered:
        return "done"
    return "form" if channels else "none"
