"""``madoguchi backup edge|hub`` and ``madoguchi restore edge|hub``; wired in by ``edge.cli``.

Keys come from the environment (the systemd ``EnvironmentFile``), never from the command line:
the edge's ``MADOGUCHI_BACKUP_KEYS``; the hub's ``MADOGUCHI_BACKUP_KEYS`` or, if unset, its
``MADOGUCHI_HUB_KEYS``. Exit status: 0 done, 1 refused or failed (nothing overwritten), 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EDGE_KEYS = ("MADOGUCHI_BACKUP_KEYS",)
HUB_KEYS = ("MADOGUCHI_BACKUP_KEYS", "MADOGUCHI_HUB_KEYS")
DEFAULT_HUB_DB = "sqlite+aiosqlite:///var/hub.db"  # = hub.store.DEFAULT_URL (not imported: lazy)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} B"


def _print_backup(result: Any) -> None:
    m = result.manifest
    what = (f"site {m['site']}: {m['events']:,} events, max seq {m['max_seq']:,}, "
            f"{m['tickets']:,} tickets" if m["kind"] == "edge" else
            f"{m['dialect']}: {len(m['tables'])} tables, "
            f"{sum(m['tables'].values()):,} rows")
    print(f"backup written / バックアップを作成しました: {result.path} ({_size(result.size)}, "
          f"{result.seconds:.2f} s) — {what}")
    for old in result.removed:
        print(f"oldest generation removed / 古い世代を削除: {old.name}")
    if result.copied:
        print(f"copied to the second location by {result.copied} / 二次保管先へ複製しました")


def _fail(exc: Exception) -> int:
    """Our refusals are bilingual already; a database or disk error is said as it is."""
    from edge.backup.errors import BackupError

    said = str(exc) if isinstance(exc, BackupError) else (str(exc) or type(exc).__name__)
    print(said if isinstance(exc, BackupError) else said.splitlines()[0], file=sys.stderr)
    return 1


def _backup_edge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.backup.edge_db import backup_edge
    from edge.backup.errors import BackupError
    from edge.backup.files import load_keys

    try:
        keys, key_id = load_keys(os.environ, *EDGE_KEYS)
        result = backup_edge(Path(args.db), Path(args.to), keys, key_id, keep=args.keep,
                             copy_to=args.copy_to or None)
    except BackupError as exc:
        return _fail(exc)
    _print_backup(result)
    return 0


def _backup_hub(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from edge.backup.errors import BackupError
    from edge.backup.files import load_keys
    from edge.backup.hub_db import backup_hub

    try:
        keys, key_id = load_keys(os.environ, *HUB_KEYS)
        result = asyncio.run(backup_hub(args.db, Path(args.to), keys, key_id,
                                        schema=args.schema, keep=args.keep,
                                        copy_to=args.copy_to or None))
    except (BackupError, OSError, SQLAlchemyError) as exc:
        return _fail(exc)
    _print_backup(result)
    return 0


def _restore_edge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.backup.edge_db import report_restore, restore_edge
    from edge.backup.errors import BackupError
    from edge.backup.files import load_keys
    from edge.config import ConfigError, load_site_config

    try:
        site = args.site or load_site_config(args.config).site
        keys, _ = load_keys(os.environ, *EDGE_KEYS)
        result = restore_edge(Path(args.backup), Path(args.db), site, keys, force=args.force)
    except (BackupError, ConfigError) as exc:
        return _fail(exc)
    print(report_restore(result, Path(args.db)))
    return 0


def _restore_hub(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from edge.backup.errors import BackupError
    from edge.backup.files import load_keys
    from edge.backup.hub_db import report_restore, restore_hub

    try:
        keys, _ = load_keys(os.environ, *HUB_KEYS)
        result, counts = asyncio.run(restore_hub(Path(args.backup), args.db, keys))
    except (BackupError, OSError, SQLAlchemyError) as exc:
        return _fail(exc)
    text, same = report_restore(result, counts)
    print(text)
    return 0 if same else 1


def _generations(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 366:
        raise argparse.ArgumentTypeError("give 1 to 366 generations")
    return value


def _common_backup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", required=True, metavar="FOLDER",
                   help="backup folder (one file per night: <kind>-…-YYYY-MM-DD.mbk)")
    p.add_argument("--keep", type=_generations, default=7,
                   help="generations kept in FOLDER and in the copy (default: %(default)s)")
    p.add_argument("--copy-to", default=os.environ.get("MADOGUCHI_BACKUP_COPY_TO", ""),
                   metavar="TARGET",
                   help="second location: a folder, or an rsync target host:/path (default: "
                        "$MADOGUCHI_BACKUP_COPY_TO; none if unset)")


def add_parsers(sub: Any) -> None:
    """``sub``: the ``madoguchi`` subparsers (argparse's private ``_SubParsersAction``)."""
    backup = sub.add_parser("backup", help="sealed nightly backups of the edge or the hub "
                                           "(7 generations)")
    bsub = backup.add_subparsers(dest="sub", required=True)
    be = bsub.add_parser("edge", help="online backup of the edge's SQLite (while it runs)")
    be.add_argument("--db", default="var/edge.db", help="edge database (default: %(default)s)")
    _common_backup(be)
    be.set_defaults(func=_backup_edge)
    bh = bsub.add_parser("hub", help="pg_dump of the hub's PostgreSQL (or its SQLite)")
    bh.add_argument("--db", default=DEFAULT_HUB_DB, help="hub database URL (default: "
                                                         "%(default)s)")
    bh.add_argument("--schema", default=None,
                    help="PostgreSQL schema the hub's tables are in (default: the whole "
                         "database, row counts of public)")
    _common_backup(bh)
    bh.set_defaults(func=_backup_hub)

    restore = sub.add_parser("restore", help="restore a backup (refuses damaged or foreign "
                                             "files)")
    rsub = restore.add_subparsers(dest="sub", required=True)
    re_ = rsub.add_parser("edge", help="restore the edge's database (stop the edge first); the "
                                       "replaced file is kept beside it")
    re_.add_argument("backup", help="the .mbk file")
    re_.add_argument("--db", default="var/edge.db", help="edge database (default: %(default)s)")
    re_.add_argument("--config", default="sites/nerima-main.toml",
                     help="this site's TOML: the backup must be of this site "
                          "(default: %(default)s)")
    re_.add_argument("--site", default=None, help="the site id instead of --config")
    re_.add_argument("--force", action="store_true",
                     help="restore although the database's -wal file holds data (kept aside)")
    re_.set_defaults(func=_restore_edge)
    rh = rsub.add_parser("hub", help="restore the hub into an EMPTY database, then compare "
                                     "row counts with the backup")
    rh.add_argument("backup", help="the .mbk file")
    rh.add_argument("--db", required=True, help="the empty database's URL")
    rh.set_defaults(func=_restore_hub)
