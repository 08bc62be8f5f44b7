"""Virus scanning of form attachments with a running ClamAV daemon (clamd), fail closed.

Why clamd and its INSTREAM command: the hub never writes an unscanned upload to disk (F3), so
the bytes go to clamd over its socket, in length-prefixed chunks, and clamd answers
``stream: OK``, ``stream: <signature> FOUND`` or ``<why> ERROR``. One connection per scan (clamd
serves each connection on its own thread; a shared connection would serialise every resident's
upload) and a semaphore bounds how many run at once, so a burst of uploads queues here instead
of overrunning clamd's ``MaxThreads``/``MaxQueue``.

Anything that is not a well-formed ``OK`` is not clean: no daemon, a timeout, a cut connection,
a reply we do not understand. The caller refuses the file then (``clean`` is the only verdict
that accepts). Results carry a stable reason code, like ``edge.devices.health``, that screens
translate; the signature name is ClamAV's, never anything of the file's content.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

_LOGGER = logging.getLogger(__name__)

Verdict = Literal["clean", "infected", "error"]
CHUNK = 256 * 1024  # per INSTREAM frame; clamd reads each frame into its stream buffer
_REPLY_MAX = 4096  # a reply is one short line; more is not clamd


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a scan gave no verdict: a stable code for programs, and a sentence for staff."""

    code: str
    en: str
    ja: str


# The reasons a scan fails; the form pages show residents their own texts by code.
REASONS: dict[str, Reason] = {r.code: r for r in (
    Reason("scanner_unavailable", "The virus scanner cannot be reached",
           "ウイルス検査サービスに接続できません"),
    Reason("scanner_timeout", "The virus scanner did not answer in time",
           "ウイルス検査サービスが時間内に応答しません"),
    Reason("scan_size_limit", "The file is larger than the virus scanner accepts (StreamMaxLength)",
           "ファイルがウイルス検査の上限サイズ（StreamMaxLength）を超えています"),
    Reason("scanner_error", "The virus scanner reported an error",
           "ウイルス検査サービスがエラーを返しました"),
    Reason("scanner_protocol", "The virus scanner gave an answer that cannot be understood",
           "ウイルス検査サービスの応答を解釈できません"),
)}


def reason(code: str) -> Reason:
    return REASONS.get(code) or Reason(code, code.replace("_", " "), code)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One scan's outcome. ``signature`` only when infected, ``reason`` only on error."""

    verdict: Verdict
    signature: str | None = None
    reason: str | None = None
    detail: str = ""  # for staff and logs: clamd's own words or the OS error

    @property
    def clean(self) -> bool:
        return self.verdict == "clean"


def error(code: str, detail: str = "") -> ScanResult:
    return ScanResult("error", reason=code, detail=detail)


def instream_frames(data: bytes, chunk: int = CHUNK) -> Iterator[bytes]:
    """The INSTREAM body: each chunk prefixed by its length (4 bytes, big-endian), then a
    zero length that tells clamd the stream has ended."""
    if chunk <= 0:
        raise ValueError("chunk size must be positive")
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        part = view[start:start + chunk]
        yield struct.pack("!I", len(part)) + part.tobytes()
    yield struct.pack("!I", 0)


def parse_reply(raw: bytes) -> ScanResult:
    """clamd's answer to ``zINSTREAM`` (NUL-terminated). Anything else than ``stream: OK`` or
    ``stream: <name> FOUND`` is an error: the file is never taken as clean by default."""
    text = raw.rstrip(b"\0\n").decode("utf-8", "replace")
    if text.endswith(" ERROR"):
        what = text[:-len(" ERROR")].strip()
        if "size limit" in what.lower():
            return error("scan_size_limit", what)
        return error("scanner_error", what)
    if text == "stream: OK":
        return ScanResult("clean")
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        name = text[len("stream: "):-len(" FOUND")].strip()
        if name:
            return ScanResult("infected", signature=name)
    return error("scanner_protocol", text[:200])


