"""``madoguchi bench edge --five-years``: start-up and online backup on five years of history.

Why: start-up folded the whole event log, so a restart during opening hours grew with the
years a site had run (issue 18); and a backup that takes the writer's lock for minutes would
stop the counters. Both are measured where they hurt: a busy site's five years (about 10
million events, ``edge.bench.history_bulk``), a real ``edge run`` process, and the real
``madoguchi backup edge`` while a client keeps issuing tickets.

Start-up is timed from the process start until ``GET /api/ready`` answers 200 (the store
answers, the state is folded): the first start on the bulk log (no snapshot yet, so it folds
everything once) and the median of later starts; beside them the median start on a one-day
log of the same site (``startup_1day_s``), the part that has nothing to do with history.
The bulk log is generated once (minutes) and kept where ``--history-db`` says; every run works
on a copy of it, so its first start stays a first start however often the bench runs. Too
slow and too big for CI: nothing runs it there.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

import edge
from edge.bench.history_bulk import first_day, write_history
from edge.bench.load import BenchError, EdgeProcess, kiosk_plan
from edge.domain.model import SiteConfig

DAYS_5Y = 1_250  # business days: five years of weekdays less holidays
TICKETS_PER_DAY = 2_500  # about 8,000 events a day: 2 million a year at a busy site
SEED = 2021
LATER_STARTS = 3
ISSUE_RATE_PER_S = 5.0  # a busy office's kiosks while the nightly backup runs
READY_TIMEOUT_S = 1_800.0  # the first start folds every event once
BACKUP_TIMEOUT_S = 1_800.0


def five_year_figures(config: SiteConfig, run_config: Path, workdir: Path,
                      history_db: Path | None) -> dict[str, Any]:
    """The ``*_5y_*`` figures. ``run_config``: the site config ``edge run`` reads;
    ``history_db``: where the bulk log is kept (generated there if missing), else a temporary
    one in ``workdir``."""
    out: dict[str, Any] = {}
    pristine = history_db or workdir / "history-5y.db"
    if _events(pristine):
        out["history_5y_reused"] = True
    else:
        t0 = time.perf_counter()
        today = datetime.now(ZoneInfo(config.timezone)).date()
        write_history(pristine, config, days=DAYS_5Y, tickets_per_day=TICKETS_PER_DAY,
                      start_day=first_day(config, DAYS_5Y, today), seed=SEED)
        out["history_5y_generate_s"] = round(time.perf_counter() - t0, 1)
    events = _events(pristine)
    out["history_5y_events"] = events
    out["history_5y_db_mb"] = round(pristine.stat().st_size / 1e6, 1)
    db = workdir / "edge.db"
    if history_db is None:
        pristine.rename(db)  # generated for this run only: no copy needed
    else:
        _print(f"copying {pristine} for this run …")
        shutil.copyfile(pristine, db)
    one_day = workdir / "one-day.db"
    write_history(one_day, config, days=1, tickets_per_day=TICKETS_PER_DAY,
                  start_day=first_day(config, 1, datetime.now(ZoneInfo(config.timezone)).date()),
                  seed=SEED, progress=False)
    out["bytecode_compiled_files"] = compile_bytecode()
    out.update(asyncio.run(_starts_and_backup(config, run_config, db, one_day, workdir)))
    return out


def compile_bytecode() -> int:
    """Compile the installed packages and the project to bytecode first, as an installation
    does (``uv sync --compile-bytecode``, pip's default): without it every start compiles
    ~1,700 modules from source (1.1 s of a 2.2 s start here, where PYTHONDONTWRITEBYTECODE is
    set), which has nothing to do with history. Returns how many files were (re)written."""
    import compileall
    import sysconfig

    roots = [Path(sysconfig.get_paths()["purelib"]), Path(edge.__file__).parent,
             Path(edge.__file__).parent.parent / "hub"]
    before = sum(1 for r in roots for _ in r.rglob("*.pyc"))
    for root in roots:
        compileall.compile_dir(root, quiet=2, workers=0)
    return sum(1 for r in roots for _ in r.rglob("*.pyc")) - before


def _events(db: Path) -> int:
    """Events in an existing database (0 if none); read-only, so a kept log stays pristine."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(seq) FROM events").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
    return int(row[0] or 0)


def _print(text: str) -> None:
    print(f"bench 5y: {text}", file=sys.stderr, flush=True)


async def _start(session: aiohttp.ClientSession, run_config: Path, db: Path,
                 log: Path) -> tuple[EdgeProcess, float]:
    """Start ``edge run`` and wait for readiness; (the process, seconds from its start)."""
    t0 = time.perf_counter()
    server = EdgeProcess(run_config, db, log)
    try:
        while time.perf_counter() - t0 < READY_TIMEOUT_S:
            if server.proc.poll() is not None:
                _exited(server, log)
            try:
                async with session.get(f"{server.base}/api/ready") as resp:
                    await resp.read()
                    if resp.status == 200:
                        return server, time.perf_counter() - t0
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.02)
        raise BenchError(f"edge server not ready within {READY_TIMEOUT_S:.0f} s")
    except BaseException:
        server.stop()
        raise


