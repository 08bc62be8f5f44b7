"""One ticket printer: a print queue, status polling, health, and reconnect with backoff.

Why a service of its own: the queue engine must never wait on paper. A ticket is committed
first; then its print job lands here. If the printer is out of paper, unplugged or silent, the
job fails quickly with a reason the kiosk can show, while the visitor keeps the number on screen.
Jobs never print late by surprise: one that was not started before its caller gave up is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.devices.health import HealthBoard, reason
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile
from edge.devices.transport import Transport, TransportError, make_transport

_LOGGER = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 0.5  # a TM-T88 answers DLE EOT within a few ms
STARTED_GRACE_S = 15.0  # a job already sending is waited for: its answer must be the truth
POLL_S = 10.0  # idle status poll (paper near end, cover) and reconnect check
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0

Renderer = Callable[[PrinterProfile, TicketPrint], bytes]


@dataclass(frozen=True, slots=True)
class PrintResult:
    """What became of one print job; ``reason`` is a health code (see health.REASONS)."""

    printed: bool
    reason: str | None = None
    printer: str | None = None

    def view(self) -> dict[str, object]:
        r = reason(self.reason) if self.reason else None
        return {"printed": self.printed, "printer": self.printer, "reason": self.reason,
                "message": None if r is None else {"en": r.en, "ja": r.ja}}


@dataclass
class _Job:
    ticket: TicketPrint
    done: asyncio.Future[PrintResult]
    started: bool = False
    queued_at: float = field(default_factory=time.perf_counter)


class PrinterService:
    def __init__(self, device_id: str, profile: PrinterProfile, url: str, board: HealthBoard, *,
                 kiosk: str | None = None, preview_dir: Path | None = None,
                 renderer: Renderer | None = None) -> None:
        self.id, self.profile, self.url = device_id, profile, url
        self.board = board
        self.preview_dir = preview_dir
        self._render = renderer
        board.register(device_id, "printer", bound_to=kiosk)
        self._transport: Transport = make_transport(url)
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._backoff = BACKOFF_MIN_S
        self._next_attempt = 0.0
        self.printed = 0
        self.render_s: deque[float] = deque(maxlen=1000)  # per ticket, for the benchmark

    # --- public ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._render is None:  # python-escpos parses its capability file on first use (~1 s)
            from edge.devices.printer.codec import warm_up

            await asyncio.to_thread(warm_up)
        self._task = asyncio.create_task(self._run(), name=f"printer-{self.id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if not job.done.done():
                job.done.set_result(PrintResult(False, "unplugged", self.id))
        await self._transport.close()

    async def print_ticket(self, ticket: TicketPrint, timeout: float = 5.0) -> PrintResult:
        """Queue a ticket and wait for the outcome.

        A job not started within ``timeout`` is dropped (it will never print late). A job
        already sending is waited for (bounded by the transport's own timeouts), so that the
        kiosk is never told "not printed" about a ticket that then comes out.
        """
        job = _Job(ticket, asyncio.get_running_loop().create_future())
        self._jobs.put_nowait(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job.done), timeout)
        except TimeoutError:
            if not job.started:
                job.done.cancel()
                return PrintResult(False, "timeout", self.id)
        try:
            return await asyncio.wait_for(asyncio.shield(job.done), STARTED_GRACE_S)
        except TimeoutError:
            return PrintResult(False, "timeout", self.id)

    # --- worker ----------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._connect()
        while True:
            try:
                job = await asyncio.wait_for(self._jobs.get(), POLL_S)
            except TimeoutError:
                await self._poll()
                continue
            if job.done.done():  # its caller gave up before we got to it
                continue
            job.started = True
            try:
                result = await self._print(job.ticket)
            except Exception as exc:  # whatever breaks, the printer service must live on
                _LOGGER.exception("printer %s: job failed", self.id)
                self.board.report(self.id, "error", "printer_error", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await self._transport.close()
                result = PrintResult(False, "printer_error", self.id)
            if not job.done.done():
                job.done.set_result(result)

    async def _connect(self) -> bool:
        if self._transport.is_open:
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        try:
            await self._transport.open()
        except Exception as exc:  # TransportError, or a driver's own error (e.g. USBError)
            self._next_attempt = now + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            why, detail = (exc.reason, exc.detail) if isinstance(exc, TransportError) \
                else ("unplugged", f"{type(exc).__name__}: {exc}")
            self.board.report(self.id, "offline", why, detail)
            return False
        self._backoff = BACKOFF_MIN_S
        await self._poll()
        return True

    async def _poll(self) -> tuple[str, str | None]:
        """Read the printer's real-time status into the health board; returns (state, reason)."""
        if not self._transport.is_open and not await self._connect():
            h = self.board.get(self.id)
            return ("offline", h.reason if h else "unplugged")
        if self.profile.status != "dle-eot" or not self._transport.answers:
            # no status channel (a Star TSP143, or file:///dev/usb/lp0): connected is all we know
            self.board.report(self.id, "ok", None, "status not readable")
            return ("ok", None)
        from edge.devices.printer.codec import parse_status, status_request

        try:
            await self._drain()
            await self._transport.write(status_request())
            answer = await self._read_exact(4)
        except TransportError as exc:
            self.board.report(self.id, "offline", exc.reason, exc.detail)
            return ("offline", exc.reason)
        if len(answer) < 4:
            self.board.report(self.id, "error", "timeout", f"{len(answer)}/4 status bytes")
            return ("error", "timeout")
        try:
            state, why = parse_status(answer).health()
        except ValueError as exc:
            self.board.report(self.id, "error", "printer_error", str(exc))
            return ("error", "printer_error")
        self.board.report(self.id, state, why)
        return (state, why)

    async def _drain(self) -> None:
        """Drop stale bytes (a late status answer) so the next answer is read in step."""
        while await self._transport.read(64, 0.0):
            pass

    async def _read_exact(self, n: int) -> bytes:
        out = b""
        deadline = time.monotonic() + STATUS_TIMEOUT_S
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            out += await self._transport.read(n - len(out), left)
        return out

    async def _print(self, ticket: TicketPrint) -> PrintResult:
        state, why = await self._poll()
        if state in ("offline", "error"):
            return PrintResult(False, why or "unplugged", self.id)
        t0 = time.perf_counter()
        try:
            data = await asyncio.to_thread(self._render_bytes, ticket)
        except Exception:
            _LOGGER.exception("rendering ticket %s failed", ticket.number)
            self.board.report(self.id, "error", "printer_error", "render failed")
            return PrintResult(False, "printer_error", self.id)
        self.render_s.append(time.perf_counter() - t0)
        try:
            await self._transport.write(data)
        except TransportError as exc:
            self.board.report(self.id, "offline", exc.reason, exc.detail)
            return PrintResult(False, exc.reason, self.id)
        state, why = await self._poll()  # paper may have run out during this ticket
        if state in ("offline", "error"):
            return PrintResult(False, why or "printer_error", self.id)
        self.printed += 1
        if self.preview_dir is not None:
            await asyncio.to_thread(self._save_preview, ticket, data)
        return PrintResult(True, why, self.id)  # why: e.g. paper_near_end, a note for staff

    def _render_bytes(self, ticket: TicketPrint) -> bytes:
        if self._render is not None:
            return self._render(self.profile, ticket)
        from edge.devices.printer.codec import render

        return render(self.profile, ticket)

    def _save_preview(self, ticket: TicketPrint, data: bytes) -> None:
        """The demo's 'paper': a PNG of exactly the bytes sent, made by the virtual printer."""
        from edge.devices.printer.preview import preview_png

        assert self.preview_dir is not None
        self.preview_dir.mkdir(parents=True, exist_ok=True)
        name = f"{ticket.issued_at:%Y%m%d-%H%M%S}-{ticket.service_code}-{ticket.number}.png"
        try:
            preview_png(data, self.profile.paper_width_dots).save(self.preview_dir / name)
        except Exception:
            _LOGGER.exception("could not save the preview of ticket %s", ticket.number)
