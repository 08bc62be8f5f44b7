"""Commands and ``decide``: current state + command -> new events, or ``Refused``.

``decide`` never mutates state; the writer applies the returned events through ``apply`` and
commits them in one transaction.

Call-next rule (documented for staff): a counter calls, in this order,
1. tickets transferred to this counter by name (oldest transfer first);
2. then its services in the counter's configured priority order; within one service,
   priority tickets (checked-in reservations, or tickets issued with ``priority``) first;
3. oldest arrival at the current stage first: a transferred ticket queues from the moment of
   its transfer, so first-time visitors are not overtaken by returning ones without reason.
Tickets transferred to another counter by name are never called here by "call next".
Web tickets not checked in at the kiosk are passed over (deferred) instead of called, and
marked absent only once their grace period has run out (``edge/domain/web.py``).

Calling while a ticket is still at the counter finishes that ticket first (the operator's
"next" means "done with this one"), as the events show.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.domain.calendar import closed_text, day
from edge.domain.model import CHANNELS, Counter
from edge.domain.state import State, Ticket
from edge.domain.web import WebRefusal, check_issue, checkin_place, must_check_in, pass_over

EventData = tuple[str, dict[str, Any]]


class Refused(Exception):
    """A command that would break a rule. Nothing is written; the reason is shown to people."""

    def __init__(self, code: str, message: str, message_ja: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_ja = message_ja
        self.status = status


@dataclass(frozen=True, slots=True)
class Issue:
    service: str
    channel: str = "kiosk"
    lang: str = "ja"
    priority: bool = False
    kiosk: str | None = None  # the kiosk that asked: its printer prints the ticket
    # channel "reservation": the booking it is for (the sha256 of its QR token, as pushed by
    # the hub); a reservation ticket without one is refused, and one booking gives one ticket
    reservation: str | None = None


@dataclass(frozen=True, slots=True)
class CheckIn:
    """A web ticket or reservation scanned at the kiosk: its holder is in the office now."""

    token: str
    kiosk: str | None = None


@dataclass(frozen=True, slots=True)
class SelectMenu:
    """Staff switch the kiosk menu by hand (Q5); ``None`` returns to the schedule."""

    menu: str | None


@dataclass(frozen=True, slots=True)
class CallNext:
    counter: str


@dataclass(frozen=True, slots=True)
class Recall:
    counter: str


@dataclass(frozen=True, slots=True)
class CallNumber:
    """Call a given number (Q8). Absent or held numbers are called back too (Q9)."""

    counter: str
    number: int


@dataclass(frozen=True, slots=True)
class Hold:
    counter: str


@dataclass(frozen=True, slots=True)
class CallHeld:
    counter: str
    number: int


@dataclass(frozen=True, slots=True)
class MarkAbsent:
    counter: str


@dataclass(frozen=True, slots=True)
class ClearAbsence:
    """Clear an absence by typed number or scanned token, and call the ticket again (Q9)."""

    counter: str
    number: int | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a number not yet called (Q8, Q10)."""

    number: int | None = None
    token: str | None = None
    counter: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    counter: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Send the counter's current visitor to another service or counter, keeping the number."""

    counter: str
    to_service: str | None = None
    to_counter: str | None = None


@dataclass(frozen=True, slots=True)
class OpenCounter:
    counter: str


@dataclass(frozen=True, slots=True)
class CloseCounter:
    counter: str


@dataclass(frozen=True, slots=True)
class CloseDay:
    pass


Command = (
    Issue | CallNext | Recall | CallNumber | Hold | CallHeld | MarkAbsent | ClearAbsence
    | Cancel | Finish | Transfer | OpenCounter | CloseCounter | CloseDay | CheckIn | SelectMenu
)


@dataclass(frozen=True, slots=True)
class Context:
    """What ``decide`` may not invent itself: the time and fresh ids (injected for tests)."""

    now: datetime
    new_id: Callable[[], str]
    new_token: Callable[[], str]


