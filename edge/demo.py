"""``madoguchi demo``: three simulated sites syncing to a hub over an embedded broker.

A busy main office and two quieter branches, each with arrivals and operators, their screens
and simulated devices; the embedded amqtt broker and the hub (SQLite) in the same process;
a live summary in the terminal.

Simulated visitors and operators go through the same writer as the HTTP API, so the demo shows
the real engine; ``--speed`` compresses the service's handling times and arrival gaps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.app import Edge, build_edge, start_edge
from edge.config import ConfigError, load_site_config
from edge.domain import commands as c
from edge.domain.model import SiteConfig
from edge.domain.views import snapshot, stats_view
from edge.store.writer import Writer

ABSENT_P = 0.05
TRANSFER_P = 0.6  # of first-stage visitors of a service that has a second-stage queue
LABEL = {"ja": "待ち", "en": "waiting"}


def _kiosks(writer: Writer) -> list[str | None]:
    """The kiosks that have a printer (their tickets print as PNG previews in the demo)."""
    return [d.kiosk for d in writer.config.devices if d.kind == "printer"] or [None]


async def visitors(writer: Writer, speed: float, rng: random.Random) -> None:
    """Poisson arrivals at ~90 % of what the open counters can handle: queues form and drain."""
    kiosk = [s for s in writer.config.services.values() if s.kiosk]
    counters = len(writer.config.counters) * 4 // 5
    mean_min = sum(s.handling_s for s in kiosk) / len(kiosk) / 60.0
    per_min = 0.9 * max(counters, 1) / mean_min  # arrivals per simulated minute, whole site
    while True:
        await asyncio.sleep(rng.expovariate(per_min * speed / 60.0))
        svc = rng.choices(kiosk, weights=[1.0 / (1 + i) for i in range(len(kiosk))])[0]
        channel = "web" if rng.random() < 0.1 else "kiosk"
        lang = rng.choice(["ja"] * 8 + ["en", "zh", "ko"])
        at = rng.choice(_kiosks(writer)) if channel == "kiosk" else None
        await writer.execute(c.Issue(svc.code, channel, lang, kiosk=at))


def _second_stage(writer: Writer, service: str) -> str | None:
    """A kiosk=false queue served by a counter that also serves ``service``: its next stage."""
    cfg = writer.config
    for counter in cfg.counters.values():
        if service in counter.services:
            for code in counter.services:
                if not cfg.services[code].kiosk:
                    return code
    return None


async def operator(writer: Writer, cid: str, speed: float, rng: random.Random) -> None:
    """One counter: call next, serve for a while, then finish, transfer or mark absent."""
    await writer.execute(c.OpenCounter(cid))
    absent: list[int] = []
    while True:
        out = await writer.execute(c.CallNext(cid))
        if out.refused is not None or out.ticket is None:
            await asyncio.sleep(1.0)
            continue
        ticket = out.ticket
        svc = writer.config.services[ticket["service"]]
        if rng.random() < ABSENT_P:
            await asyncio.sleep(20 / speed)
            await writer.execute(c.MarkAbsent(cid))
            absent.append(ticket["number"])
            continue
        if absent and rng.random() < 0.3:  # an absent visitor shows up with their ticket
            await writer.execute(c.ClearAbsence(cid, number=absent.pop(0)))
        await asyncio.sleep(rng.uniform(0.5, 1.5) * svc.handling_s / speed)
        nxt = _second_stage(writer, svc.code) if svc.kiosk else None
        if nxt is not None and rng.random() < TRANSFER_P:
            await writer.execute(c.Transfer(cid, to_service=nxt))
        else:
            await writer.execute(c.Finish(cid))


def _w(text: object, width: int, right: bool = True) -> str:
    """Pad for a terminal: CJK characters take two columns."""
    s = str(text)
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
    pad = " " * max(width - cols, 0)
    return pad + s if right else s + pad


def _fmt_wait(est: dict[str, int] | None) -> str:
    if est is None:
        return "—"
    return f"{est['low_s'] // 60}–{-(-est['high_s'] // 60)} min"


def _device_lines(edge: Edge | None) -> list[str]:
    if edge is None or edge.devices is None:
        return []
    parts = []
    for h in edge.devices.board.all():
        why = f" ({h.reason})" if h.reason and h.state != "ok" else ""
        parts.append(f"{h.id} {h.state}{why}")
    lines = ["機器 devices: " + "  ".join(parts)]
    printed = sum(p.printed for p in edge.devices.printers.values())
    if edge.devices.preview_dir is not None:
        lines.append(f"印刷 printed: {printed} tickets → {edge.devices.preview_dir}")
    return lines


def render(writer: Writer, url: str, edge: Edge | None = None) -> str:
    """The terminal summary (Japanese and English labels side by side)."""
    now = writer.clock.now()
    snap = writer.read(lambda s: snapshot(s, now))
    stats = writer.read(stats_view)
    lines = [
        f"madoguchi demo — {snap['name'].get('ja')} / {snap['name'].get('en')}   "
        f"{now:%Y-%m-%d %H:%M:%S}   seq {snap['seq']}",
        f"API {url}api/state   OpenAPI {url}api/openapi.json   Ctrl-C で終了 / to stop",
        "",
        _w("業務 service", 26, right=False) + _w("待ち wait", 10) + _w("再待ち 2nd", 12)
        + _w("次 next", 9) + _w("経過 since", 12) + _w("目安 estimate", 16),
    ]
    for s in snap["services"]:
        nxt = s["next"]
        lines.append(
            f"{s['code'] + ' ' + s['name'].get('en', '')[:22]:<26}{s['waiting']:>10}"
            f"{s['second_wait']:>12}{(nxt['number'] if nxt else '—'):>9}"
            f"{(str(nxt['wait_s'] // 60) + ' min' if nxt else '—'):>12}"
            f"{_fmt_wait(s['estimate']):>16}"
        )
    lines += ["", "呼出中 now calling:"]
    calling = "  ".join(f"[{x['counter']}] {x['number']}" for x in snap["calling"]) or "—"
    lines.append("  " + calling)
    lines.append("不在 absent: " + (", ".join(str(a["number"]) for a in snap["absent"]) or "—"))
    lines.append("保留 held:   " + (", ".join(str(a["number"]) for a in snap["held"]) or "—"))
    waits = [v["wait_avg_s"] for v in stats["services"].values() if v["wait_avg_s"] is not None]
    avg = f"{sum(waits) / len(waits) / 60:.1f} min" if waits else "—"
    lines.append(f"本日 today: issued {stats['issued_total']}   avg wait {avg}")
    lines += _device_lines(edge)
    return "\n".join(lines)


async def _hub_line(hub: Any) -> str:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.get(f"{hub.url}/api/sites") as r:
            body = await r.json()
        rows = body["sites"] if isinstance(body, dict) else body
    except Exception:  # the summary must never stop the demo
        return "ハブ hub: —"
    parts = [f"{r['site']} {'online' if r.get('online') else 'OFFLINE'} seq {r.get('last_seq')}"
             for r in rows]
    return "ハブ hub: " + ("  ".join(parts) or "no site yet")


async def _screen(sites: list[DemoSite], hub: Any, live: bool, until: float | None) -> None:
    main = sites[0]
    loop = asyncio.get_running_loop()
    start = loop.time()
    while until is None or loop.time() - start < until:
        hub_line = await _hub_line(hub)
        if live:
            text = render(main.edge.writer, main.url, main.edge)
            branches = [_branch_line(s) for s in sites[1:]]
            sys.stdout.write("\x1b[H\x1b[2J" + text + "\n\n" + "\n".join(branches)
                             + "\n" + hub_line + "\n")
        else:
            line = "  ".join(_branch_line(s) for s in sites)
            sys.stdout.write(f"{datetime.now():%H:%M:%S} {line}  | {hub_line}\n")
        sys.stdout.flush()
        await asyncio.sleep(1.0 if live else 5.0)


def _branch_line(site: DemoSite) -> str:
    w = site.edge.writer
    snap = w.read(lambda s: snapshot(s, w.clock.now()))
    waiting = sum(s["waiting"] for s in snap["services"])
    second = sum(s["second_wait"] for s in snap["services"])
    return (f"{snap['site']}: {LABEL['ja']}/{LABEL['en']} {waiting} "
            f"(2次 {second}) seq {snap['seq']}")


@dataclass
class DemoSite:
    edge: Edge
    url: str
    load: float  # share of a busy office's arrivals


SITES = (("nerima-main.toml", 1.0), ("hikarigaoka.toml", 0.35), ("oizumi.toml", 0.25))


async def _main(args: argparse.Namespace, sites: list[DemoSite], workdir: Path) -> None:
    """Broker, hub, then the sites; each site's traffic; the screen; everything stopped on exit."""
    from edge.embedded_broker import start_embedded_broker
    from hub.app import start_hub

    broker = await start_embedded_broker("127.0.0.1", args.broker_port)
    hub = await start_hub(f"sqlite:///{workdir / 'hub.db'}",
                          f"mqtt://hub@127.0.0.1:{broker.port}/?protocol=3.1.1",
                          port=args.hub_port, host=args.host)
    runners = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for i, site in enumerate(sites):
            runners.append(await start_edge(site.edge, args.host, args.port + i))
            await hub.set_config(site.edge.config.site, str(site.edge.config.extra["toml"]),
                                 "demo")
        print(f"broker: mqtt://127.0.0.1:{broker.port} (embedded amqtt)", flush=True)
        print(f"hub:    residents {hub.url}/   staff {hub.url}/staff/sites   "
              f"API {hub.url}/api/sites", flush=True)
        for site in sites:
            print(f"edge {site.edge.config.site}: {site.url}  (screens {site.url}ui/)",
                  flush=True)
        main = sites[0].edge
        if main.devices is not None and main.devices.preview_dir is not None:
            print(f"printed tickets (PNG) / 印刷された番号札: {main.devices.preview_dir}",
                  flush=True)
        rng = random.Random(7)
        for site in sites:
            tasks.append(asyncio.create_task(
                visitors(site.edge.writer, args.speed * site.load, rng)))
            ids = list(site.edge.config.counters)  # one counter in five stays closed
            tasks += [asyncio.create_task(operator(site.edge.writer, cid, args.speed, rng))
                      for i, cid in enumerate(ids) if i % 5 != 4 or len(ids) < 5]
        live = not args.no_screen and sys.stdout.isatty()
        await _screen(sites, hub, live, args.duration)
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


