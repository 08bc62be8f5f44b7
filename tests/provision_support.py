"""Helpers for the hub deployment test: a test CA, the hub command line taken from the generated
systemd unit, and a real nginx run as the current user on the ``--standalone`` output.

Why the unit's own ExecStart: the test then starts the hub exactly as systemd would (same
arguments, same settings from ``hub.env.example``), so a broken unit fails the test.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

from conftest import unavailable
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NGINX = "/usr/sbin/nginx"
REPO = Path(__file__).resolve().parent.parent


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for localhost / 127.0.0.1: (ca, chain, key) files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "madoguchi test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.crt", folder / "hub.crt", folder / "hub.key"
    pem = serialization.Encoding.PEM
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def exec_start(unit: str, instance: str, env: dict[str, str]) -> list[str]:
    """The unit's ExecStart as an argv: continuation lines joined, ``%i`` and ``${NAME}``
    replaced as systemd would, the installed ``madoguchi`` replaced by this interpreter."""
    text = unit.replace("\\\n", " ")
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))

    def expand(word: str) -> str:
        word = word.replace("%i", instance)
        return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: env[m.group(1)], word)

    assert argv[0].endswith("/.venv/bin/madoguchi"), argv[0]
    return [sys.executable, "-m", "edge.cli", *(expand(w) for w in argv[1:])]


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} not open after {timeout:g} s:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def start_nginx(out: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground (``daemon off`` in the standalone file) on ``out/nginx.conf``."""
    if not Path(NGINX).exists():
        unavailable(f"{NGINX} not installed (apt-get install nginx-light)")
    check = subprocess.run([NGINX, "-t", "-q", "-p", str(out), "-c", str(out / "nginx.conf"),
                            "-e", str(out / "logs" / "error.log")],
                           capture_output=True, text=True, timeout=20, check=False)
    assert check.returncode == 0, f"nginx -t refused the generated config:\n{check.stderr}"
    return subprocess.Popen([NGINX, "-p", str(out), "-c", str(out / "nginx.conf"),
                             "-e", str(out / "logs" / "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def client_context(ca: Path, *, tls_max: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """Verifies against the test CA. With ``tls_max`` below 1.2 the client really offers the old
    protocol (minimum lowered, security level 0), so a refusal is the server's."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if tls_max is not None and tls_max < ssl.TLSVersion.TLSv1_2:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if tls_max is not None:
            ctx.maximum_version = tls_max
    return ctx


def get(port: int, path: str, ctx: ssl.SSLContext | None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request (HTTPS with ``ctx``, else plain HTTP): status, headers (lower-case), body."""
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        if ctx is not None else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()
