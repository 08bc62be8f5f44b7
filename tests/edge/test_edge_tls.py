"""The edge on the LAN (issue 18 item 3): HTTPS with a certificate from `provision site`, and
listening only where configured.

Everything is real: `madoguchi provision site` writes the ward's edge CA and the site's
certificate, `madoguchi edge run` serves with them as a subprocess, and the clients are Python's
own TLS stack verifying against the provisioned CA and the edge's LAN name.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port
from provision_support import client_context, make_ca, stop

REPO = Path(__file__).resolve().parents[2]
SITE_TOML = REPO / "sites" / "oizumi.toml"
EDGE_NAME = "madoguchi-oizumi.ward.test"  # the LAN name kiosks use; not resolvable: SNI only
START_S = 60.0


@dataclass(frozen=True)
class Provisioned:
    root: Path
    output: str  # what `provision site` printed

    def site(self, name: str = "oizumi") -> Path:
        return self.root / "sites" / name


@dataclass(frozen=True)
class RunningEdge:
    port: int
    ca: Path


def _env() -> dict[str, str]:
    """This test's settings only: no MADOGUCHI_EDGE_* or MQTT from the caller's shell."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("MADOGUCHI_EDGE_", "MADOGUCHI_MQTT_"))}


def _madoguchi(*args: str, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=REPO, env=env or _env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "edge", "run", *args], cwd=REPO,
                            env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _wait_listening(proc: subprocess.Popen[bytes], host: str, port: int) -> None:
    """Until ``host:port`` accepts TCP (the edge opens its port last), or the edge died."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"edge run exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"edge run did not listen on {host}:{port} within {START_S} s")


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    root = tmp_path_factory.mktemp("provision")
    done = _madoguchi("provision", "site", "oizumi", "--dir", str(root),
                      "--edge-name", EDGE_NAME, "--edge-ip", "127.0.0.1")
    assert done.returncode == 0, done.stderr
    # a second site of the same ward: the same CA, its own key
    other = _madoguchi("provision", "site", "nerima-main", "--dir", str(root),
                       "--edge-name", "madoguchi-nerima.ward.test")
    assert other.returncode == 0, other.stderr
    return Provisioned(root, done.stdout)


@pytest.fixture(scope="module")
def edge(provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[RunningEdge]:
    site, port = provisioned.site(), free_port()
    db = tmp_path_factory.mktemp("edge") / "edge.db"
    proc = _spawn("--config", str(SITE_TOML), "--db", str(db), "--host", "127.0.0.1",
                  "--port", str(port), "--tls-cert", str(site / "edge-tls.crt"),
                  "--tls-key", str(site / "edge-tls.key"))
    try:
        _wait_listening(proc, "127.0.0.1", port)
        yield RunningEdge(port, site / "edge-ca.crt")
    finally:
        stop(proc)


def _https_get(port: int, path: str, ctx: ssl.SSLContext, name: str = EDGE_NAME,
               host: str = "127.0.0.1") -> tuple[int, bytes]:
    """GET over TLS to ``host`` while asking for (and verifying) ``name``, as a kiosk that
    resolved the edge's LAN name would."""
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\n"
                    "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# --- provisioning ---------------------------------------------------------------------------------

def test_provision_writes_the_ward_ca_once_and_a_site_certificate(
        provisioned: Provisioned) -> None:
    ca_dir, site = provisioned.root / "edge-ca", provisioned.site()
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (site / "edge-tls.key").stat().st_mode & 0o777 == 0o600
    # both sites' certificates come from the one CA; the browsers trust it once
    assert (site / "edge-ca.crt").read_bytes() == (ca_dir / "ca.crt").read_bytes()
    assert (provisioned.site("nerima-main") / "edge-ca.crt").read_bytes() == \
        (ca_dir / "ca.crt").read_bytes()
    assert not (site / "ca.key").exists()  # the CA key never travels with a site's files
    env = (site / "edge-tls.env").read_text(encoding="utf-8")
    assert "MADOGUCHI_EDGE_TLS_CERT=/etc/madoguchi/edge-tls.crt" in env
    assert "MADOGUCHI_EDGE_TLS_KEY=/etc/madoguchi/edge-tls.key" in env
    # the operator is told which file the kiosk browsers and staff PCs must trust
    line = next(x for x in provisioned.output.splitlines() if "trust this CA" in x)
    assert str(site / "edge-ca.crt") in line
    assert "ブラウザ" in line