def business_day(now: datetime) -> str:
    return now.date().isoformat()


def rollover(state: State, now: datetime) -> list[EventData]:
    """Events that start a new business day when the clock has passed into one."""
    today = business_day(now)
    if state.day == today:
        return []
    events: list[EventData] = []
    if state.day is not None and state.day_open:
        events.append(_day_closed(state, "rollover"))
    events.append(("DayOpened", {"day": today}))
    return events


def _day_closed(state: State, reason: str) -> EventData:
    expired = sorted(t.id for t in state.tickets.values() if t.live)
    return ("DayClosed", {"day": state.day, "reason": reason, "expired": expired})


# --- lookups that refuse with a reason -------------------------------------------------------

def _cname(state: State, cid: str | None, lang: str) -> str:
    """A counter as staff and visitors know it: its configured name (「1番窓口」), else its id.
    Refusals are read by staff at the counter, so they name things the way the site does."""
    c = state.config.counters.get(cid) if cid is not None else None
    return c.name.get(lang) if c is not None else str(cid)


def _sname(state: State, code: str, lang: str) -> str:
    """A service by its configured name (「印鑑登録」), else its code."""
    svc = state.config.services.get(code)
    return svc.name.get(lang) if svc is not None else code


def _counter(state: State, cid: str) -> Counter:
    c = state.config.counters.get(cid)
    if c is None:
        raise Refused("unknown_counter", f"There is no counter \"{cid}\" in the settings",
                      f"窓口「{cid}」は設定にありません", 404)
    return c


def _open_counter(state: State, cid: str) -> Counter:
    c = _counter(state, cid)
    if not state.counter(cid).open:
        raise Refused("counter_closed",
                      f"{_cname(state, cid, 'en')} is closed; open it first",
                      f"{_cname(state, cid, 'ja')}は休止中です。先に窓口を開始してください")
    return c


def _current(state: State, cid: str) -> Ticket:
    t = state.current_ticket(cid)
    if t is None:
        raise Refused("no_current_ticket", f"{_cname(state, cid, 'en')} is not serving anyone",
                      f"{_cname(state, cid, 'ja')}で対応中の番号はありません")
    return t


def _by_number(state: State, number: int) -> Ticket:
    if state.config.service_for_number(number) is None:
        raise Refused("number_out_of_range", f"{number} is in no service's number range",
                      f"{number}番はどの業務の番号範囲にもありません", 422)
    tid = state.live_numbers.get(number) or state.numbers_today.get(number)
    if tid is None:
        raise Refused("unknown_ticket", f"Number {number} has not been issued today",
                      f"{number}番は本日まだ発券されていません", 404)
    return state.tickets[tid]


def _by_token(state: State, token: str) -> Ticket:
    tid = state.tokens.get(token)
    if tid is None:
        raise Refused("unknown_ticket", "This ticket is not from today or not from this site",
                      "本日この事務所で発券された番号札ではありません", 404)
    return state.tickets[tid]


def _find(state: State, number: int | None, token: str | None) -> Ticket:
    if token:
        return _by_token(state, token)
    if number is not None:
        return _by_number(state, number)
    raise Refused("missing_ticket", "Give a number or a scanned token",
                  "番号または読み取ったコードを指定してください", 422)


def _not_final(t: Ticket) -> None:
    if t.state == "finished":
        raise Refused("already_served", f"Number {t.number} has already been served",
                      f"{t.number}番は対応済みです")
    if t.state == "cancelled":
        raise Refused("ticket_cancelled", f"Number {t.number} was cancelled",
                      f"{t.number}番は取り消されています")
    if t.state == "expired":
        raise Refused("ticket_expired", f"Number {t.number} expired at the close of the day",
                      f"{t.number}番は本日の業務終了により無効になりました")


