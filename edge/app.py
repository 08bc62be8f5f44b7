"""Composition root of the edge daemon: config -> store -> writer -> web, and their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from edge.config import load_site_config
from edge.devices.manager import DeviceManager
from edge.domain.clock import Clock, SystemClock
from edge.domain.model import SiteConfig
from edge.domain.state import State
from edge.domain.views import active_menu, menus_by_kiosk
from edge.protocol import DEFAULT_PREFIX
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, load_applied_config
from edge.watchdog import run_until_signal
from edge.web.api import DEVICES, RESERVATIONS, STAFF
from edge.web.app import create_app
from edge.web.live import LIVE

_LOGGER = logging.getLogger(__name__)
ROLLOVER_CHECK_S = 30.0
RETENTION_DAYS = 400  # events older than this (and acknowledged by the hub) leave the live DB
ARCHIVE_FIRST_S = 300.0  # after start-up, when the site is busy getting going, wait a little
ARCHIVE_EVERY_S = 3600.0
EXPIRY_WARN_DAYS = 30  # the TLS certificate's remaining days below which the edge warns


@dataclass(frozen=True)
class SyncOptions:
    """How this edge reaches the broker (from the CLI or the env file of `provision site`)."""

    url: str  # mqtt://host:1883 or mqtts://host:8883
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    prefix: str = DEFAULT_PREFIX
    mqtt5: bool = True  # False for the embedded amqtt broker (MQTT 3.1.1 only)
    # sync time stamps and command expiry; None: the wall clock. The demo passes its simulated
    # clock (``--at``), shared with the hub, so hub commands are not taken for expired
    now: Callable[[], datetime] | None = None

    @classmethod
    def from_env(cls, url: str | None = None) -> SyncOptions | None:
        env = os.environ
        url = url or env.get("MADOGUCHI_MQTT_URL")
        if not url:
            return None
        return cls(url, env.get("MADOGUCHI_MQTT_USERNAME"), env.get("MADOGUCHI_MQTT_PASSWORD"),
                   env.get("MADOGUCHI_MQTT_CA"), env.get("MADOGUCHI_MQTT_PREFIX", DEFAULT_PREFIX),
                   env.get("MADOGUCHI_MQTT_PROTOCOL", "5") != "3.1.1")


@dataclass
class Edge:
    config: SiteConfig
    writer: Writer
    app: web.Application
    devices: DeviceManager | None = None
    sync: SyncClient | None = None


def build_edge(config: SiteConfig, db_path: str | Path, clock: Clock | None = None,
               *, durable: bool = True, preview_dir: Path | None = None,
               sync: SyncOptions | None = None, retention_days: int | None = None) -> Edge:
    """``preview_dir``: save a PNG of every printed ticket there (the demo's paper);
    ``sync``: relay events to the hub over MQTT (without it the edge runs alone);
    ``retention_days``: archive older events hourly (edge/store/archive.py; None: never)."""
    store = EventStore(db_path, config.site, durable=durable)
    writer = Writer(store, config, clock or SystemClock(config.timezone))
    app = create_app(writer)
    devices = _devices(writer, config, app, preview_dir)
    client = None
    if sync is not None:
        client = SyncClient(
            writer, config, sync.url, prefix=sync.prefix, username=sync.username,
            password=sync.password, ca_file=sync.ca_file, mqtt5=sync.mqtt5,
            on_config=lambda cfg: _apply_config(writer, app, cfg),
            devices=None if devices is None else devices.board.views,
            now=sync.now or _wall_utc, staff=app[STAFF],
            reservations=app[RESERVATIONS])
        if devices is not None:
            devices.board.subscribe(lambda _h: client.devices_changed())

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_rollover_loop(writer, app))
        archiving = None if retention_days is None else asyncio.create_task(
            _archive_loop(writer, retention_days))
        if devices is not None:
            await devices.start()
        if client is not None:
            await client.start()
        yield
        if client is not None:
            await client.stop()
        if devices is not None:
            await devices.stop()
        for t in (task, archiving):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        writer.close()

    app.cleanup_ctx.append(lifetime)
    return Edge(config, writer, app, devices, client)


def _wall_utc() -> datetime:
    return datetime.now(UTC)


def _apply_config(writer: Writer, app: web.Application, config: SiteConfig) -> None:
    """A config pushed by the hub: queues follow at once (devices on the next restart)."""
    writer.apply_config(config)
    app[LIVE].poke()
    _LOGGER.info("applied config version %s from the hub", config.version)


def _devices(writer: Writer, config: SiteConfig, app: web.Application,
             preview_dir: Path | None) -> DeviceManager | None:
    if not config.devices and config.voice is None:
        return None
    from edge.devices.profile_store import load_profiles

    # the phrase cache lives beside the database, not in /tmp: a reboot that empties /tmp would
    # cost minutes of CPU re-rendering a day's numbers with Open JTalk
    db = writer.store.path
    cache = None if db == ":memory:" else Path(db).parent / "voice-cache"
    manager = DeviceManager(writer, config, load_profiles(), preview_dir=preview_dir,
                            voice_cache=cache)
    manager.build()
    app[DEVICES] = manager
    hub = app[LIVE]
    hub.extras["devices"] = manager.board.views
    manager.board.subscribe(lambda _h: hub.poke())
    return manager


async def _rollover_loop(writer: Writer, app: web.Application) -> None:
    """Open the new business day at midnight even if nobody presses anything, and push the
    state when the kiosk menu's schedule switches (nothing is committed then)."""
    def menus(s: State) -> tuple[str | None, dict[str, str | None]]:
        now = writer.clock.now()
        return active_menu(s, now), menus_by_kiosk(s, now)

    menu = writer.read(menus)
    while True:
        await asyncio.sleep(ROLLOVER_CHECK_S)
        if writer.needs_rollover():
            await writer.execute(None)
        now_menu = writer.read(menus)
        if now_menu != menu:
            menu = now_menu
            app[LIVE].poke()


async def _archive_loop(writer: Writer, retention_days: int) -> None:
    """Hourly: move old, acknowledged events to the archive (a no-op on most hours). A failure
    (disk full) is logged and tried again next hour; the live database stays as it was."""
    await asyncio.sleep(ARCHIVE_FIRST_S)
    while True:
        try:
            await writer.archive_old(retention_days)
        except Exception:
            _LOGGER.exception("archiving old events failed; trying again in an hour")
        await asyncio.sleep(ARCHIVE_EVERY_S)


async def start_edge(edge: Edge, host: str | Sequence[str], port: int,
                     tls: ssl.SSLContext | None = None) -> web.AppRunner:
    """Listen on ``host`` (one address, or several: the LAN address and 127.0.0.1 for a kiosk
    browser on the edge PC itself) and nowhere else; HTTPS only when ``tls`` is given."""
    runner = web.AppRunner(edge.app, access_log=None)
    await runner.setup()
    try:
        for h in [host] if isinstance(host, str) else host:
            await web.TCPSite(runner, h, port, ssl_context=tls).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class EdgeStartError(Exception):
    """The edge cannot start as configured; English and Japanese text for the operator."""

    def __init__(self, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.message, self.message_ja = message, message_ja


def server_tls(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """The edge's HTTPS: TLS 1.2 or newer and the hub's nginx ciphers (edge/provision/hub.py),
    from the files of ``madoguchi provision site --edge-name``. Refused here, before the edge
    opens anything, when a file is unreadable or the key is not the certificate's."""
    from edge.provision.hub import CIPHERS

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # A4: never TLS 1.0/1.1
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_TICKET  # as nginx's ssl_session_tickets off
    try:
        # an encrypted key would otherwise ask for its pass phrase on a terminal systemd lacks
        ctx.load_cert_chain(cert, key, password=_no_passphrase)
        pem = Path(cert).read_bytes()
    except ssl.SSLError as exc:  # an OSError too: first
        raise EdgeStartError(
            f"the TLS key does not match the certificate, or a file is not PEM ({cert}, {key}):"
            f" {exc.reason or exc}",
            f"TLS の鍵が証明書と対応していないか、PEM 形式ではありません（{cert}, {key}）: "
            f"{exc.reason or exc}") from None
    except OSError as exc:
        raise EdgeStartError(f"cannot read the TLS certificate or key: {exc}",
                             f"TLS の証明書か鍵を読めません: {exc}") from None
    _warn_expiry(pem)
    return ctx


def _no_passphrase() -> str:
    return ""


def _warn_expiry(pem: bytes) -> None:
    """Browsers refuse an expired certificate: say so weeks before (the edge still starts, a
    site without screens would be worse)."""
    from cryptography import x509

    try:
        left = x509.load_pem_x509_certificate(pem).not_valid_after_utc - datetime.now(UTC)
    except ValueError:  # OpenSSL took it; nothing to add
        return
    if left < timedelta(days=EXPIRY_WARN_DAYS):
        _LOGGER.warning("the edge's TLS certificate expires in %d days: renew it with "
                        "`madoguchi provision site NAME --cert-only` / TLS 証明書の期限まで残り"
                        "%d 日です", left.days, left.days)


def listen_hosts(values: Sequence[str]) -> list[str]:
    """``--host`` values, each possibly a comma-separated list (one env variable can name the
    LAN address and 127.0.0.1); duplicates dropped, order kept."""
    hosts = [h.strip() for v in values for h in v.split(",") if h.strip()]
    if not hosts:
        raise EdgeStartError("give an address to listen on (--host)",
                             "待ち受けるアドレスを指定してください（--host）")
    return list(dict.fromkeys(hosts))


def run_edge(config_path: str | Path, db_path: str | Path, host: str | Sequence[str], port: int,
             sync: SyncOptions | None = None, tls: ssl.SSLContext | None = None,
             retention_days: int = RETENTION_DAYS) -> None:
    hosts = [host] if isinstance(host, str) else list(host)
    config = load_site_config(config_path)
    pushed = load_applied_config(db_path, config.site)
    if pushed is not None and pushed.version >= config.version:
        _LOGGER.info("using config version %s pushed by the hub", pushed.version)
        config = pushed
    edge = build_edge(config, db_path, sync=sync, retention_days=retention_days)
    from edge.web.discovery import enable_discovery

    announce, interfaces = _discovery_target(hosts)
    scheme = "https" if tls is not None else "http"
    enable_discovery(edge.app, config.site, config.name.get("ja"), announce, port, interfaces,
                     scheme)
    if tls is None and any(not _loopback(h) for h in hosts):
        _LOGGER.warning("plain HTTP on the LAN: give --tls-cert/--tls-key (madoguchi provision "
                        "site --edge-name) / LAN に暗号化なしの HTTP で公開しています")
    urls = "  ".join(f"{scheme}://{_url_host(h)}:{port}/" for h in hosts)
    _LOGGER.info("edge %s on %s (db %s)", config.site, urls, db_path)
    print(f"madoguchi edge {config.site}: {urls}  (db {db_path})", flush=True)
    asyncio.run(_serve(edge, hosts, port, tls))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _discovery_target(hosts: list[str]) -> tuple[str, list[str] | None]:
    """The address zeroconf announces, and the interfaces it may use: only the configured LAN
    addresses when they are given, everything when the edge listens on every address."""
    if any(h in ("0.0.0.0", "", "::") for h in hosts):
        return "0.0.0.0", None
    lan = [h for h in hosts if not _loopback(h) and _ipv4(h)]
    return (lan[0], lan) if lan else (hosts[0], None)


def _ipv4(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


async def _serve(edge: Edge, host: str | Sequence[str], port: int,
                 tls: ssl.SSLContext | None = None) -> None:
    """Listen, then tell systemd (Type=notify) READY=1 and ping its watchdog while the event
    loop runs and the writer thread answers (edge/watchdog.py); stop on Ctrl-C or SIGTERM."""
    try:
        runner = await start_edge(edge, host, port, tls)
    except OSError as exc:  # an address this PC does not have (yet), or a port in use
        where = host if isinstance(host, str) else ", ".join(host)
        raise EdgeStartError(f"cannot listen on {where} port {port}: {exc.strerror or exc}",
                             f"{where} のポート {port} で待ち受けできません: "
                             f"{exc.strerror or exc}") from None
    try:
        await run_until_signal(edge.writer.responsive)
    finally:
        await runner.cleanup()
