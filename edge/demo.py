"""``madoguchi demo``: three simulated sites syncing to a hub over an embedded broker.

A busy main office and two quieter branches, each with arrivals and operators, their screens
and simulated devices; the embedded amqtt broker and the hub (SQLite) in the same process;
a live summary in the terminal.

Simulated visitors and operators go through the same writer as the HTTP API, so the demo shows
the real engine; ``--speed`` compresses the service's handling times and arrival gaps. The sites
and the hub share one clock: the real one, or a simulated one from ``--at`` (see ``demo_clock``).

Modules: ``demo_clock`` (``--at``, the simulated clock), ``demo_banner`` (URLs, PINs, counters),
``demo_screen`` (the terminal), ``demo_mail`` (the notice sink at ``/demo/mail`` on the hub),
``demo_ward`` and ``demo_ward_plan`` (``--ward``: every site of the ward, lighter traffic),
``demo_notices`` (online notices: a test PKI to sign with, a sent and a draft notice).

Staff pages on the hub need a sign-in (deny by default): the demo makes a ward-staff account
``demo`` (also notice staff of every department) with a password new on every run, printed
in the banner, in the hub's temporary database; the live summary reads ``/api/sites`` with a
session of that account. Administrators must enrol TOTP at their first sign-in, which a demo
should not ask of a newcomer, so the demo makes none; a real hub's first administrator
comes from ``madoguchi hub admin create``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge import demo_forms, demo_mail, demo_notices
from edge.app import SyncOptions, build_edge, start_edge
from edge.config import ConfigError, load_site_config
from edge.demo_banner import DemoSite, banner, split_counters, with_status_url
from edge.demo_clock import TZ, AtError, banner_lines, choose
from edge.demo_screen import HubPoll, Terminal, run_screen
from edge.domain import commands as c
from edge.domain.clock import Clock, SimulatedClock, SystemClock
from edge.domain.model import SiteConfig
from edge.paths import data_dir
from edge.store.writer import Writer
from hub.settings import HubSettings
from hub.store.store import use_clock

if TYPE_CHECKING:
    from aiohttp import web

    from edge.embedded_broker import EmbeddedBroker
    from hub.app import Hub

ABSENT_P = 0.05
TRANSFER_P = 0.6  # of first-stage visitors of a service that has a second-stage queue


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


SITES = (("nerima-main.toml", 1.0), ("hikarigaoka.toml", 0.35), ("oizumi.toml", 0.25))


DEMO_LOGIN = "demo"


def demo_password() -> str:
    """A new password for the demo account on every run (the hub's database is temporary too),
    so a demo started with ``--host 0.0.0.0`` opens no known account to the network."""
    return f"demo-{secrets.token_hex(4)}"


async def _demo_staff(hub: Hub, settings: HubSettings) -> tuple[tuple[str, str], HubPoll]:
    """The demo's ward-staff account ((login, password) for the banner) and the hub poll of the
    live summary, signed in as that account."""
    from hub.auth import service

    password = demo_password()
    await service.create_staff(hub.store, DEMO_LOGIN, password, name="デモ職員 demo staff",
                               grants=[("*", "ward_staff"), ("*", "notice_staff"),
                                       ("*", "form_staff")])

    async def sign_in() -> str | None:
        result = await service.login(hub.store, settings, DEMO_LOGIN, password, "127.0.0.1")
        return result.sid if result.outcome == "ok" else None

    await _demo_reservations(hub)
    return (DEMO_LOGIN, password), HubPoll(hub.url, sign_in)


async def _demo_reservations(hub: Hub) -> None:
    """Reservation IDs of the banner, and My Number card pick-up slots at the main office for
    the weeks a resident can book now (from 4 to 40 days ahead, weekdays 9:00-12:00)."""
    import datetime as _dt

    from edge.demo_banner import DEMO_RESERVATION_IDS
    from edge.domain.calendar import Calendar
    from hub.reservations.booking import add_slots
    from hub.reservations.imports import import_ids
    from hub.reservations.slots import Pattern, rows
    from hub.reservations.window import TOKYO
    from hub.store.store import now_utc

    now = now_utc()
    body = "予約ID,区民事務所コード\n" + "".join(f"{r},0001\n" for r in DEMO_RESERVATION_IDS)
    await import_ids(hub.store, body.encode("utf-8"), now)
    today = now.astimezone(TOKYO).date()
    await add_slots(hub.store, rows(Pattern(
        "0001", "nerima-main", "M", "mycard", today + _dt.timedelta(days=4),
        today + _dt.timedelta(days=40), frozenset(range(5)), _dt.time(9, 0), _dt.time(12, 0),
        30, 2, now), Calendar(), "0001"))


async def _demo_history(hub: Hub, sites: list[DemoSite], clock: Clock) -> None:
    """Eight weeks of made-up past days in the statistics (``edge.demo_history``)."""
    from edge.demo_history import seed_history
    from hub.web.residents.pages import QUIET

    await seed_history(hub.store, [str(s.edge.config.extra["toml"]) for s in sites],
                       clock.now().date())
    await hub.runner.app[QUIET].refresh()  # the status page's quiet hours, now, not in 5 min


def _hub_settings(public_url: str, main_site: str = "nerima-main") -> HubSettings:
    """The environment's settings with the demo's own hub as the base of links; a key for this
    process only when none is set (contacts need not outlive the demo); ``main_site``: listed
    first on the status page unless the environment names one ("": none, the ward demo)."""
    env = dict(os.environ)
    if not env.get("MADOGUCHI_HUB_KEYS"):
        env["MADOGUCHI_HUB_KEYS"] = "demo:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if main_site:  # the main office, listed first ("": every office in id order)
        env.setdefault("MADOGUCHI_MAIN_SITE", main_site)
    return replace(HubSettings.from_env(env), public_url=public_url)


async def start_broker_and_hub(args: argparse.Namespace, workdir: Path, clock: Clock,
                               main_site: str = "nerima-main"
                               ) -> tuple[EmbeddedBroker, Hub, HubSettings]:
    """The embedded broker and the hub (SQLite, the demo's clock and mail sink, the notices'
    test PKI, stopped with the hub's app) of a demo; the broker and the PKI are stopped again
    when the hub cannot start."""
    from edge.embedded_broker import start_embedded_broker
    from hub.app import start_hub

    box, senders = demo_mail.sink(clock.now)
    pki = await demo_notices.start_pki(workdir)  # before the hub: the module reads it at setup
    scanner = await asyncio.to_thread(demo_forms.start_scanner, workdir)  # the same for forms
    try:
        payments = await demo_forms.start_payments()  # and the forms' test payment provider
    except BaseException:
        pki.stop()
        scanner.stop()
        raise
    try:
        broker = await start_embedded_broker("127.0.0.1", args.broker_port)
    except BaseException:
        pki.stop()
        scanner.stop()
        await payments.stop()
        raise

    def extra_routes(app: web.Application) -> None:
        demo_mail.add_mail_routes(app, box)
        demo_notices.stop_with(app, pki)
        demo_forms.stop_with(app, scanner, payments)

    settings = _hub_settings(f"http://{args.host}:{args.hub_port}", main_site=main_site)
    try:
        hub = await start_hub(f"sqlite:///{workdir / 'hub.db'}",
                              f"mqtt://hub@127.0.0.1:{broker.port}/?protocol=3.1.1",
                              port=args.hub_port, host=args.host, settings=settings,
                              senders=senders, clock=clock.now,
                              extra_routes=extra_routes)
    except BaseException:
        await broker.stop()
        pki.stop()
        scanner.stop()
        await payments.stop()
        raise
    return broker, hub, settings


async def _main(args: argparse.Namespace, sites: list[DemoSite], workdir: Path,
                clock: Clock, clock_lines: list[str]) -> None:
    """Broker, hub, then the sites; each site's traffic; the screen; everything stopped on exit."""

    broker, hub, settings = await start_broker_and_hub(args, workdir, clock)
    runners = []
    tasks: list[asyncio.Task[None]] = []
    try:
        staff, poll = await _demo_staff(hub, settings)
        notices = await demo_notices.seed(hub, workdir, DEMO_LOGIN)
        forms = await demo_forms.seed(hub, await demo_notices.staff_id(hub, DEMO_LOGIN))
        for site in sites:
            runners.append(await start_edge(site.edge, args.host, site.port))
            await hub.set_config(site.edge.config.site, str(site.edge.config.extra["toml"]),
                                 "demo")
        await _demo_history(hub, sites, clock)
        main = sites[0].edge
        tickets = (str(main.devices.preview_dir.parent) if main.devices is not None
                   and main.devices.preview_dir is not None else None)
        term = Terminal(banner(sites, hub.url, broker.port, clock_lines, tickets, staff,
                               notices=str(notices.samples), forms=forms.published,
                               fee_form=forms.with_fee),
                        live=not args.no_screen and sys.stdout.isatty())
        rng = random.Random(7)
        for site in sites:
            tasks.append(asyncio.create_task(
                visitors(site.edge.writer, args.speed * site.load, rng)))
            tasks += [asyncio.create_task(operator(site.edge.writer, cid, args.speed, rng))
                      for cid in site.simulated]
        try:
            await run_screen(term, [s.edge for s in sites], poll, args.duration)
        finally:
            term.stop()
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


def _paths(args: argparse.Namespace) -> list[Path]:
    return [Path(args.config)] + [data_dir("sites") / name for name, _ in SITES[1:]]


def _load(args: argparse.Namespace, configs: list[SiteConfig], sync: SyncOptions,
          workdir: Path, tickets: Path, clock: Clock) -> list[DemoSite]:
    """The three sites, their QRs pointing at the demo's hub."""
    status_url = f"http://{args.host}:{args.hub_port}/t/{{token}}"
    sites: list[DemoSite] = []
    for i, (path, loaded) in enumerate(zip(_paths(args), configs, strict=True)):
        config = replace(loaded, status_url=status_url)
        config.extra["toml"] = with_status_url(path.read_text(encoding="utf-8"), status_url)
        config = _demo_voice(config, tickets.parent / "voice" if args.voice else None)
        db = Path(args.db) if (args.db and i == 0) else workdir / f"{config.site}.db"
        edge = build_edge(config, db, clock, preview_dir=tickets / config.site,
                          sync=replace(sync, username=f"site-{config.site}"))
        port = args.port + i if args.port else _free_port()
        simulated, closed, user = split_counters(config)
        sites.append(DemoSite(edge, f"http://{args.host}:{port}/", SITES[i][1], simulated,
                              closed, user, port))
    return sites


def run_demo(args: argparse.Namespace) -> int:
    # "Ctrl-C stops everything", also when started from a script as a background job, whose
    # SIGINT the shell set to ignored (then asyncio would not stop on it, and the demo would
    # only stop by SIGKILL, leaving its temporary databases behind)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if getattr(args, "ward", None) is not None:  # every site of the ward (``demo_ward``)
        from edge.demo_ward import run_ward_demo

        return run_ward_demo(args)
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-demo-"))
    tickets = Path(args.tickets).resolve()
    args.broker_port = args.broker_port or _free_port()
    args.hub_port = args.hub_port or _free_port()
    try:
        configs = [load_site_config(path) for path in _paths(args)]
        choice = choose(args.at, configs, datetime.now(TZ))
    except (ConfigError, AtError) as exc:
        print(exc, file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 2
    print("madoguchi demo: 起動中… starting the broker, the hub and three offices…", flush=True)
    clock: Clock = SystemClock() if choice.start is None else SimulatedClock(choice.start)
    sync = SyncOptions(f"mqtt://127.0.0.1:{args.broker_port}", mqtt5=False,
                       now=lambda: clock.now().astimezone(UTC))
    sites = _load(args, configs, sync, workdir, tickets, clock)
    try:
        asyncio.run(_main(args, sites, workdir, clock, banner_lines(choice)))
    except KeyboardInterrupt:
        print("\nstopped / 終了しました")
    except OSError as exc:
        print(f"cannot start the demo: {exc} (try --port / --hub-port / --broker-port)",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("demo stopped; temporary databases and demo mail removed / デモを終了しました",
          flush=True)
    return 0
