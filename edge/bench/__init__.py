"""``madoguchi bench edge|devices``: issue latency, command throughput, memory and rebuild time.

Prints one JSON object (DESIGN.md "Interfaces"); every figure's name ends in its unit and
statistic. The HTTP figures (``load``) come from a real ``edge run`` process on 127.0.0.1 with
durable (``synchronous=FULL``) commits; the rebuild figures (``rebuild``) from an event log
generated in-process. ``targets`` holds the goals and ``meets_targets`` whether this run met them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge.bench.judge import judge
from edge.bench.load import BenchError, EdgeProcess, http_figures
from edge.bench.rebuild import rebuild_figures
from edge.config import load_site_config

# at most, except commands_per_s: at least
TARGETS: dict[str, float] = {
    "issue_p99_ms": 25.0, "commands_per_s": 200.0, "rss_mb": 150.0, "rss_peak_mb": 150.0,
    "rebuild_100k_s": 5.0, "startup_5y_s": 2.0, "backup_5y_s": 60.0,
}
_AT_LEAST = frozenset({"commands_per_s"})


def _sample_config() -> Path:
    """The sample site as a bench runs it: open (no sign-in, ``[site] access``) and open every
    day (the benches run on the wall clock and must not stop on a holiday); a copy in a
    temporary folder."""
    from edge.paths import data_dir

    try:
        path = data_dir("sites") / "nerima-main.toml"
    except FileNotFoundError:
        path = Path("sites/nerima-main.toml")
    text = path.read_text(encoding="utf-8").replace("\n[site]\n", '\n[site]\naccess = "open"\n', 1)
    text += "\n[calendar]\nnational_holidays = false\nyear_end = []\n"
    out = Path(tempfile.mkdtemp(prefix="madoguchi-bench-site-")) / path.name
    out.write_text(text, encoding="utf-8")
    return out


def measure(quick: bool, config_path: Path | None = None, *, five_years: bool = False,
            history_db: Path | None = None) -> dict[str, Any]:
    """``five_years``: also the ``*_5y_*`` figures (``edge.bench.startup5y``; minutes, never
    in CI), on the bulk log kept at ``history_db`` if given."""
    path = config_path or _sample_config()
    config = load_site_config(path)
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-"))
    try:
        result: dict[str, Any] = {"bench": "edge", "quick": quick, "site": config.site}
        run_config = _without_pins(path, workdir)
        server = EdgeProcess(run_config, workdir / "edge.db", workdir / "edge.log")
        try:
            result.update(asyncio.run(http_figures(server, config, quick)))
        finally:
            server.stop()
        result.update(rebuild_figures(workdir, config, quick))
        if five_years:
            from edge.bench.startup5y import five_year_figures

            work5y = workdir / "five-years"
            work5y.mkdir()
            result.update(five_year_figures(config, run_config, work5y, history_db))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    judge(result, TARGETS, _AT_LEAST)
    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": f"{platform.machine()} {_cpu_model()}".strip()})
    return result


def _without_pins(path: Path, workdir: Path) -> Path:
    """The site config minus counter PINs: the benchmark measures the queue, not logins."""
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("pin ="))
    out = workdir / path.name
    out.write_text(text + "\n", encoding="utf-8")
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def run_bench(args: argparse.Namespace) -> int:
    try:
        if args.sub == "devices":
            from edge.bench.devices import measure as measure_devices

            result = measure_devices(bool(args.quick), load_site_config(_sample_config()))
        elif args.sub == "screens":
            from edge.bench.screens import measure as measure_screens

            result = measure_screens(bool(args.quick), _sample_config())
        elif args.sub == "sync":
            from edge.bench.sync import measure as measure_sync

            result = measure_sync(bool(args.quick), _sample_config(), args.pg)
        elif args.sub == "hub":
            from edge.bench.hub import measure as measure_hub

            result = measure_hub(bool(args.quick), _sample_config(), args.pg)
        elif args.sub == "reservations":
            from edge.bench.reservations import measure as measure_reservations

            result = measure_reservations(bool(args.quick), args.pg)
        elif args.sub == "stats":
            from edge.bench.stats import measure as measure_stats

            result = measure_stats(bool(args.quick), args.pg)
        elif args.sub == "forms":
            from edge.bench.forms import measure_forms

            result = measure_forms(bool(args.quick), args.pg, args.clamd)
        elif args.sub == "notices":
            from edge.bench.notices import measure as measure_notices

            result = measure_notices(bool(args.quick), args.pg)
        else:
            history = getattr(args, "history_db", None)
            result = measure(bool(args.quick), five_years=bool(getattr(args, "five_years", False)),
                             history_db=Path(history) if history else None)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0
