"""Web-ticket rules at the site (W4): the site is authoritative, so they hold even offline.

Fairness towards people who queue in the office: a service takes web tickets only if its
config says so (``Service.web``), only within its hours (site time), and at most ``daily_cap`` a
day. A web ticket whose holder has not checked in at the kiosk is not called by "call next"
(``checkin_required``): it goes to the absent list instead, so the counter is never kept waiting
for someone who is not in the building; a check-in puts it back in line at its old place, and
a scan or typed number at a counter (staff see the person) calls it as usual (Q9).
"""

from __future__ import annotations

from datetime import datetime

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
        raise WebRefusal("web_not_offered", f"{svc.code} does not take tickets online",
                         f"{svc.code} はインターネットでの発券を受け付けていません")
    if not open_now(rules, now):
        raise WebRefusal(
            "web_closed",
            f"Online tickets for {svc.code} are taken from {rules.start} to {rules.end}",
            f"{svc.code} のインターネット発券は {rules.start}～{rules.end} です")
    if rules.daily_cap is not None and web_issued(state, svc.code) >= rules.daily_cap:
        raise WebRefusal(
            "web_cap_reached", f"Today's online tickets for {svc.code} are all taken",
            f"{svc.code} の本日のインターネット発券は上限に達しました")


def must_check_in(state: State, t: Ticket) -> bool:
    """True if "call next" must not call ``t``: a first-stage web ticket never called and not
    checked in, of a service whose rules require the check-in."""
    if t.channel != "web" or t.checked_in_at is not None or t.stage != 1 or t.calls:
        return False
    svc = state.config.services.get(t.origin_service)
    return svc is not None and svc.web is not None and svc.web.checkin_required
