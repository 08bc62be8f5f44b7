"""``madoguchi provision site|broker|hub``: argparse wiring and operator-facing output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.provision.edge_tls import EdgeCert

__all__ = ["add_parsers"]

DEFAULT_DIR = "madoguchi-provision"


def add_parsers(subparsers: Any) -> None:
    """Add ``provision`` with ``site``, ``broker`` and ``hub`` to the ``madoguchi`` parser."""
    prov = subparsers.add_parser("provision", help="broker users, site credentials, broker config")
    psub = prov.add_subparsers(dest="sub", required=True)

    site = psub.add_parser("site", help="create a site's broker credentials and config stub")
    site.add_argument("name", help="site id, e.g. nerima-main ([site].id in its TOML)")
    _dir(site)
    site.add_argument("--broker-host", default=None,
                      help="broker host name the edge connects to (remembered)")
    site.add_argument("--rotate", action="store_true",
                      help="give an existing site a new password")
    site.add_argument("--edge-name", action="append", default=[], metavar="NAME",
                      help="the edge's LAN host name for its HTTPS certificate, signed by the "
                           "ward's edge CA (DIR/edge-ca, made once; repeatable)")
    site.add_argument("--edge-ip", action="append", default=[], metavar="ADDRESS",
                      help="the edge's LAN address for its HTTPS certificate (repeatable)")
    site.add_argument("--cert-only", action="store_true",
                      help="only issue a new HTTPS certificate for an existing site (default "
                           "names: those of its current certificate); its password stays")
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

    _hub_parser(psub)


def _hub_parser(psub: Any) -> None:
    """``provision hub``: nginx + systemd + settings for the hub (edge/provision/hub.py)."""
    hub = psub.add_parser("hub", help="nginx (TLS 1.2+), systemd units and hub.env for the hub")
    hub.add_argument("--server-name", required=True, help="the hub's host name, e.g. "
                     "madoguchi.ward.example.jp (certificate name)")
    hub.add_argument("--out", default="madoguchi-hub-deploy",
                     help="output folder (default: %(default)s)")
    hub.add_argument("--port", type=int, action="append", dest="ports", metavar="PORT",
                     help="a hub process's port on 127.0.0.1, once per process "
                          "(default: 8091 and 8092)")
    hub.add_argument("--staff-network", action="append", default=[], metavar="CIDR",
                     help="only these networks reach the staff paths (repeatable; default: any)")
    hub.add_argument("--cert", default="/etc/madoguchi/tls/hub.crt",
                     help="certificate chain, PEM (default: %(default)s)")
    hub.add_argument("--key", default="/etc/madoguchi/tls/hub.key",
                     help="private key, PEM (default: %(default)s)")
    hub.add_argument("--https-port", type=int, default=443)
    hub.add_argument("--http-port", type=int, default=80)
    hub.add_argument("--listen", action="append", metavar="ADDR",
                     help="address nginx listens on (repeatable; default: all IPv4 and IPv6)")
    hub.add_argument("--waf", action="store_true",
                     help="ModSecurity + OWASP CRS "
                          "(libnginx-mod-http-modsecurity, modsecurity-crs)")
    hub.add_argument("--install-dir", default="/opt/madoguchi",
                     help="holds .venv/bin/madoguchi (default: %(default)s)")
    hub.add_argument("--data-dir", default="/var/lib/madoguchi",
                     help="the hub's writable folder (default: %(default)s)")
    hub.add_argument("--user", default="madoguchi", help="service user (default: %(default)s)")
    hub.add_argument("--acme-webroot", default="", metavar="DIR",
                     help="answer ACME HTTP-01 challenges on port 80 from DIR "
                          "(certbot certonly --webroot -w DIR)")
    hub.add_argument("--standalone", action="store_true",
                     help="also write OUT/nginx.conf to run nginx as any user under OUT (trials, "
                          "tests): nginx -p OUT -c OUT/nginx.conf")
    hub.add_argument("--expose-upstream", action="store_true",
                     help="add an X-Upstream response header (tests; not for production)")
    hub.set_defaults(func=_hub)


def _hub(args: argparse.Namespace) -> int:
    from edge.provision.hub import HubDeploy, write_hub
    from edge.provision.sites import ProvisionError

    d = HubDeploy(
        server_name=args.server_name, ports=tuple(args.ports or (8091, 8092)), cert=args.cert,
        key=args.key, https_port=args.https_port, http_port=args.http_port,
        listen=tuple(args.listen or ("", "[::]")), staff_networks=tuple(args.staff_network),
        waf=args.waf, expose_upstream=args.expose_upstream, install_dir=args.install_dir,
        data_dir=args.data_dir, user=args.user, acme_webroot=args.acme_webroot)
    try:
        written = write_hub(Path(args.out), d, standalone=args.standalone)
    except ProvisionError as exc:
        return _fail(exc.message, exc.message_ja)
    except OSError as exc:
        return _fail(f"cannot write: {exc}", f"書き込めません: {exc}")
    print(f"hub deployment / ハブの配置ファイル: {args.out}")
    for path in written:
        print(f"  {path}")
    print(f"  next / 次に: {Path(args.out) / 'README.md'} (provisioning/hub/README.md)")
    return 0


def _dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default=DEFAULT_DIR,
                   help="provisioning folder, keep it private (default: %(default)s)")


def _site(args: argparse.Namespace) -> int:
    from edge.provision.edge_tls import provision_edge_cert
    from edge.provision.sites import ProvisionError, provision_site

    try:
        if args.cert_only:
            if args.rotate or args.broker_host:
                return _fail("--cert-only goes without --rotate and --broker-host",
                             "--cert-only は --rotate・--broker-host と一緒に使えません")
            _edge_cert(provision_edge_cert(Path(args.dir), args.name, args.edge_name,
                                           args.edge_ip))
            return 0
        r = provision_site(Path(args.dir), args.name, rotate=args.rotate,
                           broker_host=args.broker_host, edge_names=tuple(args.edge_name),
                           edge_ips=tuple(args.edge_ip))
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
    if r.edge_cert is not None:
        _edge_cert(r.edge_cert)
    return 0


def _edge_cert(c: EdgeCert) -> None:
    """Where each HTTPS file goes; the CA certificate is the one thing browsers must trust."""
    from edge.provision.edge_tls import EDGE_CERT_PATH, EDGE_KEY_PATH

    print(f"  edge HTTPS certificate / エッジの HTTPS 証明書: {', '.join(c.names)} "
          f"(until / 有効期限 {c.not_after:%Y-%m-%d})")
    if c.ca_created:
        print(f"  NEW edge CA / エッジ用 CA を新規作成: {c.ca_dir} (ca.key 0600: never copy "
              "it to an edge or a browser / 鍵はエッジやブラウザに置かない)")
    print(f"  {c.cert_path} -> {EDGE_CERT_PATH}")
    print(f"  {c.key_path} -> {EDGE_KEY_PATH} (install -m 0640 -o root -g madoguchi)")
    print(f"  {c.env_path} -> /etc/madoguchi/edge-tls.env (MADOGUCHI_EDGE_TLS_CERT/_KEY)")
    print(f"  trust this CA on every kiosk browser, guide monitor and staff PC / この CA 証明書を"
          f"受付端末・案内モニター・職員 PC のブラウザに信頼させる: {c.ca_path}")
    print("    (Debian/Chromium: cp to /usr/local/share/ca-certificates/madoguchi-edge-ca.crt; "
          "update-ca-certificates; certutil -d sql:$HOME/.pki/nssdb -A -t C,, "
          "-n madoguchi-edge-ca -i FILE)")
    print("  bind the LAN address only / LAN のアドレスだけで待ち受け: MADOGUCHI_EDGE_HOST=ADDRESS"
          " in / に /etc/madoguchi/edge.env")


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