def test_cert_only_renews_the_key_keeps_the_names_the_ca_and_the_password(
        provisioned: Provisioned, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "p"
    shutil.copytree(provisioned.root, root)
    site = root / "sites" / "oizumi"
    before = {f: (site / f).read_bytes() for f in ("edge-tls.crt", "edge-tls.key", "mqtt.env")}
    ca = (root / "edge-ca" / "ca.crt").read_bytes()
    done = _madoguchi("provision", "site", "oizumi", "--dir", str(root), "--cert-only")
    assert done.returncode == 0, done.stderr
    assert (site / "edge-tls.key").read_bytes() != before["edge-tls.key"]
    assert (site / "edge-tls.crt").read_bytes() != before["edge-tls.crt"]
    assert (site / "mqtt.env").read_bytes() == before["mqtt.env"]
    assert (root / "edge-ca" / "ca.crt").read_bytes() == ca
    assert f"{EDGE_NAME}, 127.0.0.1" in done.stdout
    assert "NEW edge CA" not in done.stdout


def test_provision_refuses_a_bad_address(tmp_path: Path) -> None:
    done = _madoguchi("provision", "site", "oizumi", "--dir", str(tmp_path),
                      "--edge-ip", "192.168.1.300")
    assert done.returncode == 2
    assert "not an IP address" in done.stderr
    assert "IP アドレスではありません" in done.stderr
    assert not (tmp_path / "sites").exists()  # all or nothing


# --- HTTPS ----------------------------------------------------------------------------------------

def test_https_verifies_against_the_provisioned_ca_and_the_edge_name(edge: RunningEdge) -> None:
    ctx = ssl.create_default_context(cafile=str(edge.ca))
    status, body = _https_get(edge.port, "/api/health", ctx)
    assert status == 200
    assert json.loads(body)["site"] == "oizumi"
    assert _https_get(edge.port, "/api/health", ctx, name="127.0.0.1")[0] == 200  # --edge-ip


def test_a_name_not_in_the_certificate_fails_verification(edge: RunningEdge) -> None:
    ctx = ssl.create_default_context(cafile=str(edge.ca))
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        _https_get(edge.port, "/api/health", ctx, name="madoguchi-nerima.ward.test")


def test_another_ca_does_not_vouch_for_the_edge(edge: RunningEdge, tmp_path: Path) -> None:
    stranger = make_ca(tmp_path)[0]
    with pytest.raises(ssl.SSLCertVerificationError):
        _https_get(edge.port, "/api/health", ssl.create_default_context(cafile=str(stranger)))


def _plain_get(host: str, port: int) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/api/health")
        return conn.getresponse().status
    finally:
        conn.close()


def test_plain_http_gets_no_answer(edge: RunningEdge) -> None:
    with pytest.raises((http.client.HTTPException, OSError)):
        _plain_get("127.0.0.1", edge.port)


def test_tls_12_is_accepted_from_a_client_that_also_offers_older(edge: RunningEdge) -> None:
    """The control for the refusals below: the same lowered client settings, only the
    maximum differs."""
    ctx = client_context(edge.ca, tls_max=ssl.TLSVersion.TLSv1_1)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _https_get(edge.port, "/api/health", ctx)[0] == 200


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1])
def test_tls_11_and_10_are_refused(edge: RunningEdge, version: ssl.TLSVersion) -> None:
    with pytest.raises(ssl.SSLError) as refused:
        _https_get(edge.port, "/api/health", client_context(edge.ca, tls_max=version))
    # the server hung up on the client's hello (asyncio closes without sending its alert), or
    # alerted: not a client that could not even offer the old protocol (NO_PROTOCOLS_AVAILABLE)
    text = str(refused.value).upper()
    assert isinstance(refused.value, ssl.SSLEOFError) or "PROTOCOL_VERSION" in text or \
        "UNSUPPORTED_PROTOCOL" in text, refused.value


