"""``madoguchi hub reservations …`` (parsers here, added by ``hub/cli.py``).

``window YYYY-MM-DD [--saturday] [--closed DATE …]``: the first and last moment a slot on that
date can be booked, as one JSON object in Tokyo time, so staff can answer residents' questions.
The calendar is the ward's default (national holidays, 12/29–1/3) plus ``--closed`` days.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Any

from edge.domain.calendar import Calendar


def _date(text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) / 日付を YYYY-MM-DD で指定してください") from None


def _window(args: argparse.Namespace) -> int:
    from hub.reservations.window import Rules, window

    slot: _dt.date = args.date
    if args.saturday and slot.weekday() != 5:
        print(f"{slot} is not a Saturday / {slot} は土曜日ではありません", file=sys.stderr)
        return 2
    cal = Calendar(closed=frozenset(args.closed or ()))
    rules = Rules(days_before=args.days_before, business_days=args.business_days,
                  saturday_business_days=args.saturday_business_days)
    print(json.dumps(window(slot, cal, rules).view()))
    return 0


def add_parsers(sub: Any) -> None:
    res = sub.add_parser("reservations", help="reservations (R1-R10)")
    rsub = res.add_subparsers(dest="action", required=True)
    win = rsub.add_parser("window", help="when a slot on a date can be booked (JSON)")
    win.add_argument("date", type=_date, help="the slot's date, YYYY-MM-DD")
    win.add_argument("--saturday", action="store_true",
                     help="a Saturday slot (5 business days; refused for another weekday)")
    win.add_argument("--closed", type=_date, action="append", metavar="DATE",
                     help="a ward closed day (repeatable)")
    win.add_argument("--days-before", type=int, default=45)
    win.add_argument("--business-days", type=int, default=3)
    win.add_argument("--saturday-business-days", type=int, default=5)
    win.set_defaults(func=_window)
