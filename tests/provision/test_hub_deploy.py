"""``madoguchi provision hub`` output run for real: nginx (Debian package) with the generated site
in front of two hub processes started from the generated systemd unit, reached over HTTPS with a
test CA (issue 18, "A deployment test"; A4: TLS 1.2 or newer on every link).

Without nginx the deployment tests skip, and fail under MADOGUCHI_STRICT=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port
from provision_support import (
    NGINX,
    REPO,
    client_context,
    exec_start,
    get,
    make_ca,
    start_nginx,
    stop,
    tail,
    wait_port,
)
from sync_support import Mosquitto

from edge.cli import main
from edge.provision.files import parse_env
from edge.provision.hub import STAFF_PREFIXES

STAFF_NET = "10.99.0.0/16"
TEST_KEY = "t1:" + "A" * 43 + "="  # 32 zero bytes, base64


def provision(out: Path, *args: str) -> int:
    return main(["provision", "hub", "--server-name", "localhost", "--out", str(out), *args])


@dataclass
class Deployment:
    ca: Path
    hub_ports: tuple[int, int]
    https: int  # nginx with --staff-network
    http: int
    open_https: int  # nginx without a staff network restriction
    restricted: Path
    logs: list[Path]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not Path(NGINX).exists():
        from conftest import unavailable

        unavailable(f"{NGINX} not installed (apt-get install nginx-light)")
    tmp = tmp_path_factory.mktemp("deploy")
    ca, chain, key = make_ca(tmp / "tls")
    hub_ports = free_port(), free_port()
    ports = [free_port() for _ in range(4)]
    common = ["--cert", str(chain), "--key", str(key), "--listen", "127.0.0.1", "--standalone",
              "--expose-upstream", "--data-dir", str(tmp / "data"),
              *(a for p in hub_ports for a in ("--port", str(p)))]
    restricted, unrestricted = tmp / "restricted", tmp / "open"
    assert provision(restricted, *common, "--https-port", str(ports[0]), "--http-port",
                     str(ports[1]), "--staff-network", STAFF_NET,
                     "--acme-webroot", str(tmp / "acme")) == 0
    (tmp / "acme" / ".well-known" / "acme-challenge").mkdir(parents=True)
    (tmp / "acme" / ".well-known" / "acme-challenge" / "tok-123").write_text("tok-123.thumb")
    assert provision(unrestricted, *common, "--https-port", str(ports[2]), "--http-port",
                     str(ports[3])) == 0

    broker = Mosquitto(tmp).start()
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        db = f"sqlite:///{tmp}/data/hub.db"
        (tmp / "data").mkdir()
        from hub.store import HubStore

        async def migrate() -> None:  # once, before two processes open the same file
            await (await HubStore.open(db)).close()

        asyncio.run(migrate())
        env = parse_env((restricted / "hub.env.example").read_text())
        placeholders = sorted(k for k, v in env.items() if "CHANGE-ME" in v)
        assert placeholders == ["MADOGUCHI_HUB_DB", "MADOGUCHI_HUB_KEYS", "MADOGUCHI_HUB_MQTT"]
        env.update(MADOGUCHI_HUB_DB=db, MADOGUCHI_HUB_KEYS=TEST_KEY,
                   MADOGUCHI_HUB_MQTT=f"{broker.url}/?",
                   MADOGUCHI_HUB_PREFIX=f"deploytest{os.getpid()}",
                   MADOGUCHI_HUB_PUBLIC_URL=f"https://localhost:{ports[0]}")
        unit = (restricted / "systemd" / "madoguchi-hub@.service").read_text()
        for port in hub_ports:
            log = tmp / f"hub-{port}.log"
            logs.append(log)
            with log.open("wb") as fh:
                procs.append(subprocess.Popen(
                    exec_start(unit, str(port), env), cwd=tmp / "data", stdout=fh,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={**os.environ, **env, "PYTHONPATH": str(REPO)}))
        for out in (restricted, unrestricted):
            logs.append(out / "logs" / "error.log")
            procs.append(start_nginx(out))
        for port, proc, log in zip((*hub_ports, ports[0], ports[2]), procs, logs, strict=True):
            wait_port(port, 40.0, proc, log)
        yield Deployment(ca, hub_ports, ports[0], ports[1], ports[2], restricted, logs)
    finally:
        for proc in procs:
            stop(proc)
        broker.stop()


# --- over the wire -------------------------------------------------------------------------------

def test_resident_status_page_over_https_with_hsts(deployment: Deployment) -> None:
    status, headers, body = get(deployment.https, "/", client_context(deployment.ca))
    assert status == 200, body[:500]
    assert "待ち" in body.decode() or "混雑" in body.decode()
    assert headers["strict-transport-security"] == "max-age=63072000"
    assert "server" not in headers or "nginx/" not in headers["server"]  # server_tokens off


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_accepted(deployment: Deployment, version: ssl.TLSVersion) -> None:
    ctx = client_context(deployment.ca, tls_max=version)
    ctx.minimum_version = version
    status, _, _ = get(deployment.https, "/api/health", ctx)
    assert status == 200


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1])
def test_tls_11_and_10_refused(deployment: Deployment, version: ssl.TLSVersion) -> None:
    with pytest.raises(ssl.SSLError) as refused:
        get(deployment.https, "/api/health", client_context(deployment.ca, tls_max=version))
    # the server's alert, not a client that could not even offer the old protocol
    assert "PROTOCOL_VERSION" in str(refused.value).upper() or \
        "UNSUPPORTED_PROTOCOL" in str(refused.value).upper(), refused.value


def test_plain_http_redirects_to_https(deployment: Deployment) -> None:
    status, headers, _ = get(deployment.http, "/r?lang=en", None)
    assert status == 301
    assert headers["location"] == f"https://127.0.0.1:{deployment.https}/r?lang=en"


def test_acme_challenge_answered_on_plain_http(deployment: Deployment) -> None:
    status, _, body = get(deployment.http, "/.well-known/acme-challenge/tok-123", None)
    assert status == 200
    assert body == b"tok-123.thumb"


def test_staff_paths_refused_outside_the_staff_network(deployment: Deployment) -> None:
    ctx = client_context(deployment.ca)
    for path in ("/auth/login", "/admin/staff", "/staff/sites", "/api/sites", "/metrics",
                 "/admin/notices/1/live", "/%61uth/login", "//auth/login", "/admin"):
        status, _, body = get(deployment.https, path, ctx)
        assert status == 403, (path, status, body[:200])
    # a forged X-Forwarded-For does not open them: nginx decides on the connection's address
    status, _, _ = get(deployment.https, "/auth/login", ctx, {"X-Forwarded-For": "10.99.0.7"})
    assert status == 403
    for path in ("/", "/api/status", "/r", "/api/health"):
        status, _, body = get(deployment.https, path, ctx)
        assert status == 200, (path, status, body[:200])


def test_staff_login_open_without_a_staff_network(deployment: Deployment) -> None:
    status, _, body = get(deployment.open_https, "/auth/login", client_context(deployment.ca))
    assert status == 200, body[:300]


def test_both_hub_processes_serve(deployment: Deployment) -> None:
    ctx = client_context(deployment.ca)
    served: dict[str, int] = {}
    for _ in range(20):
        status, headers, _ = get(deployment.https, "/api/health", ctx)
        assert status == 200
        served[headers["x-upstream"]] = served.get(headers["x-upstream"], 0) + 1
    assert set(served) == {f"127.0.0.1:{p}" for p in deployment.hub_ports}, served
    assert min(served.values()) >= 5, served
    for log in deployment.logs[:2]:  # each started from the unit's ExecStart, no crash
        assert "Traceback" not in tail(log), tail(log)


# --- the generated files -------------------------------------------------------------------------

def test_generated_nginx_site(tmp_path: Path) -> None:
    assert provision(tmp_path, "--staff-network", STAFF_NET, "--staff-network", "192.0.2.0/24",
                     "--port", "9001", "--port", "9002", "--port", "9003") == 0
    site = (tmp_path / "nginx" / "madoguchi-hub.conf").read_text()
    assert "    ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert "TLSv1 " not in site
    assert "TLSv1.1" not in site
    assert "SSLv3" not in site
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in site
    assert "return 301 https://$host$request_uri;" in site  # port 443: no port in the target
    for port in (9001, 9002, 9003):
        assert f"server 127.0.0.1:{port} " in site
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in site
    assert "proxy_add_x_forwarded_for" not in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    assert "client_max_body_size 200m;" in site
    assert "X-Upstream" not in site
    assert "modsecurity on" not in site
    # every live stream location turns buffering off
    for loc in ("location = /api/status/stream {", "location = /api/live {",
                "location ~ ^/t/[^/]+/stream$ {", "location ~ ^/admin/notices/[^/]+/live$ {"):
        block = site.split(loc, 1)[1].split("}", 1)[0]
        assert "proxy_buffering off;" in block, loc
    # each staff prefix is closed to everyone but the two networks
    for prefix in STAFF_PREFIXES:
        block = site.split(f"location ^~ {prefix} {{", 1)[1]
        assert block.lstrip().startswith(
            "allow 10.99.0.0/16;\n        allow 192.0.2.0/24;\n        deny all;"), prefix


def test_generated_units_and_settings(tmp_path: Path) -> None:
    assert provision(tmp_path, "--data-dir", "/srv/madoguchi", "--user", "hubsvc") == 0
    unit = (tmp_path / "systemd" / "madoguchi-hub@.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=/srv/madoguchi", "PrivateTmp=yes",
                 "EnvironmentFile=/etc/madoguchi/hub.env", "User=hubsvc"):
        assert f"\n{line}\n" in unit, line
    assert "--host 127.0.0.1 --port %i" in unit
    target = (tmp_path / "systemd" / "madoguchi-hub.target").read_text()
    assert "Wants=madoguchi-hub@8091.service madoguchi-hub@8092.service" in target
    env_text = (tmp_path / "hub.env.example").read_text()
    env = parse_env(env_text)
    assert env["MADOGUCHI_TRUST_PROXY"] == "1"
    assert env["MADOGUCHI_HUB_PUBLIC_URL"] == "https://localhost"
    for name, value in env.items():  # placeholders only, never a secret
        if any(s in name for s in ("KEY", "PASS", "TOKEN", "MQTT", "DB")) and name != \
                "MADOGUCHI_HUB_PREFIX":
            assert "CHANGE-ME" in value, name
    # every setting the hub reads is listed (set or commented)
    names = set(subprocess.run(
        ["grep", "-rhoE", "MADOGUCHI_[A-Z0-9_]+[A-Z0-9]", str(REPO / "hub"), "--include=*.py"],
        capture_output=True, text=True, check=False).stdout.split())
    wildcard = ("MADOGUCHI_WEBTICKET_", "MADOGUCHI_FLEET_", "MADOGUCHI_NOTICE_SIGN_")
    missing = sorted(n for n in names if n not in env_text and not n.startswith(wildcard))
    assert not missing, missing
    readme = (tmp_path / "README.md").read_text()
    assert "madoguchi-hub@.service" in readme
    assert "nginx -t" in readme


def test_waf_profile(tmp_path: Path) -> None:
    assert provision(tmp_path / "waf", "--waf") == 0
    site = (tmp_path / "waf" / "nginx" / "madoguchi-hub.conf").read_text()
    assert "    modsecurity on;\n" in site
    assert "modsecurity_rules_file /etc/nginx/modsecurity/madoguchi.conf;" in site
    rules = (tmp_path / "waf" / "nginx" / "modsecurity-madoguchi.conf").read_text()
    assert "Include /usr/share/modsecurity-crs/rules/*.conf" in rules
    assert "libnginx-mod-http-modsecurity" in rules
    assert "ctl:requestBodyAccess=Off" in rules  # PDF uploads are not refused by body limits
    # without --waf no directive of the module remains (the config loads without it)
    assert provision(tmp_path / "plain") == 0
    plain = (tmp_path / "plain" / "nginx" / "madoguchi-hub.conf").read_text()
    assert not [x for x in plain.splitlines() if "modsecurity" in x and not x.strip()
                .startswith("#")]
    assert not (tmp_path / "plain" / "nginx" / "modsecurity-madoguchi.conf").exists()


def test_generated_config_passes_nginx_t(tmp_path: Path) -> None:
    """The default layout (443/80, IPv4 and IPv6, staff networks) is valid nginx syntax."""
    if not Path(NGINX).exists():
        from conftest import unavailable

        unavailable(f"{NGINX} not installed")
    _, chain, key = make_ca(tmp_path / "tls")
    out = tmp_path / "out"
    assert provision(out, "--standalone", "--cert", str(chain), "--key", str(key),
                     "--staff-network", STAFF_NET) == 0
    proc = subprocess.run([NGINX, "-t", "-p", str(out), "-c", str(out / "nginx.conf"),
                           "-e", str(out / "logs" / "error.log")],
                          capture_output=True, text=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("args", "word"), [
    (["--staff-network", "10.99.1.0/16"], "CIDR"),
    (["--staff-network", "not-a-net"], "CIDR"),
    (["--port", "8091", "--port", "8091"], "port"),
    (["--https-port", "70000"], "port"),
    (["--cert", "relative/cert.pem"], "absolute"),
])
def test_bad_arguments_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], word: str) -> None:
    assert provision(tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert word in err
    assert "エラー" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


# --- the staff prefixes against the hub's route table -------------------------------------------

STAFF_ONLY_PUBLIC = ("/auth/", "/metrics")  # public to the access guard, yet used by staff only


async def test_staff_prefixes_match_the_hub_routes(tmp_path: Path) -> None:
    """Every route for a staff role lies under a restricted prefix, and no route residents use
    does: a new module's routes cannot slip past ``--staff-network`` or be closed by it."""
    from hub.app import start_hub
    from hub.settings import HubSettings
    from hub.web.api import ACCESS_TABLE

    hub = await start_hub(f"sqlite:///{tmp_path}/m.db", None, port=0,
                          settings=HubSettings(keys={"t": bytes(32)}, key_id="t"))
    try:
        table: dict[tuple[str, str], str] = dict(hub.runner.app[ACCESS_TABLE].items())
    finally:
        await hub.stop()
    assert len(table) > 40

    def staff_path(path: str) -> bool:
        return path.startswith(STAFF_PREFIXES)

    resident = ("public", "ticket_token")
    exposed = sorted(p for (_, p), a in table.items() if a not in resident and not staff_path(p))
    assert not exposed, f"staff routes outside STAFF_PREFIXES: {exposed}"
    closed = sorted(p for (_, p), a in table.items()
                    if a in resident and staff_path(p) and not p.startswith(STAFF_ONLY_PUBLIC))
    assert not closed, f"resident routes under a staff prefix: {closed}"


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd itself parses the units: no unknown keys, the ExecStart binary is where the
    unit says (a stand-in under ``--install-dir``)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    binary = tmp_path / "inst" / ".venv" / "bin" / "madoguchi"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    out = tmp_path / "out"
    assert provision(out, "--install-dir", str(tmp_path / "inst")) == 0
    units = out / "systemd"
    instance = units / "madoguchi-hub@8091.service"  # verify wants an instance, not a template
    instance.write_text((units / "madoguchi-hub@.service").read_text())
    proc = subprocess.run([analyze, "verify", "--man=no", str(instance),
                           str(units / "madoguchi-hub.target")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Unknown" not in proc.stderr, proc.stderr
