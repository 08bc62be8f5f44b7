"""A real ClamAV daemon for tests: its own clamd, config and signature database in a temp dir.

Why not the system's clamd: it needs the official signatures, which freshclam downloads from the
internet (not here), and the tests must not depend on what a machine happens to run. So each
test module starts one clamd on a free TCP port and a unix socket, with a database made here of
one body signature: the EICAR test string as hex (``.ndb``, matched anywhere in any file). The
daemon is the Debian package's clamd, so the protocol, limits and replies are the real ones.

The EICAR string is assembled from pieces: a file holding it whole would trip virus scanners on
developers' machines and in the repository's hosting.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port

from hub.forms.scan import ClamdClient

SIGNATURE = "Eicar-Test-Signature"


def eicar() -> bytes:
    """The 68-byte EICAR anti-virus test file (harmless; every scanner reports it)."""
    head = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
    tail = "-".join(("EICAR", "STANDARD", "ANTIVIRUS", "TEST", "FILE!$H+H*"))
    return (head + tail).encode("ascii")


def clamd_binary() -> str:
    """The clamd program; the test FAILS (never skips) without it: the attachment engine's
    promise is that every file is scanned, which no fake can show."""
    path = shutil.which("clamd") or next(
        (p for p in ("/usr/sbin/clamd", "/usr/local/sbin/clamd") if Path(p).exists()), None)
    if path is None:
        pytest.fail("clamd not installed: apt-get install clamav clamav-daemon "
                    "(provisioning/bootstrap.sh installs it)", pytrace=False)
    return path


@dataclass
class Clamd:
    """A running test clamd: TCP ``host:port`` and the unix socket ``socket_path``."""

    process: subprocess.Popen[bytes]
    folder: Path
    host: str
    port: int
    socket_path: str
    stream_max: int

    def client(self, *, unix: bool = False, **options: Any) -> ClamdClient:
        if unix:
            return ClamdClient(unix_path=self.socket_path, **options)
        return ClamdClient(host=self.host, port=self.port, **options)

    def log(self) -> str:
        path = self.folder / "clamd.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


def write_database(folder: Path) -> Path:
    """A signature database of one ``.ndb`` body signature for EICAR (target 0: any file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.ndb").write_text(f"{SIGNATURE}:0:*:{eicar().hex()}\n", "ascii")
    return folder


def start_clamd(*, stream_max: int = 2 * 1024 * 1024, threads: int = 12,
                wait: float = 60.0, temporary: Path | None = None) -> Clamd:
    """Start clamd in the foreground and return once it answers PING (it loads the database
    first). A short /tmp folder: a unix socket path must stay under 108 bytes. clamd spools
    each INSTREAM into ``temporary`` (default: in that folder) before it scans it."""
    binary = clamd_binary()
    folder = Path(tempfile.mkdtemp(prefix="clamd-"))
    db = write_database(folder / "db")
    port = free_port()
    sock = str(folder / "clamd.sock")
    conf = folder / "clamd.conf"
    conf.write_text("\n".join((
        "Foreground yes",
        f"DatabaseDirectory {db}",
        f"LocalSocket {sock}",
        "TCPAddr 127.0.0.1",
        f"TCPSocket {port}",
        f"LogFile {folder / 'clamd.log'}",
        f"PidFile {folder / 'clamd.pid'}",
        f"TemporaryDirectory {temporary or folder}",
        f"StreamMaxLength {stream_max}",
        f"MaxThreads {threads}",
        "MaxQueue 200",
        "SelfCheck 0",
        "",
    )), "ascii")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    clamd = Clamd(process, folder, "127.0.0.1", port, sock, stream_max)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = clamd.log()
            clamd.stop()
            pytest.fail(f"clamd exited with {process.returncode}:\n{log[-2000:]}", pytrace=False)
        if _pong("127.0.0.1", port):
            return clamd
        time.sleep(0.1)
    log = clamd.log()
    clamd.stop()
    pytest.fail(f"clamd did not answer PING within {wait} s:\n{log[-2000:]}", pytrace=False)


def _pong(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


def pdf(size: int = 2048, text: bytes = b"madoguchi") -> bytes:
    """A well-formed one-page PDF of ``size`` bytes at least, exactly when it is not smaller
    than the bare document (padded with drawing operators, then line breaks after %%EOF)."""
    content = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    pad = max(0, size - 600 - len(content))
    content += b"\n" + b"0 0 m\n" * (pad // 6)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out) + b"\n" * max(0, size - len(out))


def png(width: int = 4, height: int = 4) -> bytes:
    """A valid grey PNG (made with zlib, no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack("!I", len(data)) + kind + data
                + struct.pack("!I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack("!IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
