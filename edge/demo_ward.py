"""``madoguchi demo --ward``: every site of the ward as a simulated edge against one hub.

The sites are the TOML files of a folder (default ``sites/ward/``, any number of them); each
becomes a real edge (store, writer, web server, simulated devices, sync client) as in
``madoguchi demo``, all syncing through the embedded broker to the hub (SQLite) in this one
process, on the shared clock of ``--at``. The traffic per site is lighter (``demo_ward_plan``)
so that the whole ward runs on a 2-core machine, and the demo says what it costs: CPU and memory
on every summary line and for the whole run when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import shutil
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import ConfigError, load_site_config
from edge.demo_banner import DemoSite, split_counters, staff_lines, with_status_url
from edge.demo_clock import TZ, AtError, banner_lines, choose
from edge.demo_screen import HubPoll, Terminal
from edge.demo_ward_plan import (
    IDLE_S,
    CostMeter,
    SitePlan,
    WardError,
    kiosks_for,
    site_ports,
    ward_paths,
    ward_plan,
)
from edge.domain import commands as c
from edge.domain.clock import Clock, SimulatedClock, SystemClock
from edge.domain.model import SiteConfig
from edge.domain.views import snapshot
from edge.paths import data_dir
from edge.store.writer import Writer
from hub.store.store import use_clock

if TYPE_CHECKING:
    from edge.app import Edge

SUMMARY_S = 5.0  # between two summary lines (each reads every site and the hub's API)
JOIN_GAP_S = 0.2  # after a site connected, before the next one starts (see ``_connected``)


def ward_folder(arg: str) -> Path:
    """``--ward`` without a folder: the shipped ``sites/ward``."""
    if arg:
        return Path(arg)
    try:
        return data_dir("sites") / "ward"
    except FileNotFoundError:
        return Path("sites/ward")


async def ward_visitors(writer: Writer, plan: SitePlan, speed: float,
                        rng: random.Random) -> None:
    """Poisson arrivals for the services the simulated counters serve, each at a kiosk whose
    menu offers it (``kiosks_for``)."""
    if not plan.services or plan.arrivals_per_sim_min <= 0:
        return
    kiosks = kiosks_for(writer.config)
    per_s = plan.arrivals_per_sim_min * speed / 60.0
    while True:
        await asyncio.sleep(rng.expovariate(per_s))
        svc = rng.choice(plan.services)
        lang = rng.choice(["ja"] * 8 + ["en", "zh", "ko"])
        await writer.execute(c.Issue(svc, "kiosk", lang, kiosk=rng.choice(kiosks[svc])))


async def ward_operator(writer: Writer, cid: str, speed: float, rng: random.Random) -> None:
    """One counter: call next, serve, finish; when nobody waits, ask again after ``IDLE_S``."""
    await writer.execute(c.OpenCounter(cid))
    while True:
        out = await writer.execute(c.CallNext(cid))
        if out.refused is not None or out.ticket is None:
            await asyncio.sleep(IDLE_S * rng.uniform(0.8, 1.2))
            continue
        svc = writer.config.services[out.ticket["service"]]
        await asyncio.sleep(rng.uniform(0.5, 1.5) * svc.handling_s / speed)
        await writer.execute(c.Finish(cid))


def ward_banner(sites: list[DemoSite], plans: list[SitePlan], hub_url: str, broker_port: int,
                clock_lines: list[str], staff: tuple[str, str]) -> list[str]:
    """URLs of the hub and of every site's screens, what is simulated, and the cost note."""
    n = len(sites)
    lines = [f"madoguchi demo --ward — 区の{n}施設・ハブ・ブローカーをこのPCで模擬 / the ward's "
             f"{n} sites, a hub and a broker on this machine · Ctrl-C で終了 to stop",
             *clock_lines,
             f"ハブ hub {hub_url}/   住民向け status page {hub_url}/",
             *staff_lines(hub_url, staff)]
    for site, plan in zip(sites, plans, strict=True):
        cfg = site.edge.config
        sim = ",".join(plan.counters) or "—"
        lines.append(f"  {cfg.site:<22} {site.url}ui/   {cfg.name.get('ja') or ''}   "
                     f"模擬 simulated {sim} / {len(cfg.counters)}")
    lines.append("軽い模擬 lighter simulation: 1施設あたり最大3窓口・音声なし・"
                 "印刷プレビューなし / at most 3 counters per site, no voice, no ticket previews; "
                 "CPU・メモリは下の行 cost on the lines below")
    lines.append("模擬していない窓口は各施設の ui/operator.html?counter=番号 から開けます "
                 "(ログインを求められたら ID demo) / open any counter not simulated at a "
                 "site's ui/operator.html?counter=ID (login ID demo where asked)")
    lines.append(f"broker mqtt://127.0.0.1:{broker_port} (embedded amqtt)")
    return lines


