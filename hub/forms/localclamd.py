"""A private ClamAV daemon: its own clamd, config and one-signature database in a temp dir.

For the tests, ``madoguchi bench forms`` and ``madoguchi demo``: the system's clamd needs the
official signatures, which freshclam downloads from the internet, and a demo or a test must not
depend on what a machine happens to run. The database is one body signature, the EICAR test
string as hex (``.ndb``, matched anywhere in any file); the daemon is the Debian package's
clamd, so the protocol, limits and replies are the real ones. Production uses the system's
clamd with freshclam's signatures (README.md), never this.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.forms.samples import eicar
from hub.forms.scan import ClamdClient

SIGNATURE = "Eicar-Test-Signature"


class ClamdMissing(RuntimeError):
    """No clamd program, or it did not start (the message says which, with its log)."""


def clamd_binary() -> str:
    """The clamd program, or ClamdMissing."""
    path = shutil.which("clamd") or next(
        (p for p in ("/usr/sbin/clamd", "/usr/local/sbin/clamd") if Path(p).exists()), None)
    if path is None:
        raise ClamdMissing("clamd not installed: apt-get install clamav clamav-daemon "
                           "(provisioning/bootstrap.sh installs it)")
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
    port = _free_port()
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
            raise ClamdMissing(f"clamd exited with {process.returncode}:\n{log[-2000:]}")
        if _pong("127.0.0.1", port):
            return clamd
        time.sleep(0.1)
    log = clamd.log()
    clamd.stop()
    raise ClamdMissing(f"clamd did not answer PING within {wait} s:\n{log[-2000:]}")


def _pong(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
