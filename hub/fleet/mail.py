"""The alert e-mails: one per site per evaluation, to that site's recipients (no aiohttp).

Why one per site per tick: five devices of a site failing together (a power cut on a floor)
are one message listing five lines, not five messages. Each e-mail is written in the
recipient's language first, then the other one (staff may forward it). Sent through
``hub.notify.senders.SmtpSender``; the addresses are never logged (``Notice.__repr__`` and
``Recipient.__repr__`` hide them, failures log the incident ids only).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.fleet.service import Recipient
from hub.notify.senders import Notice, Sender, SendError

_LOGGER = logging.getLogger(__name__)
JST = ZoneInfo("Asia/Tokyo")
LANGS = ("ja", "en")
TEXTS: dict[str, dict[str, Any]] = {
    lang: json.loads((Path(__file__).resolve().parent / "i18n" / f"{lang}.json").read_text(
        encoding="utf-8")) for lang in LANGS}


def _local(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M")


def line(lang: str, kind: str, rule: str, subject: str, at: float, opened_at: float | None,
         flapping: bool = False) -> str:
    t = TEXTS[lang]
    label = t["rule_labels"].get(rule, rule)
    of = t["mail"]["subject_of"].format(subject=subject) if subject else ""
    if kind == "opened":
        text = str(t["mail"]["opened_line"]).format(rule=label, subject=of, at=_local(at))
        return text + (" " + t["mail"]["flapping"] if flapping else "")
    minutes = 0 if opened_at is None else max(0, round((at - opened_at) / 60))
    return str(t["mail"]["recovered_line"]).format(rule=label, subject=of, at=_local(at),
                                                   minutes=minutes)


def compose(lang: str, site: str, names: Mapping[str, str] | None,
            items: Sequence[Mapping[str, Any]], url: str) -> tuple[str, str]:
    """Subject and body of one e-mail about ``items`` (dicts with kind, rule, subject, at,
    opened_at, flapping), in ``lang`` then the other language."""
    def site_name(lg: str) -> str:
        return (names or {}).get(lg) or (names or {}).get("ja") or site

    first = items[0]
    t = TEXTS[lang]
    rule = t["rule_labels"].get(first["rule"], first["rule"])
    if len(items) > 1:
        rule += t["mail"]["more"].format(n=len(items) - 1)
    subject = t["mail"][f"{first['kind']}_subject"].format(
        product=t["mail"]["product"], site=site_name(lang), rule=rule)
    parts = []
    for lg in (lang, *(x for x in LANGS if x != lang)):
        lines = [site_name(lg), ""]
        lines += [line(lg, i["kind"], i["rule"], i["subject"], i["at"], i.get("opened_at"),
                       bool(i.get("flapping"))) for i in items]
        lines += ["", TEXTS[lg]["mail"]["footer"].format(url=url)]
        parts.append("\n".join(lines))
    return subject, "\n\n----------\n\n".join(parts) + "\n"


async def send_all(sender: Sender | None, recipients: Sequence[Recipient], site: str,
                   names: Mapping[str, str] | None, items: Sequence[Mapping[str, Any]],
                   url: str, retries: Sequence[float], ref: str) -> str:
    """Send to every recipient; the outcome for the incidents: sent (to all), failed (to at
    least one, after the retries), off (no SMTP configured) or none (no recipients)."""
    if sender is None:
        return "off"
    if not recipients:
        return "none"
    outcome = "sent"
    for r in recipients:
        subject, body = compose(r.lang, site, names, items, url)
        notice = Notice(f"fleet:{ref}:{r.id}", r.address, r.lang, subject, body)
        for attempt, delay in enumerate((*retries, None)):
            try:
                await sender.send(notice)
                break
            except SendError as exc:
                if exc.permanent or delay is None:
                    _LOGGER.error("fleet alert %s to recipient %s not sent: %s", ref, r.id, exc)
                    outcome = "failed"
                    break
                _LOGGER.warning("fleet alert %s to recipient %s: attempt %d failed (%s); "
                                "retrying in %.0f s", ref, r.id, attempt + 1, exc, delay)
                await asyncio.sleep(delay)
    return outcome
