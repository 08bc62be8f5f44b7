"""Reports over ``stats_rollup`` (never the events table): every figure of issue 15 item 1 for
a ``Scope`` (period, sites, optional service/counter/staff, grouping), with the same period
last year beside it.

Why rollups only: a fiscal year of the ward is millions of events; the rollup cells are already
summed per site, business day and dimension, so a report is one grouped query (plus the small
reservation and web-access tables). What each figure means is ``hub.stats.rollup``'s docstring;
how it is derived from the summed cells is ``hub.stats.figures``.

A measure that lacks a dimension the report is grouped or filtered by (the arrivals have no
counter; the wait histograms no hour, counter or staff) gives ``None`` in the rows ("—" on the
page, an empty CSV cell), never a wrong 0; the totals row still holds it when only the grouping
lacks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from hub.reservations.tables import reservation_slots, reservations
from hub.stats import periods
from hub.stats.figures import Acc, Figures, figures
from hub.stats.periods import Period
from hub.stats.rollup import TZ
from hub.stats.tables import stats_rollup
from hub.store import HubStore
from hub.store.schema import web_access

TIME_DIMS = ("day", "week", "month", "fy")
DIMS = (*TIME_DIMS, "site", "service", "counter", "staff", "hour", "weekday")
_ALWAYS = frozenset({*TIME_DIMS, "site", "weekday"})  # every cell has a day and a site
MEASURE_DIMS: dict[str, frozenset[str]] = {m: _ALWAYS | frozenset(d) for m, d in {
    "issued": ("hour", "service"), "wait1": ("hour", "service", "counter", "staff"),
    "wait2": ("hour", "service", "counter", "staff"), "wait1_hist": ("service",),
    "wait2_hist": ("service",), "handling": ("hour", "service", "counter", "staff"),
    "served": ("service", "counter", "staff"), "recall": ("service", "counter", "staff"),
    "absent": ("service", "counter", "staff"), "cancel": ("service",),
    "transfer": ("service", "counter", "staff"), "expired": ("service",),
    "noshow": ("service",), "checkin": ("service",), "counter_open": ("counter", "staff"),
    # not rollup measures: the reservation and web-access tables
    "reservations": ("service", "hour"), "web": ("hour",),
}.items()}
Key = tuple[str, ...]


class ScopeError(ValueError):
    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field, self.code = field, code


@dataclass(frozen=True)
class Scope:
    """What a report covers. ``sites``: None = every site (the caller has already cut it to
    what the session may see); ``group``: 0-3 of ``DIMS``, at most one of ``TIME_DIMS``."""

    period: Period
    sites: frozenset[str] | None = None
    group: tuple[str, ...] = ("day",)
    service: str | None = None
    counter: str | None = None
    staff: str | None = None

    def __post_init__(self) -> None:
        if len(self.group) > 3 or len(set(self.group)) != len(self.group) or \
                any(d not in DIMS for d in self.group):
            raise ScopeError("group", "bad_group")
        if sum(d in TIME_DIMS for d in self.group) > 1:
            raise ScopeError("group", "two_periods")

    def filters(self) -> set[str]:
        return {d for d in ("service", "counter", "staff") if getattr(self, d)}

    def applies(self, measure: str, grouped: bool = True) -> bool:
        need = self.filters() | (set(self.group) if grouped else set())
        return need <= MEASURE_DIMS[measure]


@dataclass
class Row:
    key: Key
    figures: Figures
    last: Figures | None = None


@dataclass
class Report:
    scope: Scope
    last_period: Period | None
    rows: list[Row]
    total: Row
    web_pages: list[tuple[str, str, int]]  # (page, site, views) over the period


# --- keys ------------------------------------------------------------------------------------

def _time_key(dim: str, day: str) -> str:
    """A business day's value in a time dimension (``day`` is YYYY-MM-DD, or YYYY-MM for month
    and fiscal-year groupings, which SQL has already cut)."""
    if dim in ("day", "month"):
        return day[:10] if dim == "day" else day[:7]
    d = date.fromisoformat(day if len(day) == 10 else day + "-01")
    if dim == "week":
        return periods.week_key(d)
    if dim == "weekday":
        return str(d.weekday())
    return str(periods.fiscal_year(d))


def shift_key(group: tuple[str, ...], key: Key) -> Key:
    """The key of the same row a year earlier (the time part moves; sites, services … stay)."""
    out = []
    for dim, v in zip(group, key, strict=True):
        if dim == "day":
            v = periods.year_before(date.fromisoformat(v)).isoformat()
        elif dim == "week":
            y, _, w = v.partition("-W")
            v = periods.week_key(periods.last_year(periods.week_period(int(y), int(w))).start)
        elif dim == "month":
            v = f"{int(v[:4]) - 1:04d}{v[4:]}"
        elif dim == "fy":
            v = str(int(v) - 1)
        out.append(v)
    return tuple(out)


def sort_key(group: tuple[str, ...], key: Key) -> tuple[Any, ...]:
    return tuple(int(v) if d in ("hour", "weekday") and v.lstrip("-").isdigit() else v
                 for d, v in zip(group, key, strict=True))


# --- queries ---------------------------------------------------------------------------------

def _sql_col(dim: str) -> Any:
    t = stats_rollup.c
    if dim in ("day", "week", "weekday"):
        return t.day
    if dim in ("month", "fy"):
        return func.substr(t.day, 1, 7)
    return t[dim]


class _Keyer:
    """Turns the grouped SQL values into a report key, caching the date arithmetic."""

    def __init__(self, group: tuple[str, ...]) -> None:
        self.group = group
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, values: Iterable[Any]) -> Key:
        out = []
        for dim, v in zip(self.group, values, strict=True):
            if dim in (*TIME_DIMS, "weekday"):
                got = self.cache.get((dim, v))
                if got is None:
                    got = self.cache[(dim, v)] = _time_key(dim, str(v))
                out.append(got)
            else:
                out.append(str(v))
        return tuple(out)


async def _rollups(store: HubStore, scope: Scope, group: tuple[str, ...], measures: list[str],
                   accs: dict[Key, Acc]) -> None:
    if not measures:
        return
    t = stats_rollup.c
    cols = [_sql_col(d).label(f"g{i}") for i, d in enumerate(group)]
    where = [t.day >= scope.period.start.isoformat(), t.day <= scope.period.end.isoformat(),
             t.measure.in_(measures)]
    if scope.sites is not None:
        where.append(t.site.in_(sorted(scope.sites)))
    for d in scope.filters():
        where.append(t[d] == getattr(scope, d))
    dims = [*cols, t.measure, t.channel, t.bucket]
    stmt = (select(*dims, func.sum(t.n), func.sum(t.total), func.max(t.max_s))
            .where(and_(*where)).group_by(*[c.element for c in cols], t.measure, t.channel,
                                          t.bucket))
    keyer = _Keyer(group)
    k = len(group)
    async with store.read() as tx:
        result = (await tx.conn.execute(stmt)).all()
    for r in result:
        key = keyer(r[:k])
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = Acc()
        m, channel, b = str(r[k]), str(r[k + 1]), int(r[k + 2])
        n, total, mx = int(r[k + 3] or 0), float(r[k + 4] or 0.0), float(r[k + 5] or 0.0)
        if m.endswith("_hist"):
            acc.hist[m][b] += n
            continue
        acc.n[m] += n
        acc.total[m] += total
        acc.max_s[m] = max(acc.max_s[m], mx)
        if m == "issued":
            acc.channels[channel] += n


def _bounds(p: Period) -> tuple[datetime, datetime]:
    start = datetime.combine(p.start, time(0), TZ)
    return start, datetime.combine(p.end + timedelta(days=1), time(0), TZ)


async def _reservations(store: HubStore, scope: Scope, group: tuple[str, ...],
                        accs: dict[Key, Acc], now: datetime) -> None:
    s, r = reservation_slots.c, reservations.c
    start, end = _bounds(scope.period)
    where = [r.status != "cancelled", s.starts_at >= start, s.starts_at < end]
    if scope.sites is not None:
        where.append(s.site.in_(sorted(scope.sites)))
    if scope.service:
        where.append(s.service == scope.service)
    stmt = (select(s.site, s.service, s.starts_at, s.ends_at, func.count())
            .select_from(reservations.join(reservation_slots, s.id == r.slot_id))
            .where(and_(*where)).group_by(s.site, s.service, s.starts_at, s.ends_at))
    keyer = _Keyer(group)
    async with store.read() as tx:
        rows = (await tx.conn.execute(stmt)).all()
    for site, service, starts, ends, count in rows:
        local = starts.astimezone(TZ)
        values = {"site": site, "service": service, "hour": str(local.hour)}
        key = keyer(local.date().isoformat() if d in (*TIME_DIMS, "weekday") else values[d]
                    for d in group)
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = Acc()
        acc.booked += int(count)
        if ends <= now:
            acc.booked_over += int(count)


async def _web(store: HubStore, scope: Scope, group: tuple[str, ...],
               accs: dict[Key, Acc] | None, pages: dict[tuple[str, str], int] | None) -> None:
    w = web_access.c
    day = func.substr(w.hour, 1, 10)
    hour = func.substr(w.hour, 12, 2)
    where = [w.hour >= f"{scope.period.start.isoformat()}T00",
             w.hour <= f"{scope.period.end.isoformat()}T23"]
    if scope.sites is not None:  # pages of no one site are the ward's: only in ward reports
        where.append(w.site.in_(sorted(scope.sites)))
    stmt = (select(w.page, w.site, day, hour, func.sum(w.count)).where(and_(*where))
            .group_by(w.page, w.site, day, hour))
    keyer = _Keyer(group)
    async with store.read() as tx:
        rows = (await tx.conn.execute(stmt)).all()
    for page, site, d, h, n in rows:
        if pages is not None:
            pages[(str(page), str(site))] = pages.get((str(page), str(site)), 0) + int(n)
        if accs is None:
            continue
        values = {"site": str(site), "hour": str(int(h))}
        key = keyer(str(d) if g in (*TIME_DIMS, "weekday") else values[g] for g in group)
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = Acc()
        acc.n["web"] += int(n)


async def collect(store: HubStore, scope: Scope, group: tuple[str, ...], *, grouped: bool = True,
                  now: datetime | None = None,
                  pages: dict[tuple[str, str], int] | None = None) -> tuple[dict[Key, Acc],
                                                                             set[str]]:
    """The summed cells per key of ``group``, and the measures that apply (``grouped``: the
    grouping counts towards what applies; False for a totals row)."""
    ok = {m for m in MEASURE_DIMS if scope.applies(m, grouped)}
    accs: dict[Key, Acc] = {}
    await _rollups(store, scope, group, [m for m in ok if m not in ("reservations", "web")],
                   accs)
    if "reservations" in ok:
        await _reservations(store, scope, group, accs, now or datetime.now(TZ))
    if "web" in ok or pages is not None:
        await _web(store, scope, group, accs if "web" in ok else None, pages)
    return accs, ok


async def _rows_and_total(store: HubStore, scope: Scope, now: datetime | None,
                          pages: dict[tuple[str, str], int] | None, totals: bool = True
                          ) -> tuple[dict[Key, Figures], Figures]:
    accs, ok = await collect(store, scope, scope.group, now=now, pages=pages)
    rows = {k: figures(a, ok) for k, a in accs.items()}
    merged = Acc()
    for a in accs.values():
        merged.merge(a)
    total_ok = {m for m in MEASURE_DIMS if scope.applies(m, grouped=False)}
    missing = total_ok - ok
    if missing and totals:  # measures the grouping lacks: their totals, one ungrouped read
        rest = Scope(scope.period, scope.sites, (), scope.service, scope.counter, scope.staff)
        extra, _ = await collect(store, rest, (), grouped=False, now=now)
        for a in extra.values():
            merged.merge(_only(a, missing))
    return rows, figures(merged, total_ok)


def _only(a: Acc, measures: set[str]) -> Acc:
    out = Acc()
    for m in measures:
        if m in a.n:
            out.n[m] = a.n[m]
            out.total[m] = a.total[m]
            out.max_s[m] = a.max_s[m]
        if m in a.hist:
            out.hist[m] = a.hist[m]
    if "issued" in measures:
        out.channels = a.channels
    if "reservations" in measures:
        out.booked, out.booked_over = a.booked, a.booked_over
    return out


async def report(store: HubStore, scope: Scope, *, compare: bool = True,
                 now: datetime | None = None, totals: bool = True) -> Report:
    """The figures of ``scope`` per key of its grouping (sorted), its totals and, with
    ``compare``, each row's and the totals' figures for the same period last year.
    ``totals=False`` (the CSV export, which has no totals row) skips the extra read for the
    measures the grouping lacks; the totals then hold only what the rows hold."""
    pages: dict[tuple[str, str], int] = {}
    rows, total = await _rows_and_total(store, scope, now, pages, totals)
    last_rows: dict[Key, Figures] = {}
    last_total: Figures | None = None
    last_period = periods.last_year(scope.period) if compare else None
    if last_period is not None:
        last_scope = Scope(last_period, scope.sites, scope.group, scope.service, scope.counter,
                           scope.staff)
        last_rows, last_total = await _rows_and_total(store, last_scope, now, None, totals)
    out = [Row(k, f, last_rows.get(shift_key(scope.group, k)) if compare else None)
           for k, f in sorted(rows.items(), key=lambda kv: sort_key(scope.group, kv[0]))]
    web = sorted(((p, s, n) for (p, s), n in pages.items()), key=lambda x: (x[0], x[1]))
    return Report(scope, last_period, out, Row((), total, last_total), web)
