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


ERRORS = {  # LineError codes, for people (en / ja)
    "bad_id": ("not 8 letters or digits", "予約IDが英数字8文字ではありません"),
    "bad_office": ("the office code is not 4 digits", "区民事務所コードが数字4桁ではありません"),
    "conflict": ("the same ID with another office", "同じ予約IDが別の区民事務所にもあります"),
    "missing_column": ("a column is missing", "列が足りません"),
    "too_large": ("the file is too large", "ファイルが大きすぎます"),
    "bad_encoding": ("neither UTF-8 nor Shift_JIS (cp932)",
                     "UTF-8でもShift_JIS(cp932)でもありません"),
    "empty": ("no IDs in the file", "予約IDがありません"),
}


def _import(args: argparse.Namespace) -> int:
    """All or nothing: every bad line is listed and nothing is stored; audited when stored."""
    import asyncio
    import getpass
    from pathlib import Path

    from hub.audit.service import audit_key, record
    from hub.reservations.ids import Layout
    from hub.reservations.imports import import_ids
    from hub.settings import HubSettings
    from hub.store import HubStore
    from hub.store.store import now_utc

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read / 読めません: {exc.strerror or exc}", file=sys.stderr)
        return 2
    layout = Layout(id_column=args.id_column, office_column=args.office_column)

    async def run() -> int:
        store = await HubStore.open(args.db)
        try:
            got = await import_ids(store, data, now_utc(), layout)
            if got.errors:
                for e in got.errors:
                    en, ja = ERRORS.get(e.code, (e.code, e.code))
                    where = f"{path}:{e.line}" if e.line else str(path)
                    print(f"{where}: {en} / {ja}" + (f": {e.value}" if e.value else ""),
                          file=sys.stderr)
                print(f"nothing imported / 取り込んでいません ({len(got.errors)} problems)",
                      file=sys.stderr)
                return 1
            settings = HubSettings.from_env()
            key, key_id = audit_key(settings)
            await record(store, actor=f"cli:{getpass.getuser()}",
                         action="reservation_ids_imported", target=path.name[:200],
                         detail={"count": got.added + got.moved + got.unchanged,
                                 "new": got.added, "moved": got.moved}, key=key,
                         key_id=key_id)
            print(json.dumps({"added": got.added, "unchanged": got.unchanged,
                              "moved": got.moved, "encoding": got.encoding}))
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


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
    imp = rsub.add_parser("import", help="import a reservation-ID file (CSV: UTF-8, with or "
                                         "without BOM, or cp932); all or nothing")
    imp.add_argument("file")
    imp.add_argument("--db", default="sqlite+aiosqlite:///var/hub.db",
                     help="database URL (default: %(default)s)")
    imp.add_argument("--id-column", default="予約ID", help="header of the ID column")
    imp.add_argument("--office-column", default="区民事務所コード",
                     help="header of the office-code column")
    imp.set_defaults(func=_import)
