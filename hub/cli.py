"""``madoguchi hub run`` and ``madoguchi hub config set``; wired in by ``edge.cli``.

Modules load lazily inside the handlers so that ``madoguchi --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_DB = "sqlite+aiosqlite:///var/hub.db"  # = hub.store.DEFAULT_URL (not imported: lazy)
DEFAULT_MQTT = "mqtt://127.0.0.1:1883"
DEFAULT_PREFIX = "madoguchi/v1"


def _logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run(args: argparse.Namespace) -> int:
    from hub.app import run_hub

    _logging(args.verbose)
    mqtt = None if args.no_mqtt else args.mqtt
    return run_hub(args.db, mqtt, args.prefix, args.port, args.host)


def _config_set(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from edge.config import ConfigError
    from hub.configs import check_config, publish_config, store_config
    from hub.store import HubStore

    path = Path(args.file)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"{path}: not UTF-8 / UTF-8ではありません", file=sys.stderr)
        return 2
    try:
        check_config(args.site, text, str(path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1

    async def save() -> tuple[int, str]:
        import getpass

        from hub.audit.service import audit_key, record
        from hub.settings import HubSettings

        store = await HubStore.open(args.db)
        try:
            version, body = await store_config(store, args.site, text, str(path))
            key, key_id = audit_key(HubSettings.from_env())
            # a setting change is an audited action (A3), also from the command line
            await record(store, actor=f"cli:{getpass.getuser()}", action="setting_changed",
                         target=args.site, detail={"version": version, "file": path.name},
                         key=key, key_id=key_id)
            return version, body
        finally:
            await store.close()

    version, body = asyncio.run(save())
    print(f"{args.site}: config v{version} stored / 設定 v{version} を保存しました")
    if args.mqtt:
        if not publish_config(args.mqtt, args.site, version, body, args.prefix):
            print("not published now; a running hub publishes it within seconds / "
                  "今は配信できませんでした。稼働中のハブが数秒以内に配信します", file=sys.stderr)
            return 3
        print(f"published retained to {args.mqtt} / 配信しました")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from hub.notify.subscriptions import rotate
    from hub.settings import SettingsError, parse_keys
    from hub.store import HubStore

    try:
        keys, key_id = parse_keys(os.environ.get("MADOGUCHI_HUB_KEYS", ""))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not keys:
        print("MADOGUCHI_HUB_KEYS is not set: nothing to rotate to / 鍵が設定されていません",
              file=sys.stderr)
        return 2

    async def run() -> tuple[int, int, int, int]:
        from hub.notices.context import NoticeSettings, default_files_dir
        from hub.notices.files import FileStore
        from hub.notices.rotate import rotate as rotate_notices

        store = await HubStore.open(args.db)
        try:
            done, lost = await rotate(store, keys, key_id)
            folder = NoticeSettings.from_env(default_dir=default_files_dir(store)).files_dir
            files = FileStore(folder, keys, key_id) if folder.is_dir() else None
            n_done, n_lost = await rotate_notices(store, keys, key_id, files)
            return done, lost, n_done, n_lost
        finally:
            await store.close()

    done, lost, n_done, n_lost = asyncio.run(run())
    print(f"{done} contacts re-encrypted with key {key_id!r} / {done} 件を再暗号化しました"
          + (f"; {lost} unreadable (key gone) erased / 読めない {lost} 件を消去しました"
             if lost else ""))
    print(f"notices: {n_done} values and files re-encrypted"
          f" / オンライン通知 {n_done} 件を再暗号化しました"
          + (f"; {n_lost} unreadable (key gone) / 読めない {n_lost} 件" if n_lost else ""))
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add ``hub run`` and ``hub config set`` to the ``madoguchi`` subcommands."""
    hub = subparsers.add_parser("hub", help="the central hub service")
    sub = hub.add_subparsers(dest="sub", required=True)

    run = sub.add_parser("run", help="run the hub (MQTT ingest, JSON API, staff pages)")
    run.add_argument("--db", default=DEFAULT_DB,
                     help="database URL: sqlite:///FILE or postgresql://… (default: %(default)s)")
    run.add_argument("--mqtt", default=DEFAULT_MQTT,
                     help="broker URL, mqtt[s]://user:pass@host:port[?protocol=3.1.1] "
                          "(default: %(default)s)")
    run.add_argument("--no-mqtt", action="store_true", help="web only, no ingest")
    run.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix (default: %(default)s)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8090)
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    cfg = sub.add_parser("config", help="site configurations held by the hub")
    csub = cfg.add_subparsers(dest="action", required=True)
    cs = csub.add_parser("set", help="validate a site TOML, store it as the next version, "
                                     "and publish it (retained)")
    cs.add_argument("site", help="site id, as in the TOML's [site] id")
    cs.add_argument("file", help="the site TOML file")
    cs.add_argument("--db", default=DEFAULT_DB, help="database URL (default: %(default)s)")
    cs.add_argument("--mqtt", default=None,
                    help="also publish now through this broker (default: leave it to the hub)")
    cs.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix (default: %(default)s)")
    cs.set_defaults(func=_config_set)

    keys = sub.add_parser("keys", help="encryption keys of residents' contacts")
    ksub = keys.add_subparsers(dest="action", required=True)
    kr = ksub.add_parser("rotate", help="re-encrypt every live contact with the current key "
                                        "(the first of MADOGUCHI_HUB_KEYS); then old keys can go")
    kr.add_argument("--db", default=DEFAULT_DB, help="database URL (default: %(default)s)")
    kr.set_defaults(func=_keys_rotate)
    _add_audit_parsers(sub)
    _add_admin_parsers(sub)
    from hub.reservations.commands import add_parsers as add_reservation_parsers

    add_reservation_parsers(sub)
    from hub.stats.commands import add_parsers as add_stats_parsers

    add_stats_parsers(sub)


