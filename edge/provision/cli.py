"""``madoguchi provision site|broker``: argparse wiring and operator-facing output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]

DEFAULT_DIR = "madoguchi-provision"


def add_parsers(subparsers: Any) -> None:
    """Add ``provision`` with ``site`` and ``broker`` to the top-level ``madoguchi`` parser."""
    prov = subparsers.add_parser("provision", help="broker users, site credentials, broker config")
    psub = prov.add_subparsers(dest="sub", required=True)

    site = psub.add_parser("site", help="create a site's broker credentials and config stub")
    site.add_argument("name", help="site id, e.g. nerima-main ([site].id in its TOML)")
    _dir(site)
    site.add_argument("--broker-host", default=None,
                      help="broker host name the edge connects to (remembered)")
    site.add_argument("--rotate", action="store_true",
                      help="give an existing site a new password")
    site.set_defaults(func=_site)

    broker = psub.add_parser("broker", help="write mosquitto.conf and the ACL from the site list")
    _dir(broker)
    broker.add_argument("--port", type=int, default=1883, help="plain MQTT (default: %(default)s)")
    broker.add_argument("--tls", action="store_true",
                        help="add a TLS listener; makes test certificates if none are present")
    broker.add_argument("--tls-port", type=int, default=8883, help="default: %(default)s")
    broker.add_argument("--broker-host", default=None,
                        help="host name clients use, and the test certificate's name")
    broker.add_argument("--prefix", default=None, help="topic prefix (default: madoguchi/v1)")
    broker.set_defaults(func=_broker)


def _dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default=DEFAULT_DIR,
                   help="provisioning folder, keep it private (default: %(default)s)")


def _site(args: argparse.Namespace) -> int:
    from edge.provision.sites import ProvisionError, provision_site

    try:
        r = provision_site(Path(args.dir), args.name, rotate=args.rotate,
                           broker_host=args.broker_host)
    except ProvisionError as exc:
        return _fail(exc.message, exc.message_ja)
    except OSError as exc:
        return _fail(f"cannot write: {exc}", f"書き込めません: {exc}")
    verb, verb_ja = ("rotated", "更新") if args.rotate else ("created", "作成")
    print(f"site {r.site}: broker user {r.username} {verb} / 利用者を{verb_ja}しました")
    print(f"  password (shown once) / パスワード（表示は一度だけ）: {r.password}")
    print(f"  edge credentials / 認証情報: {r.env_path} (0600) -> /etc/madoguchi/mqtt.env")
    if r.config_created:
        print(f"  config stub / 設定のひな形: {r.config_path} -> /etc/madoguchi/site.toml")
    if r.hub_created:
        print(f"  hub credentials / ハブの認証情報: {Path(args.dir) / 'hub' / 'mqtt.env'}")
    print("  reload the broker / ブローカーに再読込させる: kill -HUP $(pidof mosquitto)")
    return 0


def _broker(args: argparse.Namespace) -> int:
    from edge.provision.sites import ProvisionError, provision_broker

    try:
        conf, created = provision_broker(
            Path(args.dir), port=args.port, tls=args.tls, tls_port=args.tls_port,
            broker_host=args.broker_host, prefix=args.prefix)
    except ProvisionError as exc:
        return _fail(exc.message, exc.message_ja)
    except OSError as exc:
        return _fail(f"cannot write: {exc}", f"書き込めません: {exc}")
    print(f"broker config / ブローカー設定: {conf}")
    if created:
        print("  TEST certificates made (not for production) / テスト用証明書を作成しました"
              f"（本番には使わないでください）: {conf.parent / 'tls'}")
    print(f"  run / 起動: mosquitto -c {conf}")
    return 0


def _fail(message: str, message_ja: str) -> int:
    print(f"error: {message}\nエラー: {message_ja}", file=sys.stderr)
    return 2
