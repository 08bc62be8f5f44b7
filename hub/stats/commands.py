"""``madoguchi hub stats rebuild [--site S …]`` (parsers here, added by ``hub/cli.py``).

Progress goes to stderr (a year of the ward is millions of events), the summary to stdout as
one JSON object. Exit 0 done, 2 a site the hub does not know.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any


def _rebuild(args: argparse.Namespace) -> int:
    from hub.stats.rebuild import rebuild
    from hub.store import HubStore

    shown: dict[str, int] = {}

    def progress(site: str, done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if shown.get(site) != pct:
            shown[site] = pct
            print(f"\r{site}: {done:,}/{total:,} events ({pct}%)", end="", file=sys.stderr,
                  flush=True)

    async def go() -> dict[str, Any] | str:
        store = await HubStore.open(args.db)
        try:
            if args.site:
                async with store.read() as tx:
                    known = {r["site"] for r in await tx.sites()}
                unknown = sorted(set(args.site) - known)
                if unknown:
                    return (f"unknown site(s): {', '.join(unknown)} / "
                            f"この拠点のイベントはハブにありません: {', '.join(unknown)}")
            return await rebuild(store, sorted(set(args.site)) if args.site else None, progress)
        finally:
            await store.close()

    result = asyncio.run(go())
    print(file=sys.stderr)
    if isinstance(result, str):
        print(result, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def add_parsers(sub: Any) -> None:
    from hub.cli import DEFAULT_DB

    stats = sub.add_parser("stats", help="statistics rollups (S1-S3)")
    ssub = stats.add_subparsers(dest="stats_cmd", required=True)
    rb = ssub.add_parser("rebuild", help="recount the rollups from the stored events (the live "
                                         "ingest of a site waits while it is rebuilt)")
    rb.add_argument("--site", action="append", help="only this site (repeatable)")
    rb.add_argument("--db", default=DEFAULT_DB, help="database URL (default: %(default)s)")
    rb.set_defaults(func=_rebuild)
