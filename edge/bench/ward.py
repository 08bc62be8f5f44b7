"""The ward's sites for ``madoguchi bench sync`` (the ``ward18_*`` figures).

Why a run of its own: the 20 sites of the latency run are copies of one sample site pushed
hard (50 events/s each); the ward run is the real ward, every site of ``sites/ward/`` with its
own configuration (sections, shared kiosks, many counters), stored in the hub as it is, all
producing events at once at ``WARD_SITE_RATE``. That rate is a rush with a margin: with every
counter of a 30-counter office busy on 5-minute services, a site makes about 0.3 events/s
(issue, call, finish per visitor); 5 events/s at all sites at once is some fifteen times that,
and gives a p99 over thousands of events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from edge.bench.load import BenchError
from edge.config import ConfigError, parse_site_config
from edge.domain.model import SiteConfig

WARD_SITE_RATE = 5.0  # events per second per site
OPEN_CALENDAR = "\n[calendar]\nnational_holidays = false\nyear_end = []\n"
_FOLDER: ContextVar[Path | None] = ContextVar("ward_folder", default=None)


@contextmanager
def ward_folder(folder: str | Path | None) -> Iterator[None]:
    """``bench sync --ward FOLDER``: the folder for the ward run within this block."""
    token = _FOLDER.set(None if folder is None else Path(folder))
    try:
        yield
    finally:
        _FOLDER.reset(token)


def default_folder() -> Path:
    """``--ward`` if given, else the shipped ``sites/ward``."""
    chosen = _FOLDER.get()
    if chosen is not None:
        return chosen
    from edge.paths import data_dir

    try:
        return data_dir("sites") / "ward"
    except FileNotFoundError:
        return Path("sites/ward")


def open_every_day(toml: str) -> str:
    """The site's TOML with its ``[calendar]`` (and sub-tables) replaced by one that closes no
    day: the bench runs on the wall clock and must not stop on a holiday or at the year end
    (the calendar has its own tests)."""
    out: list[str] = []
    skipping = False
    for line in toml.splitlines():
        header = re.match(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?", line)
        if header:
            skipping = header.group(1).split(".")[0].strip('"') == "calendar"
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n" + OPEN_CALENDAR


def ward_tomls(folder: Path) -> dict[str, str]:
    """site id -> TOML as the bench stores it in the hub, for every ``*.toml`` of ``folder``."""
    paths = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not paths:
        raise BenchError(f"no ward site configs (*.toml) in {folder}; pass --ward FOLDER")
    out: dict[str, str] = {}
    for path in paths:
        text = open_every_day(path.read_text(encoding="utf-8"))
        try:
            site = parse_site_config(text).site
        except ConfigError as exc:
            raise BenchError(f"{path}: {exc}") from None
        if site in out:
            raise BenchError(f"{path}: site id {site!r} appears twice in {folder}")
        out[site] = text
    return out


def step_plan(config: SiteConfig) -> list[tuple[str, str]]:
    """(counter, service it issues for) for every counter that can serve a kiosk service:
    the first kiosk service without a daily limit in its list, else its first kiosk service
    (a limit refuses tickets once reached, so it is the last choice)."""
    kiosk = [code for code, s in config.services.items() if s.kiosk]
    unlimited = {code for code in kiosk if config.services[code].daily_limit is None}
    plan: list[tuple[str, str]] = []
    for cid, counter in config.counters.items():
        mine = [code for code in counter.services if code in kiosk]
        if mine:
            plan.append((cid, next((s for s in mine if s in unlimited), mine[0])))
    return plan