class ClamdClient:
    """A clamd at a unix socket (``unix_path``) or at ``host:port`` over TCP.

    ``concurrency`` bounds the scans in flight (at most clamd's ``MaxThreads``, 12 in Debian's
    clamd.conf: fewer leaves clamd idle while uploads wait, more only queues inside clamd);
    ``timeout`` bounds one scan including its wait for a slot, ``connect_timeout`` the
    connection alone. ``max_stream`` mirrors clamd's ``StreamMaxLength``: a larger file is
    refused here without sending it (clamd would cut the connection half-way)."""

    def __init__(self, *, unix_path: str | None = None, host: str | None = None,
                 port: int = 3310, concurrency: int = 12, timeout: float = 30.0,
                 connect_timeout: float = 3.0, max_stream: int | None = None,
                 chunk: int = CHUNK) -> None:
        if (unix_path is None) == (host is None):
            raise ValueError("give clamd either a unix socket path or a TCP host")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.unix_path, self.host, self.port = unix_path, host, port
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.max_stream, self.chunk = max_stream, chunk
        self._slots = asyncio.Semaphore(concurrency)

    @classmethod
    def from_address(cls, address: str, **options: Any) -> ClamdClient:
        """``/run/clamav/clamd.ctl`` (or ``unix:/…``) for a socket, ``host:port`` or
        ``tcp://host:port`` for TCP: the form a ward writes in its settings."""
        address = address.strip()
        if address.startswith("unix:"):
            address = address[len("unix:"):].removeprefix("//")
        if address.startswith("/"):
            return cls(unix_path=address, **options)
        address = address.removeprefix("tcp://")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"not a clamd address: {address!r}")
        return cls(host=host.strip("[]"), port=int(port), **options)

    @property
    def address(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"{self.host}:{self.port}"

    async def _connect(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        if self.unix_path is not None:
            family: int = socket.AF_UNIX
            address: str | tuple[Any, ...] = self.unix_path
        else:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), self.connect_timeout)
        except TimeoutError:  # no daemon answering: unavailable, not a slow scan
            sock.close()
            raise ConnectionError(f"no connection in {self.connect_timeout} s") from None
        except BaseException:
            sock.close()
            raise
        return sock

    async def _command(self, command: bytes, body: Iterable[bytes] = ()) -> bytes:
        """Send ``z<command>\\0`` and the body on a new connection; clamd's NUL-ended reply.

        Plain sockets rather than asyncio streams: when a stream is over clamd's limit, clamd
        answers and closes while we still write; a stream transport would then drop the reply
        that is waiting in the socket, a socket still lets us read it."""
        loop = asyncio.get_running_loop()
        sock = await self._connect()
        try:
            try:
                await loop.sock_sendall(sock, b"z" + command + b"\0")
                for frame in body:
                    await loop.sock_sendall(sock, frame)
            except (BrokenPipeError, ConnectionResetError):
                pass  # clamd stopped reading: its reply says why
            reply = bytearray()
            while b"\0" not in reply and len(reply) <= _REPLY_MAX:
                try:
                    part = await loop.sock_recv(sock, 4096)
                except ConnectionResetError:
                    break
                if not part:
                    break
                reply += part
            return bytes(reply)
        finally:
            sock.close()

    async def ping(self) -> bool:
        """True when clamd answers PONG within ``connect_timeout`` (for health pages)."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                return (await self._command(b"PING")).rstrip(b"\0\n") == b"PONG"
        except (OSError, TimeoutError):
            return False

    async def version(self) -> str | None:
        """clamd's ``ClamAV <engine>/<signature version>/<signature date>``, None when it does
        not answer: the health page shows how old the signatures are (freshclam stalled?)."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                reply = (await self._command(b"VERSION")).rstrip(b"\0\n")
        except (OSError, TimeoutError):
            return None
        text = reply.decode("utf-8", "replace")
        return text if text.startswith("ClamAV ") else None

    async def scan(self, data: bytes) -> ScanResult:
        """Scan ``data`` (held in memory by the caller); never raises for scanner trouble."""
        if self.max_stream is not None and len(data) > self.max_stream:
            return error("scan_size_limit", f"{len(data)} bytes > {self.max_stream}")
        try:
            async with asyncio.timeout(self.timeout):
                async with self._slots:
                    raw = await self._command(b"INSTREAM", instream_frames(data, self.chunk))
        except TimeoutError:
            result = error("scanner_timeout", f"no answer from {self.address} in {self.timeout} s")
        except OSError as exc:
            result = error("scanner_unavailable",
                           f"{self.address}: {exc.strerror or type(exc).__name__}")
        else:
            result = parse_reply(raw) if raw else error("scanner_unavailable",
                                                         "connection closed without a reply")
        if result.verdict == "error":
            _LOGGER.warning("clamd %s: %s (%s)", self.address, result.reason, result.detail)
        return result
