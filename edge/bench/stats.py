"""``madoguchi bench stats``: statistics over a fiscal year of the ward (issue 15, "Must show").

Set-up: a PostgreSQL schema made for the run (the hub's migrations) and dropped afterwards,
filled with the synthetic fiscal year of ``stats_data`` (the ward's 18 sites, every business
day of FY2025, 1.53 million tickets and their events) written straight into ``events`` with
COPY, as the hub's ingest would have stored them (a ``sites`` row per site, every site's
config stored). Loading is not a figure; then, timed:

* ``rollup_rebuild_s``: ``hub.stats.rebuild.rebuild`` of every site from the raw events (the
  rollups the reports below read). ``ANALYZE`` runs after the load and after the rebuild, as
  autovacuum would on a live hub, and is not timed.
* ``fy_report_p95_ms``: ``hub.stats.report.report`` for the fiscal year with last year beside
  it (as the page asks), one per site grouped by month, and the ward grouped by month and by
  site, in that order (``fy_report_each_ms``); nearest-rank p95 of their wall times.
* ``fy_csv_export_s``: ``hub.stats.export.write_csv``, the fiscal year of every site per counter
  per day (the default columns plus the counter), UTF-8 with BOM, to a file.
* ``ingest_with_rollups_events_per_s``: another schema, a private mosquitto and the hub in a
  process of its own (``sync_rig``, as ``bench sync``), every site's first 10 business days
  published as the edges' MQTT batches (200 events, a window ahead of each site's ack) and
  stored by the hub's real ``Ingest``, which keeps the rollups in its transactions: the events
  over the time until the last ack.
* ``estimate_*``: ``edge.bench.estimate_sim`` (simulated days scoring the wait estimate).

One JSON object; ``targets`` and ``meets_targets`` as the other benches.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import platform
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from edge.bench.judge import judge
from edge.bench.load import BenchError
from edge.bench.stats_data import (
    MIN_TICKETS,
    SitePlan,
    business_days,
    day_rows,
    envelope_json,
    schedule,
    site_plans,
)
from edge.bench.sync import DEFAULT_PG
from edge.bench.ward import default_folder

TARGETS: dict[str, float] = {"fy_report_p95_ms": 1000.0, "fy_csv_export_s": 10.0,
                             "rollup_rebuild_s": 300.0,
                             "ingest_with_rollups_events_per_s": 5000.0}
AT_LEAST = frozenset({"ingest_with_rollups_events_per_s"})
RATIO_RANGE = (0.40, 0.60)  # the estimate's range holds the middle half of outcomes
QUICK_SITES, QUICK_DAYS = 2, 3
INGEST_DAYS = (1, 10)  # business days of every site published to the hub: quick, full
BATCH = 200  # events per MQTT batch, as the edge relay
COPY_BYTES = 16 << 20
COLUMNS = ("site", "seq", "id", "at", "day", "type", "data", "received_at")


def _say(text: str) -> None:
    print(f"bench stats: {text}", file=sys.stderr, flush=True)


def _pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * q / 100) - 1))]


# --- the fiscal year into PostgreSQL -------------------------------------------------------------

def _copy_chunks(sched: list[tuple[SitePlan, date, int]], out: queue.Queue[Any]) -> None:
    """Producer thread: the year's events as COPY text, ``COPY_BYTES`` at a time (each item:
    (bytes, tickets, events)); None at the end, an exception if the generator failed."""
    try:
        parts: list[str] = []
        size = tickets = events = 0
        for plan, d, n in sched:
            day = d.isoformat()
            head = f"{plan.site}\t"
            tail = f"\t{day} 11:00:00+00\n"  # received 20:00 JST the same day
            rows = day_rows(plan, d, n)
            text = "".join(f"{head}{seq}\t{eid}\t{at}\t{day}\t{kind}\t{data}{tail}"
                           for seq, eid, at, kind, data in rows)
            parts.append(text)
            size += len(text)
            tickets += n
            events += len(rows)
            if size >= COPY_BYTES:
                out.put(("".join(parts).encode("utf-8"), tickets, events))
                parts, size, tickets, events = [], 0, 0, 0
        if parts:
            out.put(("".join(parts).encode("utf-8"), tickets, events))
        out.put(None)
    except BaseException as exc:  # handed to the loading side, which raises it
        out.put(exc)


async def _load(pg_url: str, schema: str, sched: list[tuple[SitePlan, date, int]],
                plans: list[SitePlan]) -> dict[str, Any]:
    """Configs, events (COPY, generated in a thread while PostgreSQL takes the previous chunk),
    ``sites`` rows, ANALYZE."""
    from hub.configs import store_config
    from hub.store import HubStore

    store = await HubStore.open(pg_url, schema=schema)
    try:
        for p in plans:
            await store_config(store, p.site, p.toml)
        async with store.engine.connect() as sa:
            raw = (await sa.get_raw_connection()).driver_connection
            assert raw is not None
            return await _copy_year(raw, schema, sched, plans)
    finally:
        await store.close()


async def _copy_year(conn: Any, schema: str, sched: list[tuple[SitePlan, date, int]],
                     plans: list[SitePlan]) -> dict[str, Any]:
    """``conn``: the asyncpg connection (no stubs: ``Any``)."""
    await conn.execute("SET synchronous_commit = off")
    total_tickets = sum(n for _p, _d, n in sched)
    t0 = time.monotonic()
    chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
    threading.Thread(target=_copy_chunks, args=(sched, chunks), daemon=True).start()
    tickets = events = 0
    shown = 0.0
    while (item := await asyncio.to_thread(chunks.get)) is not None:
        if isinstance(item, BaseException):
            raise item
        data, n, e = item
        await conn.copy_to_table("events", source=io.BytesIO(data), columns=list(COLUMNS),
                                 schema_name=schema, format="text")
        tickets, events = tickets + n, events + e
        if time.monotonic() - shown > 10:
            shown = time.monotonic()
            _say(f"loaded {tickets:,} of {total_tickets:,} tickets ({events:,} events, "
                 f"{shown - t0:.0f} s)")
    load_s = time.monotonic() - t0
    _say(f"loaded {tickets:,} tickets, {events:,} events in {load_s:.0f} s; analyzing")
    for p in plans:
        last = await conn.fetchval("SELECT at FROM events WHERE site = $1 AND seq = $2",
                                   p.site, p.seq)
        await conn.execute(
            "INSERT INTO sites (site, last_seq_contiguous, last_seq_received, last_event_at,"
            " online, projection, updated_at) VALUES ($1, $2, $2, $3, false, 'ok', now())",
            p.site, p.seq, datetime.fromisoformat(last) if last else None)
    await conn.execute("ANALYZE events")
    await conn.execute("ANALYZE sites")
    size = await conn.fetchval("SELECT pg_total_relation_size('events')")
    return {"data_tickets": tickets, "data_events": events, "data_load_s": round(load_s, 1),
            "data_events_table_mb": round(int(size) / 2**20, 1)}


# --- rebuild, reports, export --------------------------------------------------------------------

async def _rebuild(pg_url: str, schema: str, events: int) -> dict[str, Any]:
    from sqlalchemy import text

    from hub.stats.rebuild import rebuild
    from hub.store import HubStore

    store = await HubStore.open(pg_url, schema=schema, upgrade=False)
    done: dict[str, int] = {}
    shown = [time.monotonic()]

    def progress(site: str, upto: int, _last: int) -> None:
        done[site] = upto
        if time.monotonic() - shown[0] > 10:
            shown[0] = time.monotonic()
            _say(f"rebuilding: {sum(done.values()):,} of {events:,} events")

    try:
        t0 = time.perf_counter()
        summary = await rebuild(store, progress=progress)
        took = time.perf_counter() - t0
        async with store.engine.begin() as conn:
            await conn.execute(text("ANALYZE stats_rollup"))
            cells = (await conn.execute(text("SELECT count(*) FROM stats_rollup"))).scalar()
    finally:
        await store.close()
    _say(f"rebuilt {summary['events']:,} events into {cells:,} rollup rows in {took:.1f} s")
    return {"rollup_rebuild_s": round(took, 2), "rollup_rebuild_events": summary["events"],
            "rollup_rebuild_events_per_s": round(summary["events"] / took, 1),
            "rollup_rows": int(cells or 0)}


async def _reports(pg_url: str, schema: str, sites: list[str], out: Path) -> dict[str, Any]:
    from hub.stats.columns import DEFAULT_COLUMNS
    from hub.stats.export import write_csv
    from hub.stats.periods import fy_period
    from hub.stats.report import Scope, report
    from hub.store import HubStore

    fy = fy_period(2025)
    scopes = [(f"site {s} by month", Scope(fy, frozenset({s}), ("month",))) for s in sites]
    scopes += [("ward by month", Scope(fy, None, ("month",))),
               ("ward by site", Scope(fy, None, ("site",)))]
    store = await HubStore.open(pg_url, schema=schema, upgrade=False)
    try:
        each: dict[str, float] = {}
        for name, scope in scopes:
            t0 = time.perf_counter()
            rep = await report(store, scope)
            each[name] = round((time.perf_counter() - t0) * 1000, 1)
            if not rep.rows:
                raise BenchError(f"the fiscal-year report of {name} has no rows")
        took = sorted(each.values())
        _say(f"{len(scopes)} fiscal-year reports: p95 {_pct(took, 95):.0f} ms; exporting CSV")
        columns = list(DEFAULT_COLUMNS)
        columns.insert(columns.index("site") + 1, "counter")
        export = Scope(fy, None, ("day", "site", "counter"))
        t0 = time.perf_counter()
        with out.open("wb") as f:
            size = await write_csv(store, export, columns, f)
        export_s = time.perf_counter() - t0
    finally:
        await store.close()
    with out.open("rb") as f:
        lines = sum(1 for _ in f)
    return {"fy_report_each_ms": each, "fy_reports_count": len(scopes),
            "fy_report_p50_ms": round(_pct(took, 50), 1),
            "fy_report_p95_ms": round(_pct(took, 95), 1), "fy_report_max_ms": round(took[-1], 1),
            "fy_csv_export_s": round(export_s, 2), "fy_csv_export_rows": lines - 1,
            "fy_csv_export_mb": round(size / 2**20, 2),
            "fy_csv_export_scope": "FY2025, every site, grouped by day, site and counter; "
                                   "default columns + counter; UTF-8 with BOM"}


# --- ingest with rollups ---------------------------------------------------------------------

def _batches(plan: SitePlan, sched: Iterator[tuple[SitePlan, date, int]]
             ) -> tuple[list[bytes], list[int]]:
    """The site's days as the edge relay publishes them: batches of ``BATCH`` events."""
    envs: list[str] = []
    for p, d, n in sched:
        envs += [envelope_json(p.site, d.isoformat(), row) for row in day_rows(p, d, n)]
    logs, lasts = [], []
    for i in range(0, len(envs), BATCH):
        logs.append(f'{{"v":1,"site":"{plan.site}","replay":false,"events":['
                    f'{",".join(envs[i:i + BATCH])}]}}'.encode())
        lasts.append(min(i + BATCH, len(envs)))
    return logs, lasts


