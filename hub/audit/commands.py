"""``madoguchi hub audit verify | export | prune | retention``: the handlers behind hub/cli.py.

Exit codes: 0 done (verify: the chain is intact), 1 the chain is broken (verify, prune),
2 a usage or configuration problem (no keys, a bad date, a period under 3 years).
The keys come from ``MADOGUCHI_HUB_KEYS`` as for the running hub: without them nothing can be
verified or signed, so the commands refuse instead of using a throwaway key.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import os
import sys
from datetime import UTC, datetime, time
from typing import TextIO
from zoneinfo import ZoneInfo

from hub.audit.search import Query, export_csv
from hub.audit.service import (
    DAY,
    AuditError,
    audit_keys,
    prune,
    retention_days,
    set_retention_days,
    verify,
)
from hub.settings import HubSettings, SettingsError, parse_keys
from hub.store.store import HubStore, now_utc

LOCAL = ZoneInfo("Asia/Tokyo")  # dates without an offset are the ward's local dates


class UsageError(ValueError):
    pass


def _settings() -> HubSettings:
    try:
        keys, key_id = parse_keys(os.environ.get("MADOGUCHI_HUB_KEYS", ""))
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if not keys:
        raise UsageError("MADOGUCHI_HUB_KEYS is not set: the audit trail cannot be checked or "
                         "signed without the hub's keys / 鍵が設定されていません")
    return HubSettings(keys=keys, key_id=key_id)


def parse_when(text: str | None) -> datetime | None:
    """``2026-04-01`` (local midnight, Asia/Tokyo) or an ISO date-time (local if no offset)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not a date: {text!r} (use 2026-04-01 or 2026-04-01T09:00+09:00) / "
                         "日付の形式が正しくありません") from None
    if len(text) <= 10:
        value = datetime.combine(value.date(), time(0), LOCAL)
    return (value if value.tzinfo else value.replace(tzinfo=LOCAL)).astimezone(UTC)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (KeyError, OSError):
        return "cli"


async def _with_store(db: str, out: TextIO, action: str, args: argparse.Namespace) -> int:
    settings = _settings()
    store = await HubStore.open(db)
    try:
        keys = audit_keys(settings)
        key, key_id = keys[settings.key_id], settings.key_id
        if action == "verify":
            result = await verify(store, keys)
            if result.ok:
                print(f"ok: {result.rows} rows / 正常: {result.rows} 行", file=out)
                if result.head_id is not None:
                    print(f"head: id {result.head_id} mac {result.head_mac}", file=out)
                return 0
            print(f"broken at row {result.bad_id} ({result.kind}): {result.message_en}", file=out)
            print(f"改ざんを検出: {result.message_ja}", file=out)
            return 1
        if action == "export":
            query = Query(actor=args.actor, action=args.action_filter, target=args.target,
                          since=parse_when(args.since), until=parse_when(args.until))
            async for chunk in export_csv(store, query, actor=_actor(), ip=None, key=key,
                                          key_id=key_id):
                out.write(chunk)
            out.flush()
            return 0
        if action == "prune":
            days = args.older_than_days or await retention_days(store)
            now = now_utc()
            deleted = await prune(store, keys, now - days * DAY, key_id=key_id, actor=_actor(),
                                  now=now)
            print(f"{deleted} rows older than {days} days deleted / "
                  f"{days} 日より古い {deleted} 行を削除しました", file=out)
            return 0
        if args.set is not None:  # retention
            await set_retention_days(store, args.set, actor=_actor(), ip=None, key=key,
                                     key_id=key_id)
        days = await retention_days(store)
        print(f"retention: {days} days / 保存期間: {days} 日", file=out)
        return 0
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    """Entry point for every ``hub audit`` subcommand (``args.action`` names it)."""
    out: TextIO = sys.stdout
    buffer = getattr(sys.stdout, "buffer", None)
    if args.action == "export" and buffer is not None:
        # bytes exactly as written (UTF-8, CRLF rows), whatever the console's encoding
        out = io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        return asyncio.run(_with_store(args.db, out, args.action, args))
    except (UsageError, AuditError) as exc:
        message = exc.message_en + " / " + exc.message_ja if isinstance(exc, AuditError) \
            else str(exc)
        print(message, file=sys.stderr)
        return 1 if isinstance(exc, AuditError) and exc.code == "chain_broken" else 2
    finally:
        if out is not sys.stdout and isinstance(out, io.TextIOWrapper):
            out.flush()
            out.detach()  # leave sys.stdout's buffer open

