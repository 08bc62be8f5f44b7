"""``madoguchi bench reservations``: the release rush and the ○/△/× page (issue 14 item 7).

The rig: a private mosquitto and two hub processes on a PostgreSQL schema of their own
(``hub_rig.HubInfra``, as ``bench hub``, plus a second worker as behind the reverse proxy), with a
key the bench shares so it can hand out the residents' page tokens. The load comes from this
process on the same two cores: on the development machine the client's own cost is about half
of the rush's wall time. The bench imports reservation IDs and slots straight into the schema,
with the slots' publication a few seconds ahead, then:

- **rush**: at the publication moment, ``rush_attempts_count`` residents (each with an ID of
  their own) post the booking form at once for a slot chosen at random among ``SLOTS`` slots of
  capacity ``CAPACITY``, over real HTTP from this process. ``rush_bookable_count`` is the places
  asked for (the capacity of every slot that drew two or more residents). Each answer is a
  redirect to the confirmation (booked) or back to the list with "just taken";
  ``rush_p99_ms`` is the time from sending to the answer. Then the database is read:
  ``rush_booked_count`` active reservations, ``rush_overbooked_count`` slots holding more than
  their capacity (target 0) and ``rush_places_unheld`` places taken with no reservation (0).
- **availability**: the slot page (``GET /r/slots/{token}``, ○/△/× for 14 days) requested by
  ``wrk`` (else Python clients) for a few seconds: ``availability_requests_per_s``.

One JSON object; ``targets`` and ``meets_targets`` as the other benches.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from edge.bench.hub_rig import HubInfra, run_python_load, run_wrk, wrk_path
from edge.bench.judge import judge
from edge.bench.load import BenchError

TARGETS: dict[str, float] = {"rush_overbooked_count": 0, "rush_p99_ms": 1500.0,
                             "availability_requests_per_s": 2000.0}
AT_LEAST = frozenset({"availability_requests_per_s"})
SLOTS, CAPACITY = 100, 2
OFFICE = "0001"
LEAD_S = 8.0  # the publication this far after the data is in and the hub is up


class ReservationInfra(HubInfra):
    """The hub processes get the bench's key (``MADOGUCHI_HUB_KEYS``) for the page tokens. A
    second hub process on the same database (its own topic prefix, so its broker client does
    not displace the first's) stands for the second worker behind the reverse proxy."""

    key: ClassVar[bytes] = os.urandom(32)
    env: ClassVar[dict[str, str]] = {
        **HubInfra.env,
        "MADOGUCHI_HUB_KEYS": "bench:" + base64.b64encode(key).decode("ascii"),
        "MADOGUCHI_RESERVATION_MAIN_OFFICE": OFFICE}
    second_port = 0

    @property
    def hubs(self) -> list[str]:
        return [self.hub] + ([f"http://127.0.0.1:{self.second_port}"] if self.second_port
                             else [])

    async def start_second(self) -> None:
        from edge.bench.sync_rig import _root, free_port

        self.second_port = free_port()
        args = [sys.executable, "-m", "edge.bench.sync_rig", "hub", self.pg_url, self.schema,
                self.mqtt, self.prefix + "-2", str(self.second_port)]
        env = {**os.environ, **self.env, "PYTHONPATH": _root()}

        def spawn() -> subprocess.Popen[bytes]:
            with (self.workdir / "hub2.log").open("wb") as log:
                return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)

        self.procs.append(await asyncio.to_thread(spawn))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{self.hubs[1]}/api/health") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise BenchError("the second hub process did not start")


def _bookable_day(now: _dt.datetime) -> _dt.date:
    from edge.domain.calendar import Calendar
    from hub.reservations.window import TOKYO, window

    local = now.astimezone(TOKYO)
    d = local.date() + _dt.timedelta(days=10)
    while d.weekday() >= 5 or not window(d, Calendar()).contains(local):
        d += _dt.timedelta(days=1)
    return d


