"""Wires counter hardware to the queue engine: committed events out, operator input in.

Devices hear about a change only after its commit (the writer's listener), and they never block
it: each device service has its own queue and task. Operator input from scanners and keypads
goes back in as ordinary commands through the same single writer as the browser panel's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge.devices.health import HealthBoard
from edge.devices.printer.service import PrinterService, PrintResult
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import DisplayProfile, PrinterProfile
from edge.domain import commands as c
from edge.domain.model import DeviceSpec, SiteConfig
from edge.domain.state import State
from edge.domain.views import ticket_view
from edge.protocol import Envelope
from edge.store.writer import Writer

_LOGGER = logging.getLogger(__name__)
CANCEL_ARMED_S = 15.0  # keypad cancel, then a scan within this time cancels that ticket
PRINT_WAIT_S = 4.0  # how long the kiosk waits for "printed" before showing the number anyway

# events after which a counter's display may show something else
DISPLAY_EVENTS = frozenset({"TicketCalled", "TicketRecalled", "TicketFinished", "TicketAbsent",
                            "TicketHeld", "TicketTransferred", "TicketCancelled",
                            "CounterClosed", "DayClosed"})


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class CounterInput:
    """The last refusal an operator's keypad or scanner got, for the operator panel."""

    counter: str
    code: str
    message: str
    message_ja: str
    at: str


