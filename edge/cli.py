"""The one CLI, ``madoguchi``. Subcommands import their modules lazily so ``--help`` is instant."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _config_check(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_site_config

    status = 0
    for path in args.files:
        try:
            cfg = load_site_config(path)
        except ConfigError as exc:
            print(f"{exc}", file=sys.stderr)
            status = 1
        else:
            print(f"{path}: ok — {len(cfg.services)} services, {len(cfg.counters)} counters")
    return status


def _edge_run(args: argparse.Namespace) -> int:
    """TLS files and addresses are checked before the database or any port is opened."""
    import os

    from edge.app import (
        RETENTION_DAYS,
        EdgeStartError,
        SyncOptions,
        listen_hosts,
        run_edge,
        server_tls,
    )

    _logging(args.verbose)
    cert = args.tls_cert or os.environ.get("MADOGUCHI_EDGE_TLS_CERT") or None
    key = args.tls_key or os.environ.get("MADOGUCHI_EDGE_TLS_KEY") or None
    hosts = args.host or [os.environ.get("MADOGUCHI_EDGE_HOST") or "0.0.0.0"]
    try:
        if (cert is None) != (key is None):
            raise EdgeStartError("give both --tls-cert and --tls-key (or neither)",
                                 "--tls-cert と --tls-key は両方指定してください（または両方なし）")
        tls = None if cert is None or key is None else server_tls(cert, key)
        retention = args.retention_days or int(
            os.environ.get("MADOGUCHI_EDGE_RETENTION_DAYS") or RETENTION_DAYS)
        run_edge(args.config, args.db, listen_hosts(hosts), args.port,
                 SyncOptions.from_env(args.mqtt), tls, retention)
    except EdgeStartError as exc:
        print(f"error: {exc.message}\nエラー: {exc.message_ja}", file=sys.stderr)
        return 2
    return 0


def _positive_days(text: str) -> int:
    if not text.isdigit() or not 30 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give whole days, 30 to 3650 / 30〜3650 の日数で指定してください")
    return int(text)


def _edge_rebuild(args: argparse.Namespace) -> int:
    """Recompute projections from the event log and say whether they matched the live ones."""
    import time

    from edge.config import load_site_config
    from edge.store.store import EventStore

    config = load_site_config(args.config)
    store = EventStore(args.db, config.site)
    before = store.dump_projections()
    t0 = time.perf_counter()
    state = store.rebuild(config)
    took = time.perf_counter() - t0
    same = before == store.dump_projections()
    print(f"rebuilt {store.last_seq()} events in {took:.2f} s; "
          f"projections {'unchanged' if same else 'DIFFERED and were replaced'}")
    snaps = store.verify_snapshots(config)
    bad = [seq for seq, ok in snaps if not ok]
    if bad:
        store.replace_snapshots(state)
    print(f"snapshots: {len(snaps)} checked against the log; "
          + (f"DIFFERED at seq {', '.join(map(str, bad))} and were replaced by one at seq "
             f"{state.seq}" if bad else "all equal"))
    store.close()
    return 0 if same and not bad else 1


def _demo(args: argparse.Namespace) -> int:
    from edge.demo import run_demo

    _logging(args.verbose)
    return run_demo(args)


def _bench(args: argparse.Namespace) -> int:
    from edge.bench import run_bench

    status: int = run_bench(args)
    return status


def _bench_sync(args: argparse.Namespace) -> int:
    """``bench sync``: its ``--ward`` folder reaches the ward run (``edge.bench.ward``)."""
    from edge.bench.ward import ward_folder

    with ward_folder(args.ward):
        return _bench(args)


def _profiles_check(args: argparse.Namespace) -> int:
    from edge.devices.profiles_cli import cli_check

    return cli_check(args)


def _ticket_render(args: argparse.Namespace) -> int:
    from edge.devices.printer.render_cli import run

    return run(args)


def _doctor(args: argparse.Namespace) -> int:
    from edge.devices.doctor import run

    return run(args)


def _pin_hash(args: argparse.Namespace) -> int:
    import getpass

    from edge.web.auth import hash_pin

    pin = getpass.getpass("PIN (4-12 digits) / 暗証番号: ") if args.pin is None else args.pin
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        print("a PIN is 4 to 12 digits / 暗証番号は4〜12桁の数字です", file=sys.stderr)
        return 2
    print(hash_pin(pin))
    return 0


def _logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # their INFO lines (amqtt's state machine, Alembic's plugins) tell no operator
        for name in ("transitions", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _probe_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 60:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("give 0.1 to 60 seconds")
    return value


def _site_arg(p: argparse.ArgumentParser) -> None:
    from edge.paths import data_dir

    try:
        default = str(data_dir("sites") / "nerima-main.toml")
    except FileNotFoundError:
        default = "sites/nerima-main.toml"
    p.add_argument("--config", default=default, help="site TOML (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madoguchi", description="Ward office counter queue system")
    sub = p.add_subparsers(dest="command", required=True)

    cfg = sub.add_parser("config", help="site configuration")
    cc = cfg.add_subparsers(dest="sub", required=True)
    chk = cc.add_parser("check", help="validate site TOML files")
    chk.add_argument("files", nargs="+")
    chk.set_defaults(func=_config_check)

    edge = sub.add_parser("edge", help="the site daemon").add_subparsers(dest="sub", required=True)
    run = edge.add_parser("run", help="run the edge daemon (HTTP API, websocket)")
    _site_arg(run)
    run.add_argument("--db", default="var/edge.db", help="SQLite file (default: %(default)s)")
    run.add_argument("--host", action="append", default=None, metavar="ADDRESS",
                     help="listen only on this address (repeatable, or comma-separated, e.g. "
                          "192.168.10.5,127.0.0.1; default: $MADOGUCHI_EDGE_HOST, else every "
                          "address 0.0.0.0)")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--tls-cert", default=None, metavar="FILE",
                     help="serve HTTPS (TLS 1.2+) with this certificate, PEM (default: "
                          "$MADOGUCHI_EDGE_TLS_CERT; made by `madoguchi provision site "
                          "--edge-name`)")
    run.add_argument("--tls-key", default=None, metavar="FILE",
                     help="its private key, PEM (default: $MADOGUCHI_EDGE_TLS_KEY)")
    run.add_argument("--mqtt", default=None,
                     help="sync to the hub through this broker, mqtt[s]://host:port (default: "
                          "$MADOGUCHI_MQTT_URL; credentials from $MADOGUCHI_MQTT_USERNAME/"
                          "_PASSWORD, as written by `madoguchi provision site`)")
    run.add_argument("--retention-days", type=_positive_days, default=None, metavar="DAYS",
                     help="archive events older than this, once the hub has them, out of the "
                          "live database (default: $MADOGUCHI_EDGE_RETENTION_DAYS, else 400)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_edge_run)
    reb = edge.add_parser("rebuild", help="rebuild projections from the event log and compare")
    _site_arg(reb)
    reb.add_argument("--db", default="var/edge.db")
    reb.set_defaults(func=_edge_rebuild)

    demo = sub.add_parser("demo", help="three simulated sites, a hub and a broker, with traffic")
    _site_arg(demo)
    demo.add_argument("--port", type=int, default=8080,
                      help="first site's port, the others follow (0: free ports)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--db", default=None, help="SQLite file (default: a fresh temp file)")
    demo.add_argument("--speed", type=float, default=20.0,
                      help="simulated minutes per real minute (default: %(default)s)")
    demo.add_argument("--duration", type=float, default=None,
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--no-screen", action="store_true", help="log lines instead of a live screen")
    demo.add_argument("--hub-port", type=int, default=8090,
                      help="hub web port (default: %(default)s; 0: a free one)")
    demo.add_argument("--at", default=None, metavar="HH:MM|YYYY-MM-DDTHH:MM|now",
                      help="run sites and hub on a simulated Tokyo clock from this time "
                           "(default: the real time if the offices are open, else 10:30 on the "
                           "next day they are)")
    demo.add_argument("--broker-port", type=int, default=0,
                      help="embedded MQTT broker port (default: a free one)")
    demo.add_argument("--tickets", default="madoguchi-demo/tickets",
                      help="folder for PNG previews of printed tickets (default: %(default)s)")
    demo.add_argument("--voice", action="store_true",
                      help="render spoken calls to WAV files next to the tickets folder")
    demo.add_argument("--ward", nargs="?", const="", default=None, metavar="FOLDER",
                      help="every site of the ward instead: the *.toml of FOLDER (default "
                           "folder: sites/ward) as simulated edges with lighter traffic (at most "
                           "3 counters per site, no voice, no ticket previews; --config, --db, "
                           "--tickets and --voice are not used); prints its CPU and memory cost")
    demo.add_argument("-v", "--verbose", action="store_true")
    demo.set_defaults(func=_demo)

    pin = sub.add_parser("pin", help="operator PINs").add_subparsers(dest="sub", required=True)
    ph = pin.add_parser("hash", help="print the hash to put in [[counters]] pin = \"…\"")
    ph.add_argument("--pin", default=None, help="the PIN (default: ask without echo)")
    ph.set_defaults(func=_pin_hash)

    prof = sub.add_parser("profiles", help="hardware profiles (firmware-profiles/)")
    psub = prof.add_subparsers(dest="sub", required=True)
    pchk = psub.add_parser("check", help="validate the YAML profiles and collate them into JSON")
    pchk.add_argument("--dir", default=None, help="profiles folder (default: the shipped one)")
    pchk.add_argument("--out", default=None, help="write the collated JSON here")
    pchk.set_defaults(func=_profiles_check)

    ticket = sub.add_parser("ticket", help="tickets").add_subparsers(dest="sub", required=True)
    tr = ticket.add_parser("render", help="write the exact bytes a printer would get")
    tr.add_argument("--profile", required=True, help="printer profile id, e.g. epson-tm-t88vi")
    tr.add_argument("--service", required=True, help="service code from the site config")
    tr.add_argument("--number", type=int, required=True)
    tr.add_argument("--lang", default="ja", choices=["ja", "en", "zh", "ko"])
    tr.add_argument("--ahead", type=int, default=0, help="people ahead (default: %(default)s)")
    tr.add_argument("--out", required=True, help="the .bin file to write")
    tr.add_argument("--png", default=None, help="also write a preview image")
    _site_arg(tr)
    tr.set_defaults(func=_ticket_render)

    doc = sub.add_parser("doctor", help="configured and detected devices, and their state")
    _site_arg(doc)
    doc.add_argument("--db", default=None,
                     help="the edge's database: check the configuration it applied from the "
                          "hub (after a device swap in the settings editor), if it has one")
    doc.add_argument("--json", action="store_true", help="print JSON instead of a table")
    doc.add_argument("--probe-s", type=_probe_seconds, default=3.0,
                     help="how long to wait for devices to answer (default: %(default)s)")
    doc.set_defaults(func=_doctor)

    from edge.backup import add_parsers as add_backup_parsers
    from edge.manuals import add_parsers as add_manuals_parsers
    from edge.provision import add_parsers as add_provision_parsers
    from hub.cli import add_parsers as add_hub_parsers

    add_provision_parsers(sub)
    add_hub_parsers(sub)
    add_backup_parsers(sub)
    add_manuals_parsers(sub)

    bench = sub.add_parser("bench", help="benchmarks; print one JSON object")
    bsub = bench.add_subparsers(dest="sub", required=True)
    be = bsub.add_parser("edge", help="edge: issue latency, throughput, rebuild, memory")
    be.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    be.add_argument("--out", default=None, help="also write the JSON here")
    be.add_argument("--five-years", action="store_true",
                    help="also start-up and online backup on a generated five-year log of a "
                         "busy site (about 10 million events; several minutes, GBs of disk)")
    be.add_argument("--history-db", default=None, metavar="PATH",
                    help="keep that five-year log here and reuse it on later runs (each run "
                         "works on a copy)")
    be.set_defaults(func=_bench)
    bd = bsub.add_parser("devices", help="ticket rendering, call -> display, call -> audio")
    bd.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    bd.add_argument("--out", default=None, help="also write the JSON here")
    bd.set_defaults(func=_bench)
    bs = bsub.add_parser("screens", help="call -> guide monitor, kiosk tap -> number (Chromium)")
    bs.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    bs.add_argument("--out", default=None, help="also write the JSON here")
    bs.set_defaults(func=_bench)
    bsy = bsub.add_parser("sync", help="edge event -> hub API latency, backlog replay, "
                                       "hub ingest rate (mosquitto, PostgreSQL)")
    bsy.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    bsy.add_argument("--out", default=None, help="also write the JSON here")
    bsy.add_argument("--pg", default=None, help="PostgreSQL URL for the hub (a schema is made "
                                                "and dropped; default: the local test database)")
    bsy.add_argument("--ward", default=None, metavar="FOLDER",
                     help="the ward's site TOMLs for the ward18_* run (default: sites/ward)")
    bsy.set_defaults(func=_bench_sync)
    bh = bsub.add_parser("hub", help="status JSON req/s (wrk), live fan-out to 5,000 streams, "
                                     "web ticket round trip, 50 staff sign-ins at once "
                                     "(mosquitto, PostgreSQL)")
    bh.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    bh.add_argument("--out", default=None, help="also write the JSON here")
    bh.add_argument("--pg", default=None, help="PostgreSQL URL for the hub (a schema is made "
                                               "and dropped; default: the local test database)")
    bh.set_defaults(func=_bench)
    br = bsub.add_parser("reservations", help="release rush: booking attempts at the publish "
                                              "moment, overbooking, the ○/△/× page req/s "
                                              "(mosquitto, PostgreSQL)")
    br.add_argument("--quick", action="store_true", help="short run (500 attempts)")
    br.add_argument("--out", default=None, help="also write the JSON here")
    br.add_argument("--pg", default=None, help="PostgreSQL URL for the hub (a schema is made "
                                               "and dropped; default: the local test database)")
    br.set_defaults(func=_bench)
    bst = bsub.add_parser("stats", help="a fiscal year of the ward (18 sites, 1.5 million "
                                        "tickets): rollup rebuild, fiscal-year reports, CSV "
                                        "export, ingest with rollups, wait estimates "
                                        "(mosquitto, PostgreSQL)")
    bst.add_argument("--quick", action="store_true",
                     help="short run (2 sites x 3 days instead of the year)")
    bst.add_argument("--out", default=None, help="also write the JSON here")
    bst.add_argument("--pg", default=None, help="PostgreSQL URL for the hub (schemas are made "
                                                "and dropped; default: the local test database)")
    bst.set_defaults(func=_bench)
    bn = bsub.add_parser("notices", help="online notices: split a 1,000-page PDF, sign 500 PDFs "
                                         "(PAdES B-LT, local TSA), send 5,000 mails (aiosmtpd), "
                                         "100 residents downloading from the portal")
    bn.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    bn.add_argument("--out", default=None, help="also write the JSON here")
    bn.add_argument("--pg", default=None, help="PostgreSQL URL for the hub (a schema is made "
                                               "and dropped; default: SQLite in a temporary "
                                               "folder)")
    bn.set_defaults(func=_bench)
    bf = bsub.add_parser("forms", help="online forms: 200 residents submit a 10-field form with "
                                       "a 1 MB PDF scanned by clamd at once; 200 readers of a "
                                       "form page")
    bf.add_argument("--quick", action="store_true", help="short run (40 residents)")
    bf.add_argument("--out", default=None, help="also write the JSON here")
    bf.add_argument("--pg", default=None, help="PostgreSQL URL for the hub (a schema is made "
                                               "and dropped; default: SQLite in a temporary "
                                               "folder)")
    bf.add_argument("--clamd", default=None, metavar="ADDRESS",
                    help="scan with this clamd (host:port or a socket path; default: a private "
                         "clamd with a one-signature database)")
    bf.set_defaults(func=_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Handler = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