async def _seed(infra: ReservationInfra, ids: list[str], publish: _dt.datetime) -> _dt.date:
    from edge.domain.calendar import Calendar
    from hub.reservations.booking import add_slots
    from hub.reservations.imports import import_ids
    from hub.reservations.slots import Pattern, rows
    from hub.store import HubStore

    store = await HubStore.open(infra.pg_url, schema=infra.schema)
    infra.schema_made = True
    try:
        body = "予約ID,区民事務所コード\n" + "".join(f"{r},{OFFICE}\n" for r in ids)
        got = await import_ids(store, body.encode("utf-8"), publish)
        if got.errors:
            raise BenchError(f"importing the bench IDs failed: {got.errors[:3]}")
        day = _bookable_day(publish)
        start = _dt.datetime(2000, 1, 1, 8, 0)
        pattern = Pattern(OFFICE, "bench-site", "M", "mycard", day, day, frozenset(range(7)),
                          start.time(), (start + _dt.timedelta(minutes=5 * SLOTS)).time(), 5,
                          CAPACITY, publish)
        slots = rows(pattern, Calendar(), OFFICE)
        if len(slots) != SLOTS or await add_slots(store, slots) != SLOTS:
            raise BenchError("could not create the bench slots")
    finally:
        await store.close()
    return day


async def _slot_ids(infra: ReservationInfra) -> list[int]:
    from sqlalchemy import select

    from hub.reservations.tables import reservation_slots
    from hub.store import HubStore

    store = await HubStore.open(infra.pg_url, schema=infra.schema, upgrade=False)
    try:
        async with store.read() as tx:
            return [int(r[0]) for r in (await tx.conn.execute(
                select(reservation_slots.c.id).order_by(reservation_slots.c.id))).all()]
    finally:
        await store.close()


async def _outcome(infra: ReservationInfra) -> dict[str, int]:
    from sqlalchemy import func, select

    from hub.reservations.tables import reservation_slots, reservations
    from hub.store import HubStore

    store = await HubStore.open(infra.pg_url, schema=infra.schema, upgrade=False)
    try:
        async with store.read() as tx:
            c = tx.conn
            over = (await c.execute(select(func.count()).select_from(reservation_slots).where(
                reservation_slots.c.booked > reservation_slots.c.capacity))).scalar()
            taken = (await c.execute(select(func.sum(reservation_slots.c.booked)))).scalar()
            active = (await c.execute(select(func.count()).select_from(reservations).where(
                reservations.c.status == "active"))).scalar()
    finally:
        await store.close()
    return {"rush_overbooked_count": int(over or 0), "rush_booked_count": int(active or 0),
            "rush_places_unheld": int(taken or 0) - int(active or 0)}