def _calls(state: State, cid: str, t: Ticket, reason: str) -> list[EventData]:
    """Finish whoever is still at the counter, then call ``t``."""
    events: list[EventData] = []
    cur = state.current_ticket(cid)
    if cur is not None and cur.id != t.id:
        events.append(("TicketFinished", {"ticket": cur.id, "counter": cid, "auto": True}))
    events.append(("TicketCalled", {"ticket": t.id, "counter": cid, "reason": reason,
                                    "number": t.number}))
    return events


# --- selection -------------------------------------------------------------------------------

def next_ticket(state: State, counter: Counter, skip: Collection[str] = ()) -> Ticket | None:
    """The ticket "call next" would call at this counter (rule in the module docstring);
    ``skip``: ticket ids to pass over."""
    best: Ticket | None = None
    best_key: tuple[bool, int, bool, int] | None = None
    for rank, code in enumerate(counter.services):
        for tid in state.waiting.get(code, ()):
            t = state.tickets[tid]
            if tid in skip or (t.target_counter is not None and t.target_counter != counter.id):
                continue
            if t.target_counter is None:
                key = (True, rank, *t.queue_key)
            else:  # named transfers: oldest transfer first, whatever the service (rule 1)
                key = (False, 0, False, t.queue_seq)
            if best_key is None or key < best_key:
                best, best_key = t, key
    return best


def allocate_number(state: State, code: str) -> tuple[int, int]:
    """Next number and lap of a service: consecutive, wrapping past numbers still in use (Q1)."""
    svc = state.config.services[code]
    sd = state.services.get(code)
    if sd is None:
        candidate, lap = svc.first, 1
    else:
        candidate, lap = sd.last_number + 1, sd.lap
    for _ in range(svc.size):
        if candidate > svc.last:
            if not svc.wrap:
                break
            candidate, lap = svc.first, lap + 1
        if candidate not in state.live_numbers:
            return candidate, lap
        candidate += 1
    raise Refused("service_full", f"{_sname(state, code, 'en')} has no free number left today",
                  f"{_sname(state, code, 'ja')}は本日発券できる番号がなくなりました")


# --- decide ----------------------------------------------------------------------------------

