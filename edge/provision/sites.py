"""Provision a site (credentials, env file, config stub) and the broker (conf, ACL, TLS).

Layout under the provisioning folder ``DIR`` (keep it on the broker host, readable by its owner
only; copy ``sites/NAME/`` to the site's edge as ``/etc/madoguchi/``)::

    broker/ mosquitto.conf acl passwd settings.json data/ tls/{ca.crt,server.crt,server.key}
    hub/    mqtt.env [mqtt-ca.crt]
    sites/NAME/ mqtt.env site.toml [mqtt-ca.crt] [edge-tls.* edge-ca.crt: edge_tls.py]
    edge-ca/ ca.crt ca.key (the edge's HTTPS CA, made with the first site certificate)

The plain password is printed once and kept only in that site's ``mqtt.env`` (mode 0600); the
password file holds its PBKDF2 hash.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from edge.provision.broker import (
    HUB_USER,
    SITE_USER_PREFIX,
    BrokerSettings,
    TlsError,
    ensure_tls,
    render_acl,
    render_conf,
)
from edge.provision.files import Batch, parse_env, render_env
from edge.provision.passwd import hash_password, parse_passwd, render_passwd

if TYPE_CHECKING:
    from edge.provision.edge_tls import EdgeCert

__all__ = ["ProvisionError", "SiteResult", "provision_broker", "provision_site"]

SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")  # the same rule as [site].id
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$|^[0-9A-Fa-f:.]+$")
SITE_CA_PATH = "/etc/madoguchi/mqtt-ca.crt"  # where the edge finds the CA once installed
ENV_HEADER = ("MQTT credentials for {who}. {gen}\nSecret: keep mode 0600. "
              "Load with systemd EnvironmentFile=.")


class ProvisionError(Exception):
    """Bad input or state; carries English and Japanese text for the operator."""

    def __init__(self, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_ja = message_ja


@dataclass(frozen=True, slots=True)
class SiteResult:
    site: str
    username: str
    password: str  # shown once by the CLI, never logged
    env_path: Path
    config_path: Path
    config_created: bool
    hub_created: bool
    edge_cert: EdgeCert | None = None  # with --edge-name/--edge-ip: the edge's HTTPS files


@dataclass(frozen=True, slots=True)
class _Paths:
    root: Path

    @property
    def broker(self) -> Path:
        return self.root / "broker"

    @property
    def passwd(self) -> Path:
        return self.broker / "passwd"

    @property
    def settings(self) -> Path:
        return self.broker / "settings.json"

    @property
    def ca(self) -> Path:
        return self.broker / "tls" / "ca.crt"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    def site(self, name: str) -> Path:
        return self.root / "sites" / name


def check_site_name(name: str) -> None:
    if not SITE_NAME.match(name):
        raise ProvisionError(
            f"bad site name {name!r}: use 2-41 characters a-z, 0-9 and '-', starting with a "
            "letter or digit (the same as [site].id), e.g. 'nerima-main'",
            f"サイト名 {name!r} は使えません: 英小文字・数字・'-' の2〜41文字で、"
            "先頭は英小文字か数字（[site].id と同じ規則）。例: 'nerima-main'")


def check_host(host: str) -> None:
    if not _HOST.match(host):
        raise ProvisionError(
            f"bad broker host {host!r}: give a DNS name or an IP address",
            f"ブローカーのホスト {host!r} が不正です: DNS名かIPアドレスを指定してください")


def provision_site(root: Path, name: str, *, rotate: bool = False,
                   broker_host: str | None = None, edge_names: tuple[str, ...] = (),
                   edge_ips: tuple[str, ...] = ()) -> SiteResult:
    """Create (or with ``rotate`` re-key) a site's broker user, env file and config stub; with
    ``edge_names``/``edge_ips`` also the edge's HTTPS certificate (edge/provision/edge_tls.py),
    in the same all-or-nothing batch."""
    check_site_name(name)
    if broker_host is not None:
        check_host(broker_host)
    p = _Paths(root)
    users = _read_passwd(p)
    user = f"{SITE_USER_PREFIX}{name}"
    env_path, config_path = p.site(name) / "mqtt.env", p.site(name) / "site.toml"
    exists = user in users or env_path.exists()
    if exists and not rotate:
        raise ProvisionError(
            f"site {name!r} already exists; use --rotate to give it a new password",
            f"サイト {name!r} は既にあります。新しいパスワードにするには --rotate を付けてください")
    if rotate and not exists:
        raise ProvisionError(f"site {name!r} does not exist, so there is nothing to rotate",
                             f"サイト {name!r} はないため、--rotate できません")
    settings = BrokerSettings.load(p.settings)
    if broker_host is not None:
        settings = replace(settings, host=broker_host)
    batch = Batch()
    hub_created = _hub_user(p, users, settings, batch)
    password = secrets.token_urlsafe(24)
    users[user] = hash_password(password)
    config_created = not config_path.exists()
    batch.mkdir(p.site(name), 0o700)
    _site_files(p, name, password, settings, batch)
    if config_created:
        batch.add(config_path, site_stub(name), 0o644)
    cert = None
    if edge_names or edge_ips:
        from edge.provision.edge_tls import add_edge_cert  # it imports this module

        cert = add_edge_cert(root, name, list(edge_names), list(edge_ips), batch)
    _broker_files(p, users, settings, batch)
    batch.commit()
    return SiteResult(name, user, password, env_path, config_path, config_created, hub_created,
                      cert)


def provision_broker(root: Path, *, port: int, tls: bool, tls_port: int,
                     broker_host: str | None, prefix: str | None) -> tuple[Path, bool]:
    """Write mosquitto.conf and the ACL, make test TLS files if asked; refresh env files.

    Returns the conf path and whether TLS files were created.
    """
    if broker_host is not None:
        check_host(broker_host)
    for n in (port, tls_port):
        if not 1 <= n <= 65535:
            raise ProvisionError(f"bad port {n}", f"ポート番号 {n} が不正です")
    if tls and port == tls_port:
        raise ProvisionError("the TLS port must differ from the plain port",
                             "TLS のポートは通常のポートと別にしてください")
    p = _Paths(root)
    old = BrokerSettings.load(p.settings)
    settings = BrokerSettings(host=broker_host or old.host, port=port, tls=tls,
                              tls_port=tls_port, prefix=prefix or old.prefix)
    if not re.match(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", settings.prefix):
        raise ProvisionError(f"bad topic prefix {settings.prefix!r}",
                             f"トピックの接頭辞 {settings.prefix!r} が不正です")
    users = _read_passwd(p)
    created = False
    if tls:
        try:
            created = ensure_tls(p.broker / "tls", settings.host)
        except TlsError as exc:
            raise ProvisionError(str(exc), f"TLS の証明書を用意できません: {exc}") from None
    batch = Batch()
    batch.mkdir(p.broker / "data", 0o700)
    _hub_user(p, users, settings, batch)
    for site in _sites(users):
        env_path = p.site(site) / "mqtt.env"
        if env_path.exists():  # keep the password, refresh URL, prefix and CA
            password = parse_env(env_path.read_text(encoding="utf-8")).get(
                "MADOGUCHI_MQTT_PASSWORD", "")
            if password:
                _site_files(p, site, password, settings, batch)
    conf = p.broker / "mosquitto.conf"
    batch.add(conf, render_conf(settings, p.broker, ca=tls and p.ca.exists()), 0o644)
    _broker_files(p, users, settings, batch)
    batch.commit()
    return conf, created


def site_stub(name: str) -> str:
    """A minimal valid site.toml with placeholders (one service, one counter)."""
    return f"""\
