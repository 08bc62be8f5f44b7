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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madoguchi", description="Ward office counter queue system")
    sub = p.add_subparsers(dest="command", required=True)

    cc = sub.add_parser("config", help="site configuration").add_subparsers(dest="sub", required=True)
    chk = cc.add_parser("check", help="validate site TOML files")
    chk.add_argument("files", nargs="+")
    chk.set_defaults(func=_config_check)
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
