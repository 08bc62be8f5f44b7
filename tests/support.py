"""Builders shared by tests: a small site config made in code (no TOML involved)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from edge.domain.calendar import Calendar
from edge.domain.model import Counter, Service, SiteConfig, Text, WebRules

# no holidays or closures: the queue tests run on fixed dates, some of them holidays (11/23);
# the calendar's own tests are in tests/edge/test_calendar.py
NO_CLOSURES = Calendar(national_holidays=False, year_end=None)

TZ = ZoneInfo("Asia/Tokyo")


def text(ja: str, en: str) -> Text:
    return Text({"ja": ja, "en": en})


def small_site(range_size: int = 50, wrap: bool = True, access: str = "open") -> SiteConfig:
    """Three services (one second-stage only) and three counters. ``access``: "open" by
    default, so queue tests need no sign-in (tests/edge/test_edge_access.py covers "staff")."""
    services = {
        "A": Service("A", text("住民異動", "Moving"), 1, range_size, "two-part", wrap=wrap),
        # B takes web tickets all day without a check-in (web rules: tests/test_web_rules.py)
        "B": Service("B", text("証明書", "Certificates"), 201, 200 + range_size, wrap=wrap,
                     web=WebRules("00:00", "24:00", checkin_required=False)),
        "C": Service("C", text("異動処理", "Moving, 2nd"), 401, 400 + range_size,
                     kiosk=False, wrap=wrap),
    }
    counters = {
        "1": Counter("1", text("1番", "Counter 1"), ("A", "B")),
        "2": Counter("2", text("2番", "Counter 2"), ("B", "A")),
        "3": Counter("3", text("3番", "Counter 3"), ("C",)),
    }
    return SiteConfig("test-site", text("テスト", "Test"), "Asia/Tokyo", services, counters,
                      access=access, calendar=NO_CLOSURES)


def morning(day: int = 21) -> datetime:
    return datetime(2026, 11, day, 8, 30, tzinfo=TZ)