# Site configuration for {name}: a stub made by `madoguchi provision site`.
# Edit the names, services and counters (the whole shape is described at the top of
# sites/nerima-main.toml), then check it: madoguchi config check site.toml
# Once the hub manages this site, the hub's version of this file wins (higher `version`).

version = 0

[site]
id = "{name}"
name = {{ ja = "（庁舎・窓口の名前）", en = "(office name)" }}
timezone = "Asia/Tokyo"

[[services]]
code = "A"
name = {{ ja = "（手続きの名前）", en = "(service name)" }}
range = [1, 999]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A"]
"""


def _read_passwd(p: _Paths) -> dict[str, str]:
    try:
        return parse_passwd(p.passwd.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _sites(users: dict[str, str]) -> list[str]:
    names = (u[len(SITE_USER_PREFIX):] for u in users if u.startswith(SITE_USER_PREFIX))
    return sorted(n for n in names if SITE_NAME.match(n))


def _hub_user(p: _Paths, users: dict[str, str], settings: BrokerSettings, batch: Batch) -> bool:
    """Add the hub's user on first use, or refresh its env file; True if created now."""
    env_path = p.hub / "mqtt.env"
    password = parse_env(env_path.read_text(encoding="utf-8")).get(
        "MADOGUCHI_MQTT_PASSWORD", "") if env_path.exists() else ""
    created = HUB_USER not in users or not password
    if created:
        password = secrets.token_urlsafe(24)
        users[HUB_USER] = hash_password(password)
    batch.mkdir(p.hub, 0o700)
    env = _env(settings, HUB_USER, password)
    if settings.tls and p.ca.exists():
        batch.add(p.hub / "mqtt-ca.crt", p.ca.read_text(encoding="utf-8"), 0o644)
        env["MADOGUCHI_MQTT_CA"] = str((p.hub / "mqtt-ca.crt").resolve())
    batch.add(env_path, render_env(env, _header("the hub")), 0o600)
    return created


def _site_files(p: _Paths, site: str, password: str, settings: BrokerSettings,
                batch: Batch) -> None:
    env = {"MADOGUCHI_SITE": site, **_env(settings, f"{SITE_USER_PREFIX}{site}", password)}
    if settings.tls and p.ca.exists():
        batch.add(p.site(site) / "mqtt-ca.crt", p.ca.read_text(encoding="utf-8"), 0o644)
        env["MADOGUCHI_MQTT_CA"] = SITE_CA_PATH
    batch.add(p.site(site) / "mqtt.env", render_env(env, _header(f"site {site}")), 0o600)


def _env(settings: BrokerSettings, user: str, password: str) -> dict[str, str]:
    return {"MADOGUCHI_MQTT_URL": settings.url(), "MADOGUCHI_MQTT_USERNAME": user,
            "MADOGUCHI_MQTT_PASSWORD": password, "MADOGUCHI_MQTT_PREFIX": settings.prefix}


def _broker_files(p: _Paths, users: dict[str, str], settings: BrokerSettings,
                  batch: Batch) -> None:
    batch.mkdir(p.broker, 0o700)
    batch.add(p.passwd, render_passwd(users), 0o600)
    batch.add(p.broker / "acl", render_acl(_sites(users), settings.prefix), 0o644)
    batch.add(p.settings, settings.dumps(), 0o644)


def _header(who: str) -> str:
    return ENV_HEADER.format(who=who, gen="Generated by `madoguchi provision`.")