async def _ingest(quick: bool, pg_url: str, workdir: Path, count: int | None) -> dict[str, Any]:
    from edge.bench.sync_rig import Infra, Publisher, min_window_rate

    plans = site_plans(default_folder(), count)  # fresh: seqs from 1, the year's first days
    days = INGEST_DAYS[0] if quick else INGEST_DAYS[1]
    first = {p.site: set(business_days(p.config)[:days]) for p in plans}
    sched = schedule(plans, days) if quick else \
        [(p, d, n) for p, d, n in schedule(plans, None) if d in first[p.site]]
    logs: dict[str, list[bytes]] = {}
    lasts: dict[str, list[int]] = {}
    for p in plans:
        logs[p.site], lasts[p.site] = _batches(p, (x for x in sched if x[0] is p))
    total = sum(v[-1] for v in lasts.values())
    infra = Infra(workdir, pg_url)
    infra.schema = f"bench_stats_i_{uuid.uuid4().hex[:8]}"
    try:
        infra.start_broker()
        await infra.store_configs({p.site: p.toml for p in plans})
        await infra.start_hub()
        pub = await asyncio.to_thread(Publisher, infra, logs, lasts)
        try:
            await asyncio.sleep(0.5)  # subscribed to the acks
            _say(f"ingest: publishing {total:,} events of {len(plans)} sites")
            t0 = pub.start()
            if not await asyncio.to_thread(pub.done.wait, 600):
                raise BenchError(f"ingest: only {pub.total_acked} of {total} events acked")
            took = pub.samples[-1][0] - t0
        finally:
            pub.close()
    finally:
        await infra.close()
    out: dict[str, Any] = {
        "ingest_sites": len(plans), "ingest_business_days": days, "ingest_events": total,
        "ingest_s": round(took, 2), "ingest_with_rollups_events_per_s": round(total / took, 1),
        "ingest_cpus": infra.cpus,
        "ingest_rig": "private mosquitto, the hub in its own process (sync_rig), PostgreSQL"}
    worst = min_window_rate(pub.samples, 5.0)
    if worst is not None:
        out["ingest_min_5s_events_per_s"] = round(worst, 1)
    return out