@dataclass
class DeviceManager:
    writer: Writer
    config: SiteConfig
    profiles: dict[str, Any]
    preview_dir: Path | None = None
    voice_cache: Path | None = None  # pre-rendered calls; beside the site's database
    board: HealthBoard = field(default_factory=HealthBoard)
    printers: dict[str, PrinterService] = field(default_factory=dict)  # by kiosk id
    displays: list[tuple[Any, frozenset[str]]] = field(default_factory=list)  # (service, counters)
    services: list[Service] = field(default_factory=list)
    voice: Any = None
    refusals: dict[str, CounterInput] = field(default_factory=dict)
    cancel_armed: dict[str, float] = field(default_factory=dict)  # counter -> until (monotonic)
    _prints: dict[str, asyncio.Future[PrintResult]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    # --- lifetime --------------------------------------------------------------------------

    def build(self) -> None:
        """Create the device services and listen to the writer's commits."""
        self.build_services()
        self.writer.subscribe(self.on_commit)

    def build_services(self) -> None:
        """Create a service per configured device (nothing is opened yet)."""
        for spec in self.config.devices:
            try:
                _BUILDERS[spec.kind](self, spec, self.profiles[spec.profile])
            except Exception as exc:  # one bad device must not keep the site from opening
                _LOGGER.exception("device %s cannot be set up", spec.id)
                self.board.register(spec.id, spec.kind,
                                    spec.kiosk or ",".join(spec.operated) or None)
                self.board.report(spec.id, "error", "bad_config", f"{type(exc).__name__}: {exc}")
        if self.config.voice is not None:
            try:
                _build_voice(self)
            except Exception as exc:
                _LOGGER.exception("voice cannot be set up")
                self.voice = None
                self.board.register("voice", "voice")
                self.board.report("voice", "error", "bad_config", f"{type(exc).__name__}: {exc}")

    async def start(self) -> None:
        for s in self.services:
            await s.start()
        if self.voice is not None:
            await self.voice.start({cid: dict(k.name.values)
                                    for cid, k in self.config.counters.items()})

    async def stop(self) -> None:
        if self.voice is not None:
            await self.voice.stop(drain_s=5.0)
        for s in self.services:
            try:
                await s.stop()
            except Exception:
                _LOGGER.exception("stopping a device failed")
        for t in list(self._tasks):
            t.cancel()

    # --- events from the writer ------------------------------------------------------------

    def on_commit(self, events: list[Envelope]) -> None:
        """Writer listener (on the loop, after the commit): print, display, announce."""
        counters: set[str] = set()
        for e in events:
            if e.type == "TicketIssued" and e.data.get("kiosk") in self.printers:
                self._start_print(e)
            if e.type in DISPLAY_EVENTS:
                if "counter" in e.data:
                    counters.add(e.data["counter"])
                else:  # a cancel or the day's close may free any counter
                    counters.update(self.config.counters)
            if e.type in ("TicketCalled", "TicketRecalled") and self.voice is not None:
                self._announce(e)
        if counters and self.displays:
            blink = {e.data["counter"] for e in events
                     if e.type in ("TicketCalled", "TicketRecalled")}
            shown = self.writer.read(lambda s: {cid: _current(s, cid) for cid in counters})
            for d, served in self.displays:
                for cid, number in shown.items():
                    if cid in served:
                        d.update(cid, number, blink=cid in blink)

    def _start_print(self, e: Envelope) -> None:
        printer = self.printers[e.data["kiosk"]]
        ticket = self.writer.read(lambda s: ticket_print(s, e.data["ticket"], self.config))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[PrintResult] = loop.create_future()
        self._prints[e.data["ticket"]] = fut

        async def job() -> None:
            try:
                fut.set_result(await printer.print_ticket(ticket, PRINT_WAIT_S))
            except Exception:
                _LOGGER.exception("print job failed")
                fut.set_result(PrintResult(False, "printer_error", printer.id))
            loop.call_later(60, self._prints.pop, e.data["ticket"], None)

        self._spawn(job())

    async def print_result(self, ticket_id: str, kiosk: str | None) -> dict[str, Any]:
        """What the kiosk shows after issuing: printed, or why not (the number is valid)."""
        if kiosk is None:
            return {"printed": False, "printer": None, "reason": None, "message": None}
        fut = self._prints.get(ticket_id)
        if fut is None:
            return PrintResult(False, "not_found", None).view()
        return (await fut).view()

    def _announce(self, e: Envelope) -> None:
        cid = e.data["counter"]
        info = self.writer.read(lambda s: _call_info(s, e.data["ticket"]))
        if info is None:
            return
        number, service = info
        counter = self.config.counters.get(cid)
        svc = self.config.services.get(service)
        from edge.devices.voice.templates import Announcement

        self.voice.announce(Announcement(
            number=number, counter_id=cid,
            counter_names=dict(counter.name.values) if counter else {"ja": cid, "en": cid},
            service_names=dict(svc.name.values) if svc else {},
            recall=e.type == "TicketRecalled"))

    # --- operator input --------------------------------------------------------------------

    async def command(self, counter: str, cmd: c.Command) -> bool:
        """Run an operator command from a device; a refusal is kept for the operator panel."""
        outcome = await self.writer.execute(cmd)
        if outcome.refused is None:
            self.refusals.pop(counter, None)
            return True
        r = outcome.refused
        _LOGGER.info("counter %s: device command refused: %s", counter, r.code)
        self.refusals[counter] = CounterInput(counter, r.code, r.message, r.message_ja,
                                              self.writer.clock.now().isoformat())
        return False

    async def on_scan(self, counter: str, text: str) -> None:
        """A ticket scanned at a counter (Q9, Q10): an absent ticket is cleared and called
        again; a waiting or held one is called to this counter (shown on the monitors); after
        the keypad's cancel key, the scanned ticket is cancelled instead."""
        from edge.devices.input.scan_payload import parse_scan

        ref = parse_scan(text)
        if ref is not None and self.cancel_armed.pop(counter, 0.0) > time.monotonic():
            await self.command(counter, c.Cancel(ref.number, ref.token, counter))  # Q10
            return
        if ref is None:
            self.refusals[counter] = CounterInput(
                counter, "unreadable_scan", "This code is not a ticket of this office",
                "この窓口の番号札ではありません", self.writer.clock.now().isoformat())
            return
        state = self.writer.read(lambda s: _ticket_state(s, ref.number, ref.token))
        if state == "absent":
            await self.command(counter, c.ClearAbsence(counter, ref.number, ref.token))
        elif state == "held" and ref.number is not None:
            await self.command(counter, c.CallHeld(counter, ref.number))
        else:
            number = ref.number if ref.number is not None else \
                self.writer.read(lambda s: _number_of(s, ref.token))
            if number is None:
                await self.command(counter, c.ClearAbsence(counter, None, ref.token))
            else:
                await self.command(counter, c.CallNumber(counter, number))

    async def on_keypad(self, counter: str, action: str, number: int | None) -> None:
        if action == "cancel" and number is None:  # cancel the next scanned ticket instead
            self.cancel_armed[counter] = time.monotonic() + CANCEL_ARMED_S
            return
        cmd = keypad_command(counter, action, number)
        if cmd is not None:
            await self.command(counter, cmd)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# --- builders --------------------------------------------------------------------------------

def _build_printer(m: DeviceManager, spec: DeviceSpec, profile: PrinterProfile) -> None:
    preview = None if m.preview_dir is None else m.preview_dir / spec.id
    p = PrinterService(spec.id, profile, spec.url, m.board, kiosk=spec.kiosk, preview_dir=preview)
    assert spec.kiosk is not None
    m.printers[spec.kiosk] = p
    m.services.append(p)


def _build_display(m: DeviceManager, spec: DeviceSpec, profile: DisplayProfile) -> None:
    from edge.devices.display.service import DisplayService

    d = DisplayService(spec.id, profile, spec.url, m.board, spec.addresses)
    m.displays.append((d, frozenset(cid for cid, _ in spec.addresses)))
    m.services.append(d)


def _build_scanner(m: DeviceManager, spec: DeviceSpec, profile: Any) -> None:
    from edge.devices.input.scanner import ScannerService

    route = _router(m, spec)
    s = ScannerService(spec.id, profile, spec.url, m.board,
                       lambda text: m.on_scan(route("scan"), text), ",".join(spec.operated))
    m.services.append(s)


def _build_keypad(m: DeviceManager, spec: DeviceSpec, profile: Any) -> None:
    from edge.devices.input.keypad import KeypadService

    route = _router(m, spec)
    k = KeypadService(spec.id, profile, spec.url, m.board,
                      lambda a: m.on_keypad(route(a.action), a.action, a.number),
                      ",".join(spec.operated))
    m.services.append(k)


def _router(m: DeviceManager, spec: DeviceSpec) -> Callable[[str], str]:
    """Action -> counter for a keypad or scanner (edge/devices/input/router.py); a device
    with one counter always acts there."""
    from edge.devices.input.router import CounterRouter

    assert spec.operated, spec.id
    router = CounterRouter(spec.operated)

    def busy(cid: str) -> bool:
        return m.writer.read(lambda s: s.current_ticket(cid) is not None)

    return lambda action: router.target(action, busy)


def _build_voice(m: DeviceManager) -> None:
    from edge.devices.voice.service import VoiceService, VoiceSettings, VoiceZone, zone_gains

    spec = m.config.voice
    assert spec is not None
    services = m.config.services.values()
    volume, gains = zone_gains(spec.volume, [z.volume for z in spec.zones])
    settings = VoiceSettings(
        engine=spec.engine, gender=spec.gender, volume=volume,  # type: ignore[arg-type]
        chime=spec.chime, languages=spec.languages, recall_repeats=spec.recall_repeats,
        templates_path=None if spec.templates is None else Path(spec.templates),
        number_range=(min(s.first for s in services), max(s.last for s in services)),
        cache_dir=m.voice_cache)
    zones = [VoiceZone(z.id, None if z.counters is None else set(z.counters), _sink(z.output),
                       gain) for z, gain in zip(spec.zones, gains, strict=True)]
    m.voice = VoiceService(settings, zones, board=m.board, device_id="voice")


def _sink(output: str) -> Any:
    """A zone's output: ``null``, ``file:///folder`` (WAV files) or ``command:aplay -q {file}``."""
    import shlex

    from edge.devices.voice.sinks import CommandSink, FileSink, NullSink

    if output.startswith("file://"):
        return FileSink(Path(output.removeprefix("file://")))
    if output.startswith("command:"):
        return CommandSink(shlex.split(output.removeprefix("command:")))
    return NullSink()


_BUILDERS: dict[str, Callable[[DeviceManager, DeviceSpec, Any], None]] = {
    "printer": _build_printer, "display": _build_display,
    "scanner": _build_scanner, "keypad": _build_keypad,
}


# --- pure helpers ----------------------------------------------------------------------------

def keypad_command(counter: str, action: str, number: int | None) -> c.Command | None:
    """A keypad action as a queue command (see firmware-profiles/README.md for the key map)."""
    simple: dict[str, Callable[[str], c.Command]] = {
        "call_next": c.CallNext, "recall": c.Recall, "hold": c.Hold, "absent": c.MarkAbsent,
        "finish": c.Finish, "open": c.OpenCounter, "close": c.CloseCounter,
    }
    if action == "call_number":
        return c.CallNext(counter) if number is None else c.CallNumber(counter, number)
    if action in simple:
        return simple[action](counter)
    if number is None:
        return None  # the remaining actions need a typed number
    if action == "call_held":
        return c.CallHeld(counter, number)
    if action == "clear_absence":
        return c.ClearAbsence(counter, number)
    if action == "cancel":
        return c.Cancel(number, None, counter)
    if action == "transfer":  # typed number = the counter to send the visitor to
        return c.Transfer(counter, None, str(number))
    return None


def ticket_print(state: State, ticket_id: str, config: SiteConfig) -> TicketPrint:
    """The paper ticket of a just-issued ticket, in its holder's language."""
    t = state.tickets[ticket_id]
    view = ticket_view(state, t)
    svc = config.services[t.origin_service]
    est = view.get("estimate")
    estimate = None if not est else (round(est["low_s"] / 60), max(1, round(est["high_s"] / 60)))
    from edge.devices.printer.texts import guidance

    return TicketPrint(
        number=t.number, service_code=svc.code, service_name=svc.name.get(t.lang),
        site_name=config.name.get(t.lang), issued_at=t.issued_at, ahead=view["ahead"],
        estimate_min=estimate, guidance=guidance(t.lang),
        qr_payload=config.status_url.replace("{token}", t.token), lang=t.lang,
        two_part=svc.ticket == "two-part")


def _current(state: State, cid: str) -> int | None:
    t = state.current_ticket(cid)
    return None if t is None or t.state != "called" else t.number


def _call_info(state: State, ticket_id: str) -> tuple[int, str] | None:
    t = state.tickets.get(ticket_id)
    return None if t is None else (t.number, t.service)


def _ticket_state(state: State, number: int | None, token: str | None) -> str | None:
    tid = state.live_numbers.get(number) if number is not None else state.tokens.get(token or "")
    return None if tid is None else state.tickets[tid].state


def _number_of(state: State, token: str | None) -> int | None:
    tid = state.tokens.get(token or "")
    return None if tid is None else state.tickets[tid].number