def _exited(server: EdgeProcess, log: Path) -> None:
    raise BenchError(f"edge server exited ({server.proc.returncode}):\n"
                     + log.read_text(errors="replace")[-2000:])


async def _starts_and_backup(config: SiteConfig, run_config: Path, db: Path, one_day: Path,
                             workdir: Path) -> dict[str, Any]:
    """Start-ups on the one-day log (the baseline: imports, devices, web server), then on the
    five-year one, the last of which stays up for the backup."""
    out: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        base: list[float] = []
        for i in range(LATER_STARTS + 1):
            _print(f"one-day log, start {i + 1} …")
            server, took = await _start(session, run_config, one_day,
                                        workdir / f"edge-1day-{i + 1}.log")
            server.stop()
            base.append(took)
        out["startup_1day_s"] = round(statistics.median(base[1:]), 3)
        _print("first start (no snapshot yet) …")
        server, first = await _start(session, run_config, db, workdir / "edge-first.log")
        server.stop()
        out["startup_5y_first_s"] = round(first, 3)
        later: list[float] = []
        for i in range(LATER_STARTS):
            _print(f"start {i + 2} …")
            server, took = await _start(session, run_config, db, workdir / f"edge-{i + 2}.log")
            later.append(took)
            if i < LATER_STARTS - 1:
                server.stop()
        try:
            out["startup_5y_s"] = round(statistics.median(later), 3)
            out["startup_5y_runs_s"] = [round(s, 3) for s in later]
            out["startup_5y_rss_mb"] = round(server.memory_mb()[0], 1)
            _print("online backup while tickets are issued …")
            out.update(await _backup_while_issuing(session, server, config, db, workdir))
        finally:
            server.stop()
    return out


async def _backup_while_issuing(session: aiohttp.ClientSession, server: EdgeProcess,
                                config: SiteConfig, db: Path, workdir: Path) -> dict[str, Any]:
    """``madoguchi backup edge`` on the live database while a client issues tickets at
    ``ISSUE_RATE_PER_S`` (open loop: one request every interval, whatever the answers)."""
    services, _ = kiosk_plan(config)
    url = f"{server.base}/api/tickets"
    async with session.post(url, json={"service": services[0]}) as resp:  # opens the day
        if resp.status != 201:
            raise BenchError(f"issuing before the backup failed: {resp.status} "
                             f"{await resp.text()}")
    loop = asyncio.get_running_loop()
    answered: list[tuple[float, int]] = []  # (time answered, status)

    async def issue(i: int) -> None:
        try:
            async with session.post(url, json={"service": services[i % len(services)]}) as r:
                await r.read()
                answered.append((loop.time(), r.status))
        except (aiohttp.ClientError, TimeoutError):
            answered.append((loop.time(), 0))

    folder = workdir / "backups"
    env = _backup_env()
    args = [sys.executable, "-m", "edge.cli", "backup", "edge", "--db", str(db),
            "--to", str(folder)]
    tasks: list[asyncio.Task[None]] = []
    t0 = loop.time()
    proc = await asyncio.create_subprocess_exec(*args, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    waited = asyncio.create_task(proc.communicate())
    i = 0
    while not waited.done():
        tasks.append(asyncio.create_task(issue(i)))
        i += 1
        await asyncio.wait({waited}, timeout=1.0 / ISSUE_RATE_PER_S)
        if loop.time() - t0 > BACKUP_TIMEOUT_S:
            proc.kill()
    t1 = loop.time()
    said = (await waited)[0].decode(errors="replace")
    await asyncio.gather(*tasks)
    if proc.returncode != 0:
        raise BenchError(f"madoguchi backup edge failed ({proc.returncode}): {said[-2000:]}")
    files = sorted(folder.glob("*.mbk"))
    return {
        "backup_5y_s": round(t1 - t0, 2),
        "backup_5y_bytes": sum(f.stat().st_size for f in files),
        "backup_5y_issued_during": sum(1 for at, status in answered
                                       if status == 201 and at <= t1),
        "backup_5y_issue_errors": sum(1 for _at, status in answered if status != 201),
    }


def _backup_env() -> dict[str, str]:
    """The backup's environment: a key made for this run only (the backup is thrown away with
    the work folder), no second location, and this checkout importable."""
    env = dict(os.environ)
    env["MADOGUCHI_BACKUP_KEYS"] = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    env.pop("MADOGUCHI_BACKUP_COPY_TO", None)
    root = str(Path(edge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