# --- the whole bench -----------------------------------------------------------------------------

async def _year(quick: bool, pg_url: str, workdir: Path) -> dict[str, Any]:
    from sqlalchemy import text

    from hub.store import HubStore

    plans = site_plans(default_folder(), QUICK_SITES if quick else None)
    sched = schedule(plans, QUICK_DAYS if quick else None)
    tickets = sum(n for _p, _d, n in sched)
    result: dict[str, Any] = {
        "data_sites": len(plans), "data_site_days": len(sched),
        "data_business_days": len({d for _p, d, _n in sched}),
        "data_period": f"{min(d for _p, d, _n in sched)}..{max(d for _p, d, _n in sched)}",
        "data_enough_tickets": tickets >= MIN_TICKETS}
    schema = f"bench_stats_{uuid.uuid4().hex[:10]}"
    _say(f"{len(plans)} sites, {len(sched):,} site-days, {tickets:,} tickets -> schema {schema}")
    try:
        result.update(await _load(pg_url, schema, sched, plans))
        result.update(await _rebuild(pg_url, schema, result["data_events"]))
        result.update(await _reports(pg_url, schema, [p.site for p in plans],
                                     workdir / "fy.csv"))
    finally:
        store = await HubStore.open(pg_url, upgrade=False)
        try:
            async with store.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await store.close()
    return result


