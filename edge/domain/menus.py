"""Which kiosk menu shows at a given moment (Q5, Q17).

Why a rule of its own: a menu schedule used to fall back to "the first menu without a
schedule" outside every window, and in the sample site that was the busy-season menu, so every
Saturday and every night the kiosk offered the wrong services with the wrong guidance. The rule
is now explicit and total:

1. a menu staff chose by hand wins (until they hand back to the schedule);
2. else the menu whose schedule window covers ``now`` (site time; windows of different menus
   never overlap, ``madoguchi config check`` refuses that);
3. else the site's default menu (``default = true``; a site with one menu has it as default).

Pure: the time is passed in, nothing is read from the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from edge.domain.model import Menu, Window


def covers(window: Window, now: datetime) -> bool:
    """``now`` (site time) is on one of the window's weekdays, in [start, end)."""
    return now.weekday() in window.days and window.start <= now.strftime("%H:%M") < window.end


def overlap(a: Window, b: Window) -> bool:
    """Some minute lies in both windows (same weekday, intersecting time ranges)."""
    return bool(set(a.days) & set(b.days)) and a.start < b.end and b.start < a.end


def default_menu(menus: Mapping[str, Menu]) -> str | None:
    """The menu shown outside every schedule: the one marked ``default``, else the first.

    "Else the first" only serves configs built in code; a loaded site has exactly one marked
    default whenever it has more than one menu (the config check insists).
    """
    marked = [m.id for m in menus.values() if m.default]
    return marked[0] if marked else next(iter(menus), None)


def choose_menu(menus: Mapping[str, Menu], chosen: str | None, now: datetime) -> str | None:
    """The kiosk menu at ``now``: staff's choice, else the scheduled one, else the default.

    None only when the site has no menus (the kiosk then offers every kiosk service).
    """
    if chosen is not None and chosen in menus:
        return chosen
    for m in menus.values():
        if any(covers(w, now) for w in m.schedule):
            return m.id
    return default_menu(menus)
