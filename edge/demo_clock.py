"""The demo's clock: ``--at`` and what the demo does when the real time is outside opening hours.

Why a simulated clock at all: the sample offices open 08:30–19:00 on weekdays and take web
tickets 08:30–16:30, so a newcomer trying the demo at night or on a Sunday saw 受付時間外
everywhere and every web ticket refused. The sites and the hub share one clock, so opening
hours, web-ticket hours, menus and notices all agree.

Decision for the default (no ``--at``): if every demo office is open and takes web tickets at
the real Tokyo time, the demo uses the real clock; otherwise it starts a simulated clock at
10:30 on the next day all offices are open, and the banner says so in both languages. A first
run then always shows a working office; ``--at now`` forces the real clock.

The simulated clock advances in real time (not ``--speed`` times): hub commands and web-ticket
challenges keep their real-second lifetimes, and an office stays open for hours, not minutes.
Everything here is pure: the real time is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge.domain.calendar import open_at
from edge.domain.model import SiteConfig

TZ = ZoneInfo("Asia/Tokyo")
DEFAULT_AT = time(10, 30)
DAYS_JA = "月火水木金土日"
DAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ]([01]?\d|2[0-3]):([0-5]\d)$")


class AtError(ValueError):
    """An ``--at`` value that is neither ``now``, ``HH:MM`` nor ``YYYY-MM-DDTHH:MM``."""


def parse_at(text: str, tz: ZoneInfo = TZ) -> datetime | time | None:
    """``now`` -> None (the real clock); ``HH:MM`` -> that time of day (``choose`` picks the
    day); a date and a time -> that moment (Tokyo time)."""
    s = text.strip()
    if s.lower() == "now":
        return None
    if m := _TIME.match(s):
        return time(int(m[1]), int(m[2]))
    if m := _DATETIME.match(s):
        try:
            return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), tzinfo=tz)
        except ValueError:
            pass
    raise AtError(f"--at {text!r}: use HH:MM, YYYY-MM-DDTHH:MM or now "
                  f"/ --at は HH:MM、YYYY-MM-DDTHH:MM または now で指定してください")


def closed_sites(configs: Sequence[SiteConfig], when: datetime) -> list[str]:
    """The sites that are outside their opening hours or web-ticket hours at ``when``."""
    out = []
    for config in configs:
        local = when.astimezone(ZoneInfo(config.timezone))
        hhmm = local.strftime("%H:%M")
        # the ward's calendar: a holiday or the year-end closure is closed whatever the hours
        site_open = open_at(config.calendar, config.hours, local)
        web_open = all(s.web.start <= hhmm < s.web.end
                       for s in config.services.values() if s.web is not None)
        if not (site_open and web_open):
            out.append(config.site)
    return out


def next_open(configs: Sequence[SiteConfig], day: date, at: time = DEFAULT_AT,
              after: datetime | None = None) -> datetime:
    """``at`` on the first day from ``day`` when every site is open then (and not before
    ``after``); ``day`` itself if no day of the coming week works (the banner then lists the
    closed sites)."""
    for i in range(8):
        when = datetime.combine(day + timedelta(days=i), at, TZ)
        if (after is None or when >= after) and not closed_sites(configs, when):
            return when
    return datetime.combine(day, at, TZ)


@dataclass(frozen=True)
class ClockChoice:
    start: datetime | None  # None: the real clock
    real: datetime
    reason: str  # at | open | closed (the default moved the demo to an open time)
    closed: tuple[str, ...]  # sites outside their hours at the start


def choose(at: str | None, configs: Sequence[SiteConfig], real: datetime) -> ClockChoice:
    """What the demo's clock starts at; raises ``AtError`` for a bad ``--at``. ``--at HH:MM``
    starts on the first day from today when every office is open at that time (on a Saturday
    night ``--at 10:30`` is Monday 10:30: the branches are closed at weekends)."""
    today = real.astimezone(TZ).date()
    if at is not None:
        parsed = parse_at(at)
        start = next_open(configs, today, parsed) if isinstance(parsed, time) else parsed
        return ClockChoice(start, real, "at", tuple(closed_sites(configs, start or real)))
    closed = closed_sites(configs, real)
    if not closed:
        return ClockChoice(None, real, "open", ())
    start = next_open(configs, today, DEFAULT_AT, after=real)
    return ClockChoice(start, real, "closed", tuple(closed_sites(configs, start)))


def stamp(when: datetime) -> str:
    """``2026-12-07 (月 Mon) 10:30`` in Tokyo time."""
    local = when.astimezone(TZ)
    wd = local.weekday()
    return f"{local:%Y-%m-%d} ({DAYS_JA[wd]} {DAYS_EN[wd]}) {local:%H:%M}"


def banner_lines(choice: ClockChoice) -> list[str]:
    """What the banner says about time, in Japanese and English."""
    real = stamp(choice.real)
    if choice.start is None:
        lines = [f"時刻 clock: 実時間 real Tokyo time, now {real}"]
    elif choice.reason == "at":
        lines = [f"時刻 clock: 模擬時刻 simulated from {stamp(choice.start)} (--at), advancing in "
                 f"real time; 実際の東京時間 real Tokyo time {real}"]
    else:
        lines = [f"時刻 clock: 現在の東京時間 {real} は受付時間外のため、模擬時刻 "
                 f"{stamp(choice.start)} から動かします",
                 f"  real Tokyo time {real} is outside opening hours, so the demo runs a "
                 f"simulated clock from {stamp(choice.start)}",
                 "  (--at now: real clock · --at 10:30 / --at 2026-12-07T10:30: another start)"]
    if choice.closed:
        lines.append(f"  受付時間外 outside opening hours at the start: {', '.join(choice.closed)}"
                     " (web tickets refused there; try --at 10:30 on a weekday)")
    return lines