def _estimates(quick: bool, result: dict[str, Any]) -> None:
    """Merge the estimator's figures and judge them (ranges and comparisons, which ``judge``
    does not express)."""
    try:
        from edge.bench.estimate_sim import estimate_figures
    except ImportError as exc:
        result["estimate_error"] = f"edge.bench.estimate_sim is not there: {exc}"
        return
    _say("scoring the wait estimate on simulated days")
    result.update(estimate_figures(quick))
    lo, hi = RATIO_RANGE
    ratios = result["estimate_in_range_ratio"]
    est, base = result["estimate_mid_mae_s"], result["baseline_mid_mae_s"]
    result["targets"].update({"estimate_in_range_ratio": [lo, hi],
                              "estimate_in_range_ratio_x10": [lo, hi],
                              "estimate_mid_mae_s": "<= baseline_mid_mae_s on each day"})
    result["meets_targets"].update({
        "estimate_in_range_ratio": all(lo <= r <= hi for r in ratios.values()),
        "estimate_in_range_ratio_x10": lo <= result["estimate_in_range_ratio_x10"] <= hi,
        "estimate_mid_mae_s": all(est[k] <= base[k] for k in est)})


def measure(quick: bool, pg_url: str | None = None) -> dict[str, Any]:
    from edge.bench import _cpu_model

    pg = pg_url or os.environ.get("MADOGUCHI_TEST_PG", DEFAULT_PG)
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-stats-"))
    result: dict[str, Any] = {"bench": "stats", "quick": quick, "hub_db": "postgresql",
                              "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    started = time.monotonic()
    try:
        result.update(asyncio.run(_year(quick, pg, workdir)))
        result.update(asyncio.run(_ingest(quick, pg, workdir,
                                          QUICK_SITES if quick else None)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    judge(result, TARGETS, AT_LEAST)
    _estimates(quick, result)
    result.update({"wall_s": round(time.monotonic() - started, 1),
                   "loadavg_1m_after": round(os.getloadavg()[0], 2),
                   "python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": f"{platform.machine()} {_cpu_model()}".strip()})
    return result
