"""Web-ticket rules at the site (W4): the site is authoritative, so they hold even offline.

Fairness towards people who queue in the office: a service takes web tickets only if its
config says so (``Service.web``), only within its hours (site time), and at most ``daily_cap`` a
day.

Check-in (``checkin_required``). A web ticket lets its holder wait at home; they check in by
scanning the QR of their ticket page at the kiosk when they arrive. The rule, chosen so that
nobody in the hall is overtaken and nobody at home is blamed:

1. *Deferred, not absent.* When "call next" reaches a web ticket that is not checked in, it
   passes over it without calling or marking it (a ``TicketDeferred`` event the first time:
   its turn has come) and calls the next person. The ticket keeps its place in line.
2. *Grace.* It keeps its turn for ``checkin_grace_min`` minutes (``web = {…}`` in the site
   config, default 30) counted from the first time its turn came, not from its issue: a ticket
   taken early for a long queue would otherwise have no grace left when its turn came. Only a
   "call next" that reaches it once the grace has run out marks it absent (reason
   ``not_checked_in``); never before, and never without reaching it (it is then at the front:
   everything the counter would call before it was passed over too).
3. *Check-in.* If nobody behind it in its queue was called while it was deferred, it keeps its
   place (issue order). If somebody was (``passed``), or it was already marked absent, its place
   becomes its check-in time: behind everyone waiting at that moment. So a check-in never moves
   a web ticket ahead of a visitor who was waiting then and was not already behind it, and never
   increases anyone's count of people ahead. ``decide`` records the outcome in the event
   (``place``: ``kept`` or ``checkin``) so a rebuild from the log gives the same line.
4. A scan or typed number at a counter (staff see the person) calls it as usual (Q9).

The resident's page says "your turn has come, check in within N minutes to keep it" while it
is deferred, and neutral directions after the grace; it never says they did not come.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from edge.domain.model import Service, WebRules
from edge.domain.state import State, Ticket


class WebRefusal(Exception):
    """A web-rule refusal (turned into ``Refused`` by ``decide``)."""

    def __init__(self, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.code, self.message, self.message_ja = code, message, message_ja


def web_issued(state: State, service: str) -> int:
    """Web tickets of ``service`` issued today (cancelled and served ones count too)."""
    return sum(1 for t in state.tickets.values()
               if t.channel == "web" and t.origin_service == service)


def open_now(rules: WebRules, now: datetime) -> bool:
    return rules.start <= now.strftime("%H:%M") < rules.end


def check_issue(state: State, svc: Service, now: datetime) -> None:
    """Raise ``WebRefusal`` when ``svc`` may not take a web ticket now."""
    rules = svc.web
    if rules is None:
        raise WebRefusal("web_not_offered", f"{svc.name.get('en')} does not offer web tickets",
                         f"{svc.name.get('ja')}はWeb番号札を発行していません")
    if not open_now(rules, now):
        raise WebRefusal(
            "web_closed",
            f"Web tickets for {svc.name.get('en')} are issued from {rules.start} to {rules.end}",
            f"{svc.name.get('ja')}のWeb番号札は{rules.start}～{rules.end}に発行しています")
    if rules.daily_cap is not None and web_issued(state, svc.code) >= rules.daily_cap:
        raise WebRefusal(
            "web_cap_reached", f"Today's web tickets for {svc.name.get('en')} are all taken",
            f"{svc.name.get('ja')}の本日のWeb番号札は上限に達しました")


def rules_of(state: State, t: Ticket) -> WebRules | None:
    svc = state.config.services.get(t.origin_service)
    return svc.web if svc is not None else None


def must_check_in(state: State, t: Ticket) -> bool:
    """True if "call next" must not call ``t``: a first-stage web ticket never called and not
    checked in, of a service whose rules require the check-in."""
    if t.channel != "web" or t.checked_in_at is not None or t.stage != 1 or t.calls:
        return False
    rules = rules_of(state, t)
    return rules is not None and rules.checkin_required


def checkin_deadline(state: State, t: Ticket) -> datetime | None:
    """Until when a deferred ticket keeps its turn; None while its turn has not come."""
    rules = rules_of(state, t)
    if t.deferred_at is None or rules is None:
        return None
    return t.deferred_at + timedelta(minutes=rules.checkin_grace_min)


def pass_over(state: State, skipped: Sequence[Ticket], called: Ticket | None, counter: str,
              now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Events for the web tickets "call next" at ``counter`` passed over (``skipped``, in the
    order it reached them) before calling ``called`` (None: nobody): deferred, or marked absent
    once their grace has run out (rule 2)."""
    events: list[tuple[str, dict[str, Any]]] = []
    for t in skipped:
        deadline = checkin_deadline(state, t)
        if deadline is not None and now >= deadline:
            events.append(("TicketAbsent", {"ticket": t.id, "counter": counter,
                                            "reason": "not_checked_in", "number": t.number}))
            continue
        passed = called is not None and called.service == t.service
        if t.deferred_at is None or (passed and not t.passed):
            events.append(("TicketDeferred", {"ticket": t.id, "counter": counter,
                                              "number": t.number, "passed": passed}))
    return events


def checkin_place(t: Ticket) -> str | None:
    """Where a check-in puts ``t`` (rule 3): ``kept`` (its place), ``checkin`` (behind everyone
    waiting now) or None (not in line: called, held, or a reservation)."""
    if t.channel != "web":
        return None
    if t.state == "absent" or (t.state == "waiting" and t.passed):
        return "checkin"
    return "kept" if t.state == "waiting" else None
