"""Transports: every scheme opens, writes, reads and fails with a health reason, never hangs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.devices.transport import TransportError, make_transport
from edge.devices.transport.sim import SIMS, sim_device


@pytest.fixture(autouse=True)
def _fresh_sims() -> None:
    SIMS.clear()


@pytest.mark.parametrize(("url", "message"), [
    ("gopher://x", "unknown scheme"),
    ("usb://04b8", "VID:PID"),
    ("usb://zzzz:0202", "VID:PID"),
    ("tcp://:9100", "needs a host"),
    ("serial:", "needs a port"),
])
def test_malformed_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_transport(url)


async def test_sim_answers_dle_eot_from_its_fault_switches() -> None:
    t = make_transport("sim://p1")
    await t.open()
    await t.write(b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04")
    assert await t.read(4, 0.5) == bytes([0x12, 0x12, 0x12, 0x12])
    dev = sim_device("p1")
    dev.faults.paper_out = True
    await t.write(b"\x10\x04\x04\x10\x04\x02")
    assert await t.read(2, 0.5) == bytes([0x12 | 0x0C | 0x60, 0x12 | 0x20 | 0x40])
    dev.faults.paper_out, dev.faults.cover_open = False, True
    await t.write(b"\x10\x04\x02")
    assert await t.read(1, 0.5) == bytes([0x12 | 0x04 | 0x40])
    assert await t.read(1, 0.05) == b""  # nothing more: a read times out quietly


async def test_sim_unplugged_mid_write_keeps_the_part_that_arrived() -> None:
    t = make_transport("sim://p2")
    await t.open()
    dev = sim_device("p2")
    dev.faults.fail_after = 10
    with pytest.raises(TransportError) as err:
        await t.write(b"x" * 50)
    assert err.value.reason == "unplugged"
    assert bytes(dev.received) == b"x" * 10
    assert not t.is_open
    with pytest.raises(TransportError):
        await t.open()
    dev.faults.unplugged = False
    await t.open()
    await t.write(b"ok")
    assert dev.printed.endswith(b"ok")


async def test_sim_paper_out_accepts_bytes_but_prints_nothing() -> None:
    t = make_transport("sim://p3")
    await t.open()
    dev = sim_device("p3")
    dev.faults.paper_out = True
    await t.write(b"ticket")
    assert bytes(dev.received) == b"ticket"
    assert bytes(dev.printed) == b""


async def test_tcp_port_9100_round_trip_and_refused_connection(unused_tcp_port: int) -> None:
    got = bytearray()

    async def printer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        got.extend(data)
        writer.write(b"\x12")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(printer, "127.0.0.1", unused_tcp_port)
    async with server:
        t = make_transport(f"tcp://127.0.0.1:{unused_tcp_port}")
        await t.open()
        await t.write(b"\x10\x04\x01")
        assert await t.read(1, 1.0) == b"\x12"
        await t.close()
    assert bytes(got) == b"\x10\x04\x01"
    closed = make_transport(f"tcp://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(TransportError) as err:
        await closed.open()
    assert err.value.reason == "unplugged"


async def test_file_transport_appends_and_reports_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "lp0"
    t = make_transport(f"file://{out}")
    await t.open()
    await t.write(b"abc")
    await t.write(b"def")
    assert await t.read(1, 0.01) == b""
    await t.close()
    assert out.read_bytes() == b"abcdef"
    bad = make_transport(f"file://{tmp_path}/missing/lp0")
    with pytest.raises(TransportError) as err:
        await bad.open()
    assert err.value.reason == "not_found"


async def test_serial_loop_url_echoes() -> None:
    t = make_transport("serial:loop://?baudrate=19200")
    await t.open()
    await t.write(b"\x02hello\x03")
    assert await t.read(16, 0.5) == b"\x02hello\x03"
    await t.close()


async def test_serial_missing_port_is_not_found() -> None:
    t = make_transport("serial:///dev/ttyUSB-madoguchi-none")
    with pytest.raises(TransportError) as err:
        await t.open()
    assert err.value.reason == "not_found"


async def test_usb_printer_absent_is_reported_not_raised_raw() -> None:
    t = make_transport("usb://04b8:0202")
    with pytest.raises(TransportError) as err:
        await t.open()
    assert err.value.reason in ("unplugged", "not_found")  # no USB bus at all on CI machines