def decide(state: State, cmd: Command, ctx: Context) -> list[EventData]:
    """Validate ``cmd`` against ``state``; return its events or raise ``Refused``."""
    if not state.day_open:
        raise Refused("day_closed", "The business day is closed", "本日の業務は終了しました")

    if isinstance(cmd, Issue):
        svc = state.config.services.get(cmd.service)
        if svc is None:
            raise Refused("unknown_service",
                          f"There is no service \"{cmd.service}\" in the settings",
                          f"業務「{cmd.service}」は設定にありません", 404)
        if cmd.channel not in CHANNELS:
            raise Refused("bad_channel", f"Channel must be one of {', '.join(CHANNELS)}",
                          "発券経路が不正です", 422)
        if not svc.kiosk:
            raise Refused("not_issuable",
                          f"{svc.name.get('en')} takes only visitors transferred from a counter",
                          f"{svc.name.get('ja')}は窓口からの送りでのみ受け付けます", 422)
        sd = state.services.get(svc.code)
        if svc.daily_limit is not None and sd is not None and sd.issued >= svc.daily_limit:
            raise Refused("service_full", f"{svc.name.get('en')} has reached today's limit",
                          f"{svc.name.get('ja')}は本日の受付を終了しました")
        today = day(state.config.calendar, state.config.hours, ctx.now.date())
        # a closed day (holiday, year end, ward closure) refuses every ticket; a weekday without
        # hours refuses web tickets only (staff at the office may still hand out numbers)
        if not today.open and (today.reason != "weekly" or cmd.channel == "web"):
            en, ja = closed_text(today)
            raise Refused("office_closed", en, ja)
        if cmd.channel == "web":
            try:
                check_issue(state, svc, ctx.now)
            except WebRefusal as w:
                raise Refused(w.code, w.message, w.message_ja) from None
        if cmd.channel == "reservation":
            if cmd.reservation is None:
                raise Refused("reservation_required",
                              "A reservation ticket is issued only by scanning the "
                              "reservation's QR code",
                              "予約の番号札は、予約のQRコードを読み取って発券します", 422)
            if cmd.reservation in state.reservations_used:
                used = state.tickets.get(state.reservations_used[cmd.reservation])
                number_en = f" (number {used.number})" if used is not None else ""
                number_ja = f"（{used.number}番）" if used is not None else ""
                raise Refused("already_checked_in",
                              f"This reservation is already checked in today{number_en}",
                              f"この予約は本日すでにチェックインしています{number_ja}")
        number, lap = allocate_number(state, svc.code)
        data: dict[str, Any] = {
            "ticket": ctx.new_id(), "service": svc.code, "number": number, "lap": lap,
            "token": ctx.new_token(), "channel": cmd.channel, "lang": cmd.lang,
            "priority": cmd.priority or cmd.channel == "reservation",
        }
        if cmd.kiosk is not None:
            data["kiosk"] = cmd.kiosk
        if cmd.channel == "reservation" and cmd.reservation is not None:
            data["reservation"] = cmd.reservation
        return [("TicketIssued", data)]

    if isinstance(cmd, CheckIn):
        t = _by_token(state, cmd.token)
        if t.channel == "kiosk":
            raise Refused("not_remote",
                          f"Number {t.number} was taken at the ticket machine: no check-in needed",
                          f"{t.number}番は発券機で発券された番号札です。チェックインは不要です")
        if t.checked_in_at is not None:
            raise Refused("already_checked_in", f"Number {t.number} is already checked in",
                          f"{t.number}番はチェックイン済みです")
        _not_final(t)
        checked: dict[str, Any] = {"ticket": t.id, "number": t.number}
        place = checkin_place(t)  # its old place, or behind everyone waiting (web.py rule 3)
        if place is not None:
            checked["place"] = place
        if cmd.kiosk is not None:
            checked["kiosk"] = cmd.kiosk
        return [("TicketCheckedIn", checked)]

    if isinstance(cmd, SelectMenu):
        if cmd.menu is not None and cmd.menu not in state.config.menus:
            raise Refused("unknown_menu", f"There is no menu \"{cmd.menu}\" in the settings",
                          f"メニュー「{cmd.menu}」は設定にありません", 404)
        return [("MenuSelected", {"menu": cmd.menu})]

    if isinstance(cmd, OpenCounter):
        _counter(state, cmd.counter)
        if state.counter(cmd.counter).open:
            raise Refused("counter_open", f"{_cname(state, cmd.counter, 'en')} is already open",
                          f"{_cname(state, cmd.counter, 'ja')}はすでに開始しています")
        return [("CounterOpened", {"counter": cmd.counter})]

    if isinstance(cmd, CloseCounter):
        _open_counter(state, cmd.counter)
        cur = state.current_ticket(cmd.counter)
        if cur is not None:
            raise Refused("counter_busy",
                          f"{_cname(state, cmd.counter, 'en')} is serving number "
                          f"{cur.number}; finish it first",
                          f"{_cname(state, cmd.counter, 'ja')}は{cur.number}番を対応中です。"
                          "先に完了してください")
        return [("CounterClosed", {"counter": cmd.counter})]

    if isinstance(cmd, CloseDay):
        return [_day_closed(state, "staff")]

    if isinstance(cmd, Cancel):
        if cmd.counter is not None:
            _counter(state, cmd.counter)
        t = _find(state, cmd.number, cmd.token)
        _not_final(t)
        if t.state != "waiting":
            raise Refused("already_called", f"Number {t.number} has already been called",
                          f"{t.number}番はすでに呼び出し済みです")
        return [("TicketCancelled", {"ticket": t.id, "counter": cmd.counter})]

    # every remaining command acts at an open counter
    counter = _open_counter(state, cmd.counter)
    cid = counter.id

    if isinstance(cmd, CallNext):
        passed: list[Ticket] = []  # web tickets not checked in: deferred (edge/domain/web.py)
        nxt = next_ticket(state, counter)
        while nxt is not None and must_check_in(state, nxt):
            passed.append(nxt)
            nxt = next_ticket(state, counter, {p.id for p in passed})
        skipped = pass_over(state, passed, nxt, cid, ctx.now)
        if nxt is None:
            if skipped:
                return skipped
            raise Refused("queue_empty", f"No one is waiting for {_cname(state, cid, 'en')}",
                          f"{_cname(state, cid, 'ja')}で待っている人はいません")
        return skipped + _calls(state, cid, nxt, "next")

    if isinstance(cmd, Recall):
        t = _current(state, cid)
        return [("TicketRecalled", {"ticket": t.id, "counter": cid, "number": t.number})]

    if isinstance(cmd, Hold | MarkAbsent | Finish):
        t = _current(state, cid)
        kind = {Hold: "TicketHeld", MarkAbsent: "TicketAbsent", Finish: "TicketFinished"}
        return [(kind[type(cmd)], {"ticket": t.id, "counter": cid})]

    if isinstance(cmd, CallNumber | CallHeld | ClearAbsence):
        token = cmd.token if isinstance(cmd, ClearAbsence) else None
        t = _find(state, cmd.number, token)
        _not_final(t)
        if t.state == "called":
            here = t.counter == cid
            where = "this counter" if here else _cname(state, t.counter, "en")
            where_ja = "この窓口" if here else _cname(state, t.counter, "ja")
            raise Refused("being_served", f"Number {t.number} is being called at {where}",
                          f"{t.number}番は{where_ja}で呼び出し中です")
        if isinstance(cmd, CallHeld) and t.state != "held":
            raise Refused("not_held", f"Number {t.number} is not on hold",
                          f"{t.number}番は保留中ではありません")
        if isinstance(cmd, ClearAbsence) and t.state != "absent":
            raise Refused("not_absent", f"Number {t.number} is not marked absent",
                          f"{t.number}番は不在ではありません")
        reason = {"waiting": "number", "held": "held", "absent": "absence_cleared"}[t.state]
        return _calls(state, cid, t, reason)

    if isinstance(cmd, Transfer):
        t = _current(state, cid)
        return [("TicketTransferred", _transfer_data(state, t, cmd))]

    raise Refused("unknown_command", f"Unknown command {type(cmd).__name__}", "不明な操作です", 400)


def _transfer_data(state: State, t: Ticket, cmd: Transfer) -> dict[str, Any]:
    target = _counter(state, cmd.to_counter) if cmd.to_counter else None
    to_service = cmd.to_service
    if to_service is None:
        if target is None:
            raise Refused("missing_target", "Give a service or a counter to transfer to",
                          "送り先の業務または窓口を指定してください", 422)
        to_service = t.service if t.service in target.services else target.services[0]
    if to_service not in state.config.services:
        raise Refused("unknown_service", f"There is no service \"{to_service}\" in the settings",
                      f"業務「{to_service}」は設定にありません", 404)
    if target is not None and to_service not in target.services:
        raise Refused("counter_lacks_service",
                      f"{target.name.get('en')} does not serve "
                      f"{_sname(state, to_service, 'en')}",
                      f"{target.name.get('ja')}は{_sname(state, to_service, 'ja')}を"
                      "扱っていません", 422)
    if target is not None and target.id == cmd.counter:
        raise Refused("transfer_to_self", "Cannot transfer to the counter you are at",
                      "同じ窓口には送れません", 422)
    return {"ticket": t.id, "counter": cmd.counter, "to_service": to_service,
            "to_counter": target.id if target else None, "stage": t.stage + 1,
            "number": t.number}
