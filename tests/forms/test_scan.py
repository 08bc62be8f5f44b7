"""The clamd client against a real clamd (started by the test) and against broken ones.

What must hold: EICAR is found over TCP and over the unix socket; a clean file is clean; and
every way a scanner can fail — not running, not answering, cut off, talking nonsense, a stream
over its limit — is an error with its reason code, never ``clean`` (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from clamd_support import SIGNATURE, Clamd, eicar, pdf, start_clamd
from conftest import free_port
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.scan import REASONS, ClamdClient, instream_frames, parse_reply, reason


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[ClamdClient]:
    """A fake clamd at a free port that runs ``handler`` for each connection."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield ClamdClient(host="127.0.0.1", port=port, timeout=1.0, connect_timeout=1.0)
    finally:
        server.close()
        await server.wait_closed()


async def test_ping_over_tcp_and_unix_socket(clamd: Clamd) -> None:
    assert await clamd.client().ping()
    assert await clamd.client(unix=True).ping()
    assert not await ClamdClient(host="127.0.0.1", port=free_port()).ping()
    version = await clamd.client(unix=True).version()
    assert version is not None
    assert version.startswith("ClamAV ")
    assert await ClamdClient(host="127.0.0.1", port=free_port()).version() is None


@pytest.mark.parametrize("unix", [False, True])
async def test_eicar_is_found_and_a_clean_pdf_is_clean(clamd: Clamd, unix: bool) -> None:
    client = clamd.client(unix=unix)
    found = await client.scan(eicar())
    assert found.verdict == "infected"
    assert not found.clean
    assert found.signature is not None
    assert found.signature.startswith(SIGNATURE)
    inside = await client.scan(pdf(text=eicar()))  # the signature matches anywhere
    assert inside.verdict == "infected"
    clean = await client.scan(pdf())
    assert clean.clean
    assert clean.signature is None
    assert clean.reason is None


@pytest.mark.parametrize("unix", [False, True])
async def test_a_stream_over_clamds_limit_is_refused_by_clamd(clamd: Clamd, unix: bool) -> None:
    """clamd cuts the connection while we write; its reply is still read and understood."""
    result = await clamd.client(unix=unix).scan(b"\0" * (clamd.stream_max + 1))
    assert (result.verdict, result.reason) == ("error", "scan_size_limit")
    assert not result.clean
    # one byte under the limit is scanned
    assert (await clamd.client(unix=unix).scan(b"\0" * (clamd.stream_max - 8))).clean


async def test_max_stream_refuses_without_contacting_the_scanner() -> None:
    client = ClamdClient(host="127.0.0.1", port=free_port(), max_stream=100)
    result = await client.scan(b"x" * 101)
    assert result.reason == "scan_size_limit"  # not scanner_unavailable: nothing was sent


async def test_a_scanner_that_is_down_is_unavailable() -> None:
    down = await ClamdClient(host="127.0.0.1", port=free_port()).scan(pdf())
    assert (down.verdict, down.reason) == ("error", "scanner_unavailable")
    missing = str(Path(tempfile.gettempdir()) / "no-such-clamd" / "clamd.sock")
    gone = await ClamdClient(unix_path=missing).scan(pdf())
    assert (gone.verdict, gone.reason) == ("error", "scanner_unavailable")


async def test_a_scanner_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the whole stream, says nothing
        await asyncio.sleep(5)
        writer.close()

    async with _server(silent) as client:
        result = await client.scan(pdf())
        assert (result.verdict, result.reason) == ("error", "scanner_timeout")


@pytest.mark.parametrize("reply", [b"stream: maybe\0", b"stream:  FOUND\0", b"OK\0",
                                   b"stream: OK but not quite\0", b""])
async def test_a_reply_that_is_not_clamds_is_never_clean(reply: bytes) -> None:
    async def odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(b"zINSTREAM\0"))
        writer.write(reply)
        await writer.drain()
        writer.close()

    async with _server(odd) as client:
        result = await client.scan(b"hello")
        assert result.verdict == "error"
        assert not result.clean
        assert result.reason in ("scanner_protocol", "scanner_unavailable")


async def test_concurrency_is_bounded_by_the_semaphore() -> None:
    """A burst queues in the client: never more connections than ``concurrency`` at once."""
    live, peak = 0, 0

    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await reader.readexactly(len(b"zINSTREAM\0"))
        while (n := struct.unpack("!I", await reader.readexactly(4))[0]) != 0:
            await reader.readexactly(n)
        await asyncio.sleep(0.05)
        live -= 1
        writer.write(b"stream: OK\0")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_ok, "127.0.0.1", 0)
    try:
        client = ClamdClient(host="127.0.0.1", port=server.sockets[0].getsockname()[1],
                             concurrency=3, timeout=10)
        results = await asyncio.gather(*(client.scan(b"%d" % i) for i in range(12)))
    finally:
        server.close()
        await server.wait_closed()
    assert all(r.clean for r in results)
    assert peak == 3


def test_addresses_as_a_ward_writes_them() -> None:
    assert ClamdClient.from_address("/run/clamav/clamd.ctl").unix_path == "/run/clamav/clamd.ctl"
    assert ClamdClient.from_address("unix:///run/clamav/clamd.ctl").unix_path == \
        "/run/clamav/clamd.ctl"
    tcp = ClamdClient.from_address("tcp://10.0.0.5:3310", concurrency=4)
    assert (tcp.host, tcp.port, tcp.unix_path) == ("10.0.0.5", 3310, None)
    assert ClamdClient.from_address("[::1]:3310").host == "::1"
    with pytest.raises(ValueError, match="not a clamd address"):
        ClamdClient.from_address("clamd")
    with pytest.raises(ValueError, match="either a unix socket path or a TCP host"):
        ClamdClient()


def test_every_error_code_has_both_languages() -> None:
    for code, r in REASONS.items():
        assert r.code == code
        assert r.en
        assert r.ja
        assert r.ja != r.en
    assert reason("made_up").code == "made_up"


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_instream_frames_carry_exactly_the_bytes(data: bytes, chunk: int) -> None:
    stream = b"".join(instream_frames(data, chunk))
    out, at = bytearray(), 0
    while True:
        (n,) = struct.unpack("!I", stream[at:at + 4])
        at += 4
        if n == 0:
            break
        assert n <= chunk
        out += stream[at:at + n]
        at += n
    assert at == len(stream)
    assert bytes(out) == data


@given(st.binary(max_size=80))
def test_only_stream_ok_is_clean(reply: bytes) -> None:
    result = parse_reply(reply)
    assert result.clean == (reply.rstrip(b"\0\n") == b"stream: OK")
    if result.verdict == "infected":
        assert result.signature
    else:
        assert result.signature is None


def test_replies_clamd_gives() -> None:
    assert parse_reply(b"stream: OK\0").clean
    found = parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0")
    assert (found.verdict, found.signature) == ("infected", "Win.Test.EICAR_HDB-1")
    limit = parse_reply(b"INSTREAM size limit exceeded. ERROR\0")
    assert limit.reason == "scan_size_limit"
    other = parse_reply(b"lstat() failed: No such file or directory. ERROR\0")
    assert other.reason == "scanner_error"
    assert "lstat" in other.detail
