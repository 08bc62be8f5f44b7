"""The report over ``stats_rollup``: sums, means, maxima, percentiles, utilisation and the same
period last year equal a recount done here from the cells written, for random cells across a
fiscal-year boundary; figures a grouping cannot split are None (never a wrong 0) and still in
the totals; reservations and web page views come from their tables, within the sites asked."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from store_support import hub_store

from hub.reservations.tables import reservation_slots, reservations
from hub.stats import periods
from hub.stats import store as rollup_store
from hub.stats.figures import percentile
from hub.stats.periods import Period
from hub.stats.report import Scope, report
from hub.stats.rollup import Cell, Key, bucket, bucket_bounds
from hub.stats.tables import stats_rollup
from hub.store import HubStore
from hub.store.schema import web_access

SITES = ("nerima", "oizumi")
# a week either side of 2026-04-01 (a fiscal-year boundary), and the same a year earlier
DAYS = [date(2026, 3, 25) + timedelta(days=i) for i in range(14)] + \
       [date(2025, 3, 25) + timedelta(days=i) for i in range(14)]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubStore]:
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    async with hub_store(request.param, tmp_path, pg, tag="statsrep") as db:
        yield db.store


async def put(store: HubStore, site: str, cells: dict[Key, Cell]) -> None:
    async with store.begin() as tx:
        await rollup_store.add(tx, site, cells)


# --- random cells and the recount ---------------------------------------------------------------

@st.composite
def cells(draw: st.DrawFn) -> list[tuple[str, Key, Cell]]:
    out: dict[tuple[str, Key], Cell] = {}
    for _ in range(draw(st.integers(1, 40))):
        site = draw(st.sampled_from(SITES))
        day = draw(st.sampled_from(DAYS)).isoformat()
        measure = draw(st.sampled_from(("issued", "wait1", "wait2", "handling", "served",
                                        "absent", "counter_open", "wait1_hist")))
        service = draw(st.sampled_from(("A", "B")))
        counter = draw(st.sampled_from(("1", "2")))
        staff = draw(st.sampled_from(("", "u1")))
        hour = draw(st.integers(8, 17))
        n = draw(st.integers(1, 20))
        secs = draw(st.floats(0, 3 * 3600, allow_nan=False))
        if measure == "issued":
            key: Key = (day, measure, hour, service, "", "", draw(st.sampled_from(
                ("kiosk", "web", "reservation"))), -1)
        elif measure == "wait1_hist":
            key = (day, measure, -1, service, "", "", "", bucket(secs))
        elif measure in ("served", "absent"):
            key = (day, measure, -1, service, counter, staff, "", -1)
        elif measure == "counter_open":
            key = (day, measure, -1, "", counter, staff, "", -1)
        else:
            key = (day, measure, hour, service, counter, staff, "", -1)
        cell = out.setdefault((site, key), Cell())
        cell.add(n, 0.0 if measure in ("issued", "served", "absent", "wait1_hist")
                 else secs * n)
        cell.max_s = max(cell.max_s, secs)
    return [(s, k, c) for (s, k), c in out.items()]


def dim_value(dim: str, site: str, key: Key) -> str:
    day = date.fromisoformat(key[0])
    return {"fy": str(periods.fiscal_year(day)), "site": site, "service": key[3],
            "counter": key[4], "day": key[0]}[dim]


LACKS = {"counter": ("issued", "wait1_hist"), "service": ("counter_open",)}


def recount(written: list[tuple[str, Key, Cell]], group: tuple[str, ...], p: Period,
            sites: set[str]) -> dict[tuple[str, ...], dict[str, float | None]]:
    """The figures the test checks, summed here straight from the cells."""
    sums: dict[tuple[str, ...], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0.0, 0.0, 0.0]))
    for site, key, c in written:
        if site not in sites or not p.start.isoformat() <= key[0] <= p.end.isoformat():
            continue
        if any(key[1] in LACKS.get(d, ()) for d in group):
            continue  # a measure the grouping cannot split: in no row (the totals have it)
        k = tuple(dim_value(d, site, key) for d in group)
        s = sums[k][key[1]]
        s[0] += c.n
        s[1] += c.total
        s[2] = max(s[2], c.max_s)
    out = {}
    for k, m in sums.items():
        w, h, o = m.get("wait1"), m.get("handling"), m.get("counter_open")
        out[k] = {"issued": None if "counter" in group else m["issued"][0],
                  "served": m["served"][0], "absent": m["absent"][0],
                  "wait1_mean": w[1] / w[0] if w and w[0] else None,
                  "wait1_max": w[2] if w and w[0] else None,
                  "utilisation": None if "service" in group else
                  (h[1] if h else 0.0) / o[1] if o and o[1] else None}
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


GROUPS = [("fy", "site"), ("day",), ("service",), ("counter",), ("site", "counter")]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(written=cells(), group=st.sampled_from(GROUPS), one_site=st.booleans())
def test_report_equals_a_recount_of_the_cells(tmp_path_factory: pytest.TempPathFactory,
                                              written: list[tuple[str, Key, Cell]],
                                              group: tuple[str, ...], one_site: bool) -> None:
    async def run() -> None:
        async with hub_store("sqlite", tmp_path_factory.mktemp("r")) as db:
            for site in SITES:
                await put(db.store, site, {k: c for s, k, c in written if s == site})
            p = Period("range", date(2026, 3, 25), date(2026, 4, 7))
            sites = {"nerima"} if one_site else set(SITES)
            scope = Scope(p, frozenset(sites) if one_site else None, group)
            rep = await report(db.store, scope, now=NOW)
            want = recount(written, group, p, sites)
            got = {r.key: r for r in rep.rows}
            assert set(got) == set(want)
            for k, figs in want.items():
                for name, value in figs.items():
                    assert close(got[k].figures[name], value), (k, name)
            # the same rows a year earlier (the last-year period is its dates a year back)
            last = recount(written, group, periods.last_year(p), sites)
            for k, row in got.items():
                lk = tuple(str(int(v) - 1) if d == "fy" else
                           periods.year_before(date.fromisoformat(v)).isoformat()
                           if d == "day" else v for d, v in zip(group, k, strict=True))
                if lk not in last:
                    assert row.last is None
                    continue
                assert row.last is not None
                for name, value in last[lk].items():
                    assert close(row.last[name], value), ("last", k, name)
            # the totals hold every figure, even those the grouping cannot split
            total_issued = sum(c.n for s, k, c in written if s in sites and k[1] == "issued"
                               and p.start.isoformat() <= k[0] <= p.end.isoformat())
            assert rep.total.figures["issued"] == total_issued
    asyncio.run(run())


@given(st.dictionaries(st.integers(0, 84), st.integers(1, 50), min_size=1),
       st.sampled_from([0.5, 0.9]))
def test_a_percentile_lies_in_the_bucket_that_holds_its_rank(hist: dict[int, int],
                                                             q: float) -> None:
    ranked = sorted(b for b, n in hist.items() for _ in range(n))
    target = ranked[max(math.ceil(q * len(ranked)) - 1, 0)]
    low, high = bucket_bounds(target)
    got = percentile(hist, q)
    assert got is not None
    assert low <= got <= high
    cap = low + 1.0
    capped = percentile(hist, q, cap)
    assert capped is not None
    assert capped <= cap


def test_percentiles_interpolate_within_the_bucket() -> None:
    # 10 waits in [2 min, 3 min): the median is half-way through, the 90th at 9/10
    assert percentile({2: 10}, 0.5) == pytest.approx(150.0)
    assert percentile({2: 10}, 0.9) == pytest.approx(174.0)
    assert percentile({}, 0.5) is None


# --- fixed cases, on both databases --------------------------------------------------------

def k(day: str, measure: str, *, hour: int = -1, service: str = "", counter: str = "",
      staff: str = "", channel: str = "", b: int = -1) -> Key:
    return (day, measure, hour, service, counter, staff, channel, b)


def waits(day: str, values: list[float], counter: str = "1") -> Iterator[tuple[Key, Cell]]:
    for v in values:
        yield k(day, "wait1", hour=10, service="A", counter=counter, staff="u1"), \
            Cell(1, v, v)
        yield k(day, "wait1_hist", service="A", b=bucket(v)), Cell(1, 0.0, 0.0)


def merged(pairs: Iterator[tuple[Key, Cell]]) -> dict[Key, Cell]:
    out: dict[Key, Cell] = {}
    for key, c in pairs:
        out.setdefault(key, Cell()).merge(c)
    return out


async def test_fiscal_year_report_by_month_with_last_year(store: HubStore) -> None:
    await put(store, "nerima", {
        k("2026-04-01", "issued", hour=9, service="A", channel="kiosk"): Cell(30),
        k("2026-04-01", "issued", hour=9, service="A", channel="web"): Cell(10),
        k("2027-03-31", "issued", hour=9, service="A", channel="kiosk"): Cell(5),
        k("2027-04-01", "issued", hour=9, service="A", channel="kiosk"): Cell(1000),  # next FY
        k("2025-04-03", "issued", hour=9, service="A", channel="kiosk"): Cell(20),
        k("2026-04-01", "counter_open", counter="1", staff="u1"): Cell(1, 8 * 3600.0, 8 * 3600),
        k("2026-04-01", "handling", hour=10, service="A", counter="1", staff="u1"):
            Cell(12, 4 * 3600.0, 900.0),
        **merged(waits("2026-04-01", [30.0, 90.0, 150.0, 600.0])),
    })
    await put(store, "oizumi", {
        k("2026-04-01", "issued", hour=9, service="A", channel="kiosk"): Cell(7)})
    scope = Scope(periods.parse("fy", "2026"), frozenset({"nerima"}), ("month",))
    rep = await report(store, scope, now=NOW)
    assert [r.key for r in rep.rows] == [("2026-04",), ("2027-03",)]
    april = rep.rows[0]
    assert april.figures["issued"] == 40
    assert april.figures["issued_kiosk"] == 30
    assert april.figures["issued_web"] == 10
    assert april.figures["wait1_mean"] == pytest.approx(217.5)
    assert april.figures["wait1_max"] == 600.0
    assert april.figures["wait1_median"] == pytest.approx(120.0)  # rank 2 of 4: end of [60,120)
    assert april.figures["utilisation"] == pytest.approx(0.5)
    assert april.figures["open_hours"] == pytest.approx(8.0)
    assert april.last is not None
    assert april.last["issued"] == 20
    assert rep.rows[1].last is None
    assert rep.total.figures["issued"] == 45
    assert rep.total.last is not None
    assert rep.total.last["issued"] == 20
    assert rep.last_period == periods.fy_period(2025)
    ward = await report(store, Scope(periods.parse("fy", "2026"), None, ("site",)), now=NOW)
    assert {r.key: r.figures["issued"] for r in ward.rows} == {("nerima",): 45,
                                                               ("oizumi",): 7}


async def test_a_grouping_a_measure_lacks_gives_none_but_the_total_has_it(
        store: HubStore) -> None:
    await put(store, "nerima", {
        k("2026-05-01", "issued", hour=9, service="A", channel="kiosk"): Cell(9),
        k("2026-05-01", "served", service="A", counter="2", staff="u1"): Cell(4),
        **merged(waits("2026-05-01", [60.0, 120.0], counter="2"))})
    day = periods.parse("day", "2026-05-01")
    rep = await report(store, Scope(day, None, ("counter",)), now=NOW)
    [row] = rep.rows
    assert row.key == ("2",)
    assert row.figures["issued"] is None  # arrivals have no counter
    assert row.figures["wait1_median"] is None  # nor the wait histograms
    assert row.figures["served"] == 4
    assert row.figures["wait1_mean"] == pytest.approx(90.0)
    assert rep.total.figures["issued"] == 9
    assert rep.total.figures["wait1_median"] is not None
    only = await report(store, Scope(day, None, ("day",), counter="2"), now=NOW)
    assert only.rows[0].figures["issued"] is None  # filtered by counter: not attributable
    assert only.rows[0].figures["served"] == 4


async def test_reservations_and_web_views_within_the_sites_asked(store: HubStore) -> None:
    await put(store, "nerima", {
        k("2026-05-01", "issued", hour=9, service="R", channel="reservation"): Cell(2)})
    now = datetime(2026, 5, 2, tzinfo=UTC)
    async with store.begin() as tx:
        for i, (site, hour) in enumerate((("nerima", 0), ("nerima", 1), ("nerima", 2),
                                          ("oizumi", 0))):
            starts = datetime(2026, 5, 1, 1 + hour, tzinfo=UTC)  # 10:00-12:00 JST
            await tx.conn.execute(reservation_slots.insert().values(
                id=i + 1, office="1234", site=site, service="R", counter_group=f"g{i}",
                starts_at=starts, ends_at=starts + timedelta(minutes=30), capacity=5,
                booked=1, published_at=starts - timedelta(days=30)))
            for j, status in enumerate(("active", "cancelled")):
                await tx.conn.execute(reservations.insert().values(
                    id=f"r{i}{j}", rid=f"RID{i}{j}", slot_id=i + 1, status=status,
                    active_rid=f"RID{i}{j}" if status == "active" else None, pin_hash="x",
                    lang="ja", token=f"t{i}{j}", created_at=starts, updated_at=starts))
        for page, site, at, count in (("status", "", "2026-05-01T09", 50),
                                        ("ticket", "nerima", "2026-05-01T10", 7),
                                        ("ticket", "oizumi", "2026-05-01T10", 3),
                                        ("ticket", "nerima", "2026-05-02T10", 100)):
            await tx.conn.execute(web_access.insert().values(page=page, site=site, hour=at,
                                                             count=count))
    day = periods.parse("day", "2026-05-01")
    rep = await report(store, Scope(day, frozenset({"nerima"}), ("day",)), now=now)
    figs = rep.rows[0].figures
    assert (figs["res_booked"], figs["res_used"], figs["res_noshow"]) == (3, 2, 1)
    assert figs["web_views"] == 7
    assert rep.web_pages == [("ticket", "nerima", 7)]
    ward = await report(store, Scope(day, None, ("site",)), now=now)
    assert {r.key: r.figures["res_booked"] for r in ward.rows} == {("nerima",): 3,
                                                                   ("oizumi",): 1, ("",): 0}
    assert ward.total.figures["web_views"] == 60  # the status page is the ward's
    assert ("status", "", 50) in ward.web_pages
    by_service = await report(store, Scope(day, None, ("service",)), now=now)
    assert {r.key: r.figures["web_views"] for r in by_service.rows} == {("R",): None}


async def test_no_data_is_no_rows_and_zero_totals(store: HubStore) -> None:
    rep = await report(store, Scope(periods.parse("month", "2026-06"), None, ("day",)), now=NOW)
    assert rep.rows == []
    assert rep.total.figures["issued"] == 0
    assert rep.total.figures["wait1_mean"] is None
    async with store.begin() as tx:
        await tx.conn.execute(delete(stats_rollup))
