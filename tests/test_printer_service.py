"""The printer service: prints after status checks, reports faults, never prints late."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.devices.health import HealthBoard
from edge.devices.printer.service import PrinterService
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile
from edge.devices.transport.sim import SIMS, sim_device

PROFILE = PrinterProfile(
    id="test-kanji", kind="printer", vendor="Test", name="Kanji printer", notes="test",
    escpos_profile="TM-T88V", japanese="kanji", paper_width_dots=576,
)


def ticket(number: int) -> TicketPrint:
    return TicketPrint(
        number=number, service_code="A", service_name="住民異動", site_name="練馬",
        issued_at=datetime(2026, 11, 21, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo")), ahead=3,
        estimate_min=(5, 12), guidance="", qr_payload="https://q.example/t/abcdefgh", lang="ja",
    )


def fake_render(_p: PrinterProfile, t: TicketPrint) -> bytes:
    return b"\x1b@TICKET %d\x1dV\x01" % t.number


@pytest.fixture
async def printer() -> PrinterService:
    SIMS.clear()
    board = HealthBoard()
    svc = PrinterService("p1", PROFILE, "sim://p1", board, kiosk="k1", renderer=fake_render)
    await svc.start()
    yield svc
    await svc.stop()


async def test_prints_and_reports_ok(printer: PrinterService) -> None:
    result = await printer.print_ticket(ticket(7))
    assert result.printed
    assert result.reason is None
    assert b"TICKET 7" in sim_device("p1").printed
    h = printer.board.get("p1")
    assert h is not None
    assert (h.state, h.reason, h.bound_to) == ("ok", None, "k1")


async def test_paper_out_refuses_before_sending_and_recovers(printer: PrinterService) -> None:
    sim = sim_device("p1")
    sim.faults.paper_out = True
    result = await printer.print_ticket(ticket(8))
    assert not result.printed
    assert result.reason == "paper_out"
    assert b"TICKET 8" not in sim.received  # nothing buffered to come out later
    view = result.view()
    assert view["message"] == {"en": "Out of paper", "ja": "用紙切れです"}
    h = printer.board.get("p1")
    assert h is not None
    assert (h.state, h.reason) == ("error", "paper_out")
    sim.faults.paper_out = False
    assert (await printer.print_ticket(ticket(9))).printed
    assert printer.board.get("p1").state == "ok"  # type: ignore[union-attr]


async def test_near_end_prints_but_degrades(printer: PrinterService) -> None:
    sim_device("p1").faults.paper_near_end = True
    result = await printer.print_ticket(ticket(10))
    assert result.printed
    assert result.reason == "paper_near_end"  # printed, with a note for staff
    h = printer.board.get("p1")
    assert h is not None
    assert (h.state, h.reason) == ("degraded", "paper_near_end")


async def test_unplugged_mid_ticket_is_reported_then_reconnects(printer: PrinterService) -> None:
    sim = sim_device("p1")
    await printer.print_ticket(ticket(1))
    sim.faults.fail_after = 5
    result = await printer.print_ticket(ticket(2))
    assert not result.printed
    assert result.reason == "unplugged"
    assert printer.board.get("p1").state == "offline"  # type: ignore[union-attr]
    sim.faults.unplugged = False
    for _ in range(50):  # backoff starts at 0.5 s
        result = await printer.print_ticket(ticket(3))
        if result.printed:
            break
        await asyncio.sleep(0.1)
    assert result.printed
    assert printer.board.get("p1").state == "ok"  # type: ignore[union-attr]


async def test_slow_link_a_started_job_is_awaited_an_unstarted_one_dropped(
        printer: PrinterService) -> None:
    sim = sim_device("p1")
    await printer.print_ticket(ticket(1))
    sim.faults.slow_s = 0.6  # each write (status request, ticket) takes 0.6 s
    first, second = await asyncio.gather(printer.print_ticket(ticket(21), timeout=1.0),
                                         printer.print_ticket(ticket(22), timeout=1.0))
    # 21 had started when the kiosk's wait ran out: its answer is the truth, not "timeout"
    assert first.printed
    assert b"TICKET 21" in sim.printed
    # 22 never started: the kiosk was told it failed, so it must never come out later
    assert second.reason == "timeout"
    sim.faults.slow_s = 0.0
    assert (await printer.print_ticket(ticket(23))).printed
    assert b"TICKET 22" not in sim.received


async def test_an_unexpected_driver_error_does_not_kill_the_printer(
        printer: PrinterService, monkeypatch: pytest.MonkeyPatch) -> None:
    await printer.print_ticket(ticket(1))
    transport = printer._transport

    async def broken(_data: bytes) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(transport, "write", broken)
    result = await printer.print_ticket(ticket(2))
    assert not result.printed
    assert result.reason == "printer_error"
    assert printer.board.get("p1").state == "error"  # type: ignore[union-attr]
    monkeypatch.undo()
    for _ in range(50):
        result = await printer.print_ticket(ticket(3))
        if result.printed:
            break
        await asyncio.sleep(0.1)
    assert result.printed


async def test_file_printer_prints_without_a_status_channel(tmp_path: Path) -> None:
    board = HealthBoard()
    out = tmp_path / "lp0"
    svc = PrinterService("p4", PROFILE, f"file://{out}", board, renderer=fake_render)
    await svc.start()
    try:
        assert (await svc.print_ticket(ticket(6))).printed
        assert b"TICKET 6" in out.read_bytes()
        assert b"\x10\x04" not in out.read_bytes()  # nobody could answer a status request
        assert board.get("p4").detail == "status not readable"  # type: ignore[union-attr]
    finally:
        await svc.stop()


async def test_printer_without_status_support_just_prints() -> None:
    SIMS.clear()
    board = HealthBoard()
    blind = PROFILE.model_copy(update={"status": "none"})
    svc = PrinterService("p2", blind, "sim://p2", board, renderer=fake_render)
    await svc.start()
    try:
        assert (await svc.print_ticket(ticket(4))).printed
        assert b"\x10\x04" not in sim_device("p2").received
    finally:
        await svc.stop()


async def test_absent_usb_printer_fails_fast_as_offline() -> None:
    board = HealthBoard()
    svc = PrinterService("p3", PROFILE, "usb://04b8:0202", board, renderer=fake_render)
    await svc.start()
    try:
        result = await svc.print_ticket(ticket(5), timeout=2.0)
        assert not result.printed
        assert result.reason in ("unplugged", "not_found")
        assert board.get("p3").state == "offline"  # type: ignore[union-attr]
    finally:
        await svc.stop()