def _demo_voice(config: SiteConfig, folder: Path | None) -> SiteConfig:
    """The demo's speakers: WAV files in a folder with --voice, else silent (no sound card)."""
    if config.voice is None:
        return config
    if folder is None:
        return replace(config, voice=None)
    zones = tuple(replace(z, output=f"file://{folder}") if z.output == "null" else z
                  for z in config.voice.zones)
    return replace(config, voice=replace(config.voice, zones=zones))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(args: argparse.Namespace) -> int:
    from edge.app import SyncOptions
    from edge.paths import data_dir

    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-demo-"))
    tickets = Path(args.tickets).resolve()
    if not args.broker_port:
        args.broker_port = _free_port()
    sync = SyncOptions(f"mqtt://127.0.0.1:{args.broker_port}", mqtt5=False)
    sites: list[DemoSite] = []
    try:
        paths = [Path(args.config)] + [data_dir("sites") / name for name, _ in SITES[1:]]
        for i, path in enumerate(paths):
            config = load_site_config(path)
            config.extra["toml"] = path.read_text(encoding="utf-8")
            config = _demo_voice(config, tickets.parent / "voice" if args.voice else None)
            db = Path(args.db) if (args.db and i == 0) else workdir / f"{config.site}.db"
            edge = build_edge(config, db, preview_dir=tickets / config.site,
                              sync=replace(sync, username=f"site-{config.site}"))
            sites.append(DemoSite(edge, f"http://{args.host}:{args.port + i}/", SITES[i][1]))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        asyncio.run(_main(args, sites, workdir))
    except KeyboardInterrupt:
        print("\nstopped / 終了しました")
    except OSError as exc:
        print(f"cannot start the demo: {exc} (try --port / --hub-port / --broker-port)",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("demo stopped; temporary databases removed / デモを終了しました")
    return 0