def _waiting(writer: Writer) -> int:
    snap = writer.read(lambda s: snapshot(s, writer.clock.now()))
    return sum(int(s["waiting"]) for s in snap["services"])


async def hub_counts(poll: HubPoll) -> tuple[int, int] | None:
    """(sites online at the hub, sites the hub knows), or None if it cannot be read."""
    try:
        rows = await poll.sites()
    except Exception:  # the summary must never stop the demo
        return None
    if rows is None:
        return None
    return sum(1 for r in rows if r.get("online")), len(rows)


async def run_ward_screen(term: Terminal, edges: list[Edge], poll: HubPoll, meter: CostMeter,
                          until: float | None) -> None:
    """A summary every ``SUMMARY_S``: waiting across the ward, the busiest sites, the hub's
    view and the cost."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    term.start()
    try:
        while until is None or loop.time() - start < until:
            await asyncio.sleep(SUMMARY_S if until is None
                                else min(SUMMARY_S, max(0.0, start + until - loop.time())))
            waits = sorted(((_waiting(e.writer), e.config.site) for e in edges), reverse=True)
            counts = await hub_counts(poll)
            hub = "—" if counts is None else f"{counts[0]}/{len(edges)} online"
            busiest = "  ".join(f"{site} {n}" for n, site in waits[:3])
            now: datetime = edges[0].writer.clock.now()
            term.draw([f"{now:%H:%M:%S}", f"待ち waiting {sum(n for n, _ in waits)}",
                       f"({busiest})", "|", f"ハブ hub {hub}", "|", meter.sample().text()])
    finally:
        meter.stop()


def _load(args: argparse.Namespace, paths: list[Path], configs: list[SiteConfig],
          sync: SyncOptions, workdir: Path, clock: Clock) -> tuple[list[DemoSite],
                                                                   list[SitePlan]]:
    status_url = f"http://{args.host}:{args.hub_port}/t/{{token}}"
    ports = (site_ports(args.port, len(configs), {args.hub_port, args.broker_port})
             if args.port else [_free_port() for _ in configs])
    sites, plans = [], []
    for path, loaded, port in zip(paths, configs, ports, strict=True):
        config = replace(loaded, status_url=status_url, voice=None)
        config.extra["toml"] = with_status_url(path.read_text(encoding="utf-8"), status_url)
        edge = build_edge(config, workdir / f"{config.site}.db", clock,
                          sync=replace(sync, username=f"site-{config.site}"))
        user = split_counters(config)[2]
        plan = ward_plan(config, user)
        closed = [k for k in config.counters if k not in plan.counters and k not in user]
        sites.append(DemoSite(edge, f"http://{args.host}:{port}/", 1.0, list(plan.counters),
                              closed, user, port))
        plans.append(plan)
    return sites, plans


_GIVEN: set[int] = set()


def _free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999): the 18 sites' own outgoing
    connections take ephemeral ports while the others start, and a port picked from that range
    was seen taken by one of them before its site could bind it."""
    import random
    import socket

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise OSError("no free port between 20000 and 32000")