def _pct(ordered: list[float], q: float) -> float:
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def _rush(infra: ReservationInfra, ids: list[str], slot_ids: list[int],
                publish: _dt.datetime) -> dict[str, Any]:
    from hub.reservations import tokens

    now = _dt.datetime.now(_dt.UTC)
    ctxs = [tokens.sign(infra.key, "ctx", rid, now) for rid in ids]
    rng = random.Random(14)
    chosen = [rng.choice(slot_ids) for _ in ids]
    form = {"email": "bench@example.jp", "phone": "", "pin": "1234", "pin2": "1234"}
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    hubs = infra.hubs
    connector = aiohttp.TCPConnector(limit=len(ids))
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        async def one(ctx: str, slot: int) -> None:
            t0 = time.perf_counter()
            base = hubs[hash(ctx) % len(hubs)]  # as a reverse proxy spreads residents
            try:
                async with http.post(f"{base}/r/book/{ctx}/{slot}?lang=ja", data=form,
                                     allow_redirects=False) as r:
                    await r.read()
                    where = r.headers.get("Location", "")
                    kind = ("booked" if "/r/done/" in where else "just_taken"
                            if "just_taken" in where else f"http_{r.status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                kind = type(exc).__name__
            latencies.append((time.perf_counter() - t0) * 1000)
            outcomes[kind] = outcomes.get(kind, 0) + 1

        wait = (publish - _dt.datetime.now(_dt.UTC)).total_seconds()
        if wait < 0:
            raise BenchError("the hub took longer to start than the publication lead")
        await asyncio.sleep(wait + 0.05)
        t0 = time.perf_counter()
        await asyncio.gather(*(one(c, s) for c, s in zip(ctxs, chosen, strict=True)))
        wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    wanted: dict[int, int] = {}
    for slot in chosen:
        wanted[slot] = wanted.get(slot, 0) + 1
    return {"rush_attempts_count": len(ids), "rush_outcomes": outcomes,
            "rush_hub_processes": len(hubs),
            "rush_bookable_count": sum(min(CAPACITY, n) for n in wanted.values()),
            "rush_p50_ms": round(statistics.median(ordered), 1),
            "rush_p99_ms": round(_pct(ordered, 99), 1), "rush_max_ms": round(ordered[-1], 1),
            "rush_wall_s": round(wall, 2), "rush_slots": len(slot_ids),
            "rush_capacity_total": len(slot_ids) * CAPACITY}


async def _availability(infra: ReservationInfra, rid: str, seconds: float) -> dict[str, Any]:
    from hub.reservations import tokens

    ctx = tokens.sign(infra.key, "ctx", rid, _dt.datetime.now(_dt.UTC))
    url = f"{infra.hub}/r/slots/{ctx}?lang=ja"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        page = await r.text()
        if r.status != 200 or "slot-list" not in page:
            raise BenchError(f"the slot page answered {r.status}")
    urls = [url.replace(infra.hub, base, 1) for base in infra.hubs]
    if wrk_path() is not None:
        runs = await asyncio.gather(*(run_wrk(u, 1, 32, seconds) for u in urls))
        tool = "wrk"
    else:
        runs = await asyncio.gather(*(run_python_load(u, 32, seconds) for u in urls))
        tool = "python"
    return {"availability_requests_per_s": round(sum(g["requests_per_s"] for g in runs), 1),
            "availability_p99_ms": max(g.get("p99_ms", 0.0) for g in runs),
            "availability_tool": tool, "availability_hub_processes": len(urls)}


async def _run(quick: bool, pg_url: str, workdir: Path) -> dict[str, Any]:
    attempts = 500 if quick else 2000
    infra = ReservationInfra(workdir, pg_url)
    try:
        infra.start_broker()
        publish = _dt.datetime.now(_dt.UTC) + _dt.timedelta(hours=1)  # set once the hub is up
        ids = [f"B{i:07d}" for i in range(attempts + 1)]
        await _seed(infra, ids, publish)
        await infra.start_hub()
        infra.widen_hub()
        await infra.start_second()
        slot_ids = await _slot_ids(infra)
        publish = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=LEAD_S)
        await _set_publication(infra, publish)
        out = await _rush(infra, ids[:attempts], slot_ids, publish)
        out.update(await _outcome(infra))
        out.update(await _availability(infra, ids[-1], 3.0 if quick else 10.0))
        return out
    finally:
        await infra.close()


async def _set_publication(infra: ReservationInfra, publish: _dt.datetime) -> None:
    """The publication moment, once the hub is up (its start-up time varies)."""
    from hub.reservations.tables import reservation_slots
    from hub.store import HubStore

    store = await HubStore.open(infra.pg_url, schema=infra.schema, upgrade=False)
    try:
        async with store.begin() as tx:
            await tx.conn.execute(reservation_slots.update().values(published_at=publish))
    finally:
        await store.close()


def measure(quick: bool, pg_url: str | None = None) -> dict[str, Any]:
    from edge.bench import _cpu_model

    pg = pg_url or os.environ.get("MADOGUCHI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-reservations-"))
    result: dict[str, Any] = {"bench": "reservations", "quick": quick,
                              "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    try:
        result.update(asyncio.run(_run(quick, pg, workdir)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["rush_overbooked_count_ok"] = result["rush_overbooked_count"] == 0
    # every place someone asked for is taken: the capacity, where each slot drew 2 or more
    result["rush_booked_is_capacity"] = \
        result["rush_booked_count"] == result["rush_bookable_count"]
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    judge(result, TARGETS, at_least=AT_LEAST)
    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": f"{platform.machine()} {_cpu_model()}".strip()})
    return result
