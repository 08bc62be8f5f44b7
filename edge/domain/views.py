"""Projections for people: what screens, the API and the hub show. Pure functions of state.

Wait estimates are ranges meant to hold the middle half of outcomes, learnt from the queue's own
pace: edge/domain/estimate.py says how.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge.domain.calendar import closed_text, day, open_at
from edge.domain.estimate import estimate
from edge.domain.menus import choose_menu
from edge.domain.state import State, Ticket, counters_serving


def open_counters(state: State, code: str) -> int:
    """Open counters serving ``code`` (a counter may serve several queues)."""
    return counters_serving(state, code)[0]


def ahead_of(state: State, t: Ticket) -> int:
    """Waiting tickets of the same queue that call-next would take before ``t``."""
    if t.state != "waiting":
        return 0
    key = t.queue_key
    return sum(1 for tid in state.waiting.get(t.service, ()) if state.tickets[tid].queue_key < key)


def next_in_service(state: State, code: str) -> Ticket | None:
    """The ticket this service would call next (priority first, then oldest)."""
    queue = [state.tickets[tid] for tid in state.waiting.get(code, ())]
    return min(queue, key=lambda t: t.queue_key, default=None)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def ticket_brief(t: Ticket) -> dict[str, Any]:
    """Public facts about a ticket: no token (the token is the holder's secret)."""
    return {
        "id": t.id, "number": t.number, "service": t.service, "origin_service": t.origin_service,
        "stage": t.stage, "state": t.state, "priority": t.priority, "channel": t.channel,
        "counter": t.counter, "target_counter": t.target_counter, "calls": t.calls,
        "issued_at": _iso(t.issued_at), "queued_at": _iso(t.queued_at),
        "called_at": _iso(t.called_at),
    }


def ticket_view(state: State, t: Ticket) -> dict[str, Any]:
    """A ticket as its holder sees it: people ahead and the estimate included."""
    ahead = ahead_of(state, t)
    view = ticket_brief(t)
    view.update({
        "ahead": ahead, "lang": t.lang, "day": t.day,
        "estimate": estimate(state, t.service, ahead) if t.state == "waiting" else None,
        "ticket_kind": state.config.services[t.origin_service].ticket
        if t.origin_service in state.config.services else "single",
    })
    return view


def _closed(state: State, now: datetime) -> bool:
    """Closed only when today's business day was closed; before the first command of a new
    day (the day is not opened yet) the next ticket opens it, so services are open."""
    return not state.day_open and state.day == now.date().isoformat()


def service_rows(state: State, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for code, svc in state.config.services.items():
        q = [state.tickets[tid] for tid in state.waiting.get(code, ())]
        nxt = next_in_service(state, code)
        sd = state.services.get(code)
        full = svc.daily_limit is not None and sd is not None and sd.issued >= svc.daily_limit
        rows.append({
            "code": code, "name": svc.name.values, "kiosk": svc.kiosk, "ticket": svc.ticket,
            "range": [svc.first, svc.last],
            "waiting": len(q),
            "second_wait": sum(1 for t in q if t.stage >= 2),
            "issued": sd.issued if sd else 0,
            "open_counters": open_counters(state, code),
            "status": "full" if full and state.day_open else "closed" if _closed(state, now)
            else "open",
            "estimate": estimate(state, code, len(q)),
            "next": None if nxt is None else {
                "number": nxt.number,
                "issued_at": nxt.issued_at.isoformat(),
                "wait_s": round((now - nxt.issued_at).total_seconds()),
            },
            "queue": [
                {"number": t.number, "stage": t.stage, "priority": t.priority,
                 "target_counter": t.target_counter, "queued_at": t.queued_at.isoformat()}
                for t in q
            ],
        })
    return rows


def counter_rows(state: State, held: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Counters with their current ticket and held numbers (``held``: the held list, if known)."""
    if held is None:
        held = [{"number": t.number, "counter": t.counter}
                for t in state.tickets.values() if t.state == "held"]
    rows = []
    for cid, c in state.config.counters.items():
        cs = state.counter(cid)
        cur = state.tickets.get(cs.current) if cs.current else None
        rows.append({
            "id": cid, "name": c.name.values, "services": list(c.services), "open": cs.open,
            "current": ticket_brief(cur) if cur else None,
            "held": [h["number"] for h in held if h["counter"] == cid],
        })
    return rows


def stats_view(state: State) -> dict[str, Any]:
    """Today's statistics (S1): issued per service and hour, waits, handling times."""
    services: dict[str, dict[str, Any]] = {}
    for code in state.config.services:
        st = state.stats.get(code)
        sd = state.services.get(code)
        if st is None:
            services[code] = {"issued": 0, "by_hour": {}, "wait_avg_s": None, "wait_max_s": None,
                              "handling_avg_s": None, "handled": 0}
            continue
        services[code] = {
            "issued": sd.issued if sd else 0,
            "by_hour": {f"{h:02d}": n for h, n in sorted(st.issued_by_hour.items())},
            "wait_avg_s": round(st.wait_sum / st.wait_count, 1) if st.wait_count else None,
            "wait_max_s": round(st.wait_max, 1) if st.wait_count else None,
            "handling_avg_s": round(sum(st.handling) / len(st.handling), 1)
            if st.handling else None,
            "handled": len(st.handling),
        }
    return {
        "day": state.day,
        "issued_total": sum(s["issued"] for s in services.values()),
        "services": services,
    }


def menus_by_kiosk(state: State, now: datetime) -> dict[str, str | None]:
    """Each kiosk's menu now, where menus are bound to kiosks (``[[menus]] kiosks``): the same
    rule as ``active_menu`` over the menus that kiosk offers. Empty when no menu is bound
    (every kiosk shows the site's menu)."""
    menus = state.config.menus
    bound = {k for m in menus.values() if m.kiosks is not None for k in m.kiosks}
    if not bound:
        return {}
    kiosks = bound | {d.kiosk for d in state.config.devices if d.kiosk is not None}
    return {k: choose_menu(state.config.menus_for(k), state.menu, now) for k in sorted(kiosks)}


def active_menu(state: State, now: datetime) -> str | None:
    """The kiosk menu now (Q5): staff's choice, else the scheduled one, else the default
    (the rule: edge/domain/menus.py); None when the site has no menus."""
    return choose_menu(state.config.menus, state.menu, now)


def snapshot(state: State, now: datetime) -> dict[str, Any]:
    """The whole current state as JSON: what ``GET /api/state`` and the websocket send."""
    by_state: dict[str, list[dict[str, Any]]] = {"absent": [], "held": []}
    for t in state.tickets.values():
        if t.state in by_state:
            by_state[t.state].append({"number": t.number, "service": t.service,
                                      "counter": t.counter, "ticket": t.id})
    calling = []
    for cid in state.config.counters:
        cur = state.current_ticket(cid)
        if cur is not None:
            calling.append({"counter": cid, "number": cur.number, "service": cur.service,
                            "calls": cur.calls, "called_at": _iso(cur.called_at)})
    return {
        "site": state.config.site, "name": state.config.name.values,
        "config_version": state.config.version,
        "day": state.day, "day_open": state.day_open, "seq": state.seq, "at": now.isoformat(),
        "services": service_rows(state, now), "counters": counter_rows(state, by_state["held"]),
        "calling": calling,
        "recent_calls": [
            {"number": c.number, "counter": c.counter, "service": c.service,
             "at": c.at.isoformat(), "seq": c.seq} for c in state.recent_calls
        ],
        "absent": by_state["absent"], "held": by_state["held"],
        "menu": active_menu(state, now), "menu_chosen": state.menu,
        "menus_by_kiosk": menus_by_kiosk(state, now),
        "today": today_view(state, now),
    }


def today_view(state: State, now: datetime) -> dict[str, Any]:
    """The ward's calendar for today (edge/domain/calendar.py): screens say closed with why."""
    today = day(state.config.calendar, state.config.hours, now.date())
    out: dict[str, Any] = {"open": today.open, "open_now": open_at(
        state.config.calendar, state.config.hours, now),
        "hours": None if today.hours is None else list(today.hours), "reason": today.reason,
        "holiday": today.holiday}
    if not today.open:
        out["message"] = dict(zip(("en", "ja"), closed_text(today), strict=True))
    return out