async def _connected(edge: Edge, timeout_s: float = 10.0) -> None:
    """Until the site's sync client is connected, and a moment for its subscriptions: the
    embedded broker (amqtt) fails a connection whose session set-up overlaps another client's
    subscribing ("dictionary changed size during iteration"), so the sites join one by one."""
    for _ in range(int(timeout_s / 0.02)):  # the client offers no event to wait on
        if edge.sync is None or edge.sync.connected:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(JOIN_GAP_S)


async def _main(args: argparse.Namespace, sites: list[DemoSite], plans: list[SitePlan],
                workdir: Path, clock: Clock, clock_lines: list[str], meter: CostMeter) -> None:
    """Broker, hub, every site, their traffic, the summary; everything stopped on exit."""
    from edge.demo import _demo_staff, start_broker_and_hub

    # no main office first: the ward's sites in id order on the status page
    broker, hub, settings = await start_broker_and_hub(args, workdir, clock, main_site="")
    runners = []
    tasks: list[asyncio.Task[None]] = []
    try:
        staff, poll = await _demo_staff(hub, settings)
        for site in sites:  # configs first: each site then finds its own when it connects
            await hub.set_config(site.edge.config.site, str(site.edge.config.extra["toml"]),
                                 "demo")
        for site in sites:
            runners.append(await start_edge(site.edge, args.host, site.port))
            await _connected(site.edge)
        term = Terminal(ward_banner(sites, plans, hub.url, broker.port, clock_lines, staff),
                        live=False)
        rng = random.Random(7)
        for site, plan in zip(sites, plans, strict=True):
            tasks.append(asyncio.create_task(ward_visitors(site.edge.writer, plan, args.speed,
                                                           rng)))
            tasks += [asyncio.create_task(ward_operator(site.edge.writer, cid, args.speed, rng))
                      for cid in plan.counters]
        meter.reset()
        await run_ward_screen(term, [s.edge for s in sites], poll, meter, args.duration)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for r in runners:
            await r.cleanup()
        await hub.stop()
        await broker.stop()
        use_clock(None)


def run_ward_demo(args: argparse.Namespace) -> int:
    """``madoguchi demo --ward [FOLDER]``; the options are those of ``madoguchi demo``."""
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-demo-ward-"))
    args.broker_port = args.broker_port or _free_port()
    args.hub_port = args.hub_port or _free_port()
    try:
        paths = ward_paths(ward_folder(args.ward))
        configs = [load_site_config(path) for path in paths]
        choice = choose(args.at, configs, datetime.now(TZ))
    except (ConfigError, AtError, WardError) as exc:
        print(exc, file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 2
    print(f"madoguchi demo --ward: 起動中… starting the broker, the hub and {len(configs)} "
          "sites…", flush=True)
    clock: Clock = SystemClock() if choice.start is None else SimulatedClock(choice.start)
    sync = SyncOptions(f"mqtt://127.0.0.1:{args.broker_port}", mqtt5=False,
                       now=lambda: clock.now().astimezone(UTC))
    if not args.verbose:  # eighteen sites' INFO lines would bury the banner and the summary
        logging.getLogger().setLevel(logging.WARNING)
    meter = CostMeter()
    try:
        sites, plans = _load(args, paths, configs, sync, workdir, clock)
        asyncio.run(_main(args, sites, plans, workdir, clock, banner_lines(choice), meter))
    except KeyboardInterrupt:
        print("\nstopped / 終了しました")
    except OSError as exc:
        print(f"cannot start the demo: {exc} (try --port / --hub-port / --broker-port)",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cost = meter.final or meter.total()
    print(f"費用 cost over {cost.seconds:.0f} s of traffic ({len(configs)} sites): {cost.text()}",
          flush=True)
    print("demo stopped; temporary databases and demo mail removed / デモを終了しました",
          flush=True)
    return 0