# --- where it listens -----------------------------------------------------------------------------

def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (none on an isolated sandbox)."""
    found: set[str] = set()
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found |= {str(i[4][0]) for i in infos}
    except OSError:
        pass
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5,
                             check=False).stdout
        found |= {a for a in out.split() if "." in a}
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127."))


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except ConnectionRefusedError:
        return True
    return False


def test_listens_only_on_the_configured_address(edge: RunningEdge) -> None:
    assert not _refused("127.0.0.1", edge.port)
    # the same loopback interface, another address: Linux routes 127/8 there, the edge is not
    assert _refused("127.0.0.2", edge.port)
    others = _other_addresses()
    if not others:
        pytest.skip("this machine has no address besides loopback")
    for address in others:
        assert _refused(address, edge.port), address


def test_several_addresses_plain_http_as_before(tmp_path: Path) -> None:
    """No TLS files: plain HTTP as the demo and old installs use it; a comma list from
    MADOGUCHI_EDGE_HOST binds each address and nothing else."""
    port = free_port()
    env = {**_env(), "MADOGUCHI_EDGE_HOST": "127.0.0.1,127.0.0.3"}
    proc = _spawn("--config", str(SITE_TOML), "--db", str(tmp_path / "edge.db"),
                  "--port", str(port), env=env)
    try:
        _wait_listening(proc, "127.0.0.3", port)
        for host in ("127.0.0.1", "127.0.0.3"):
            assert _plain_get(host, port) == 200
        assert _refused("127.0.0.2", port)
    finally:
        stop(proc)


# --- refusing to start ----------------------------------------------------------------------------

def _refuses(args: list[str], tmp_path: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    db = tmp_path / "edge.db"
    done = _madoguchi("edge", "run", "--config", str(SITE_TOML), "--db", str(db), "--host",
                      "127.0.0.1", "--port", str(free_port()), *args, env=env)
    assert done.returncode != 0, done.stdout
    assert not db.exists()  # checked before the edge opened anything
    return done


def test_a_key_of_another_certificate_is_refused(provisioned: Provisioned,
                                                  tmp_path: Path) -> None:
    """Through the env file's variables, as systemd starts it."""
    env = {**_env(), "MADOGUCHI_EDGE_TLS_CERT": str(provisioned.site() / "edge-tls.crt"),
           "MADOGUCHI_EDGE_TLS_KEY": str(provisioned.site("nerima-main") / "edge-tls.key")}
    done = _refuses([], tmp_path, env)
    assert "the TLS key does not match the certificate" in done.stderr
    assert "TLS の鍵が証明書と対応していない" in done.stderr


def test_an_unreadable_certificate_is_refused(provisioned: Provisioned, tmp_path: Path) -> None:
    done = _refuses(["--tls-cert", str(tmp_path / "missing.crt"),
                     "--tls-key", str(provisioned.site() / "edge-tls.key")], tmp_path)
    assert "cannot read the TLS certificate or key" in done.stderr
    assert "TLS の証明書か鍵を読めません" in done.stderr


def test_a_certificate_without_its_key_is_refused(provisioned: Provisioned,
                                                   tmp_path: Path) -> None:
    done = _refuses(["--tls-cert", str(provisioned.site() / "edge-tls.crt")], tmp_path)
    assert "give both --tls-cert and --tls-key" in done.stderr