def _audit(args: argparse.Namespace) -> int:
    from hub.audit.commands import run

    return run(args)


def _add_audit_parsers(sub: Any) -> None:
    """``hub audit verify | export | prune | retention`` (handlers in hub.audit.commands)."""
    audit = sub.add_parser("audit", help="the audit trail (A3): verify, export, prune")
    asub = audit.add_subparsers(dest="action", required=True)
    v = asub.add_parser("verify", help="check the hash chain; name the first altered, removed "
                                       "or reordered row (exit 1)")
    e = asub.add_parser("export", help="CSV (UTF-8 with BOM, for Excel) to stdout; the export "
                                       "is itself audited")
    e.add_argument("--since", help="from this date/time (2026-04-01: local midnight, JST)")
    e.add_argument("--until", help="before this date/time")
    e.add_argument("--actor", help="only this staff id")
    e.add_argument("--action", dest="action_filter", help="only this action code, e.g. login")
    e.add_argument("--target", help="only this target")
    p = asub.add_parser("prune", help="delete rows past the retention period (at least 3 "
                                      "years), keeping the chain verifiable")
    p.add_argument("--older-than-days", type=int, default=None,
                   help="override the stored retention period (still at least 1096 days)")
    r = asub.add_parser("retention", help="show or set the retention period in days")
    r.add_argument("--set", type=int, default=None, metavar="DAYS",
                   help="keep rows this many days (1096-3653)")
    for cmd in (v, e, p, r):
        cmd.add_argument("--db", default=DEFAULT_DB, help="database URL (default: %(default)s)")
        cmd.set_defaults(func=_audit)


def _admin_create(args: argparse.Namespace) -> int:
    """Create a ward administrator (the first one, typically); MFA enrolment follows at the
    first sign-in. The password is read without echo (twice) or from stdin, never from argv."""
    import asyncio
    import getpass

    from hub.auth.service import AccountError, audit, create_staff
    from hub.settings import HubSettings, SettingsError
    from hub.store import HubStore

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password / パスワード: ")
        if getpass.getpass("again / もう一度: ") != password:
            print("the passwords differ / パスワードが一致しません", file=sys.stderr)
            return 2
    try:
        settings = HubSettings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def run() -> str:
        store = await HubStore.open(args.db)
        try:
            staff_id = await create_staff(store, args.login, password, args.name or "",
                                          grants=[("*", "admin")])
            await audit(store, settings, actor="system", action="account_created",
                        target=staff_id, detail={"via": "cli", "role": "admin"})
            return staff_id
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except AccountError as exc:
        print(f"{exc} / 作成できませんでした", file=sys.stderr)
        return 1
    print(f"administrator {args.login!r} created / 区管理者 {args.login!r} を作成しました\n"
          "next: sign in at <hub>/auth/login; you will be asked to scan a QR code with an "
          "authenticator app and enter its 6-digit code (two-step verification is required "
          "for administrators), then keep the recovery codes shown once.\n"
          "次に <hub>/auth/login でログインし、表示されるQRコードを認証アプリで読み取って6桁の"
          "コードを入力してください（区管理者は2段階認証が必須です）。表示される回復コードは"
          "一度しか表示されないため保管してください。")
    return 0


def _add_admin_parsers(sub: Any) -> None:
    """``hub admin create``: the first ward administrator (then use the admin pages)."""
    admin = sub.add_parser("admin", help="staff accounts")
    asub = admin.add_subparsers(dest="action", required=True)
    create = asub.add_parser("create", help="create a ward administrator account")
    create.add_argument("--db", default=DEFAULT_DB, help="database URL (default: %(default)s)")
    create.add_argument("--login", required=True, help="the login ID")
    create.add_argument("--name", default="", help="display name (default: the login ID)")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin (no prompt)")
    create.set_defaults(func=_admin_create)
