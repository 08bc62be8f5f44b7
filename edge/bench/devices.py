"""``madoguchi bench devices``: ticket rendering, call -> display bytes, call -> start of audio.

``voice_engine`` names the engine that spoke Japanese (``open-jtalk`` normally, ``espeak-ng``
when pyopenjtalk could not load); ``voice_engines`` gives it per language.

Each figure is measured end to end where the issue asks for it: the display and voice figures
start the clock before the call command enters the writer (so the durable commit is included)
and stop it when the display's bytes come out of a real pseudo-terminal (the kernel's tty
layer, as a USB-serial adapter would be) or when the voice sink starts playing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.bench.judge import judge
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profile_store import load_profiles
from edge.devices.profiles import PrinterProfile
from edge.domain.model import DeviceSpec, SiteConfig, VoiceSpec, VoiceZone

TARGETS: dict[str, float] = {
    "render_kanji_p99_ms": 15.0, "render_raster_p99_ms": 60.0,
    "call_to_display_p99_ms": 20.0, "call_to_audio_p99_ms": 250.0,
}
LANGS = ("ja", "en", "zh", "ko")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float], name: str) -> dict[str, float]:
    return {f"{name}_p50_ms": round(statistics.median(values) * 1000, 2),
            f"{name}_p99_ms": round(_pct(values, 0.99) * 1000, 2),
            f"{name}_max_ms": round(max(values) * 1000, 2), f"{name}_n": len(values)}


def render_figures(n: int) -> dict[str, Any]:
    """Ticket bytes per profile kind: Kanji mode (TM-T88VI) and raster (58 mm, Star TSP143)."""
    from edge.devices.printer.codec import render, warm_up

    warm_up()
    profiles = load_profiles()
    tz = ZoneInfo("Asia/Tokyo")
    out: dict[str, Any] = {}
    printers = {pid: p for pid, p in profiles.items() if isinstance(p, PrinterProfile)}
    for name, pid in (("render_kanji", "epson-tm-t88vi"), ("render_raster", "generic-58mm"),
                      ("render_star", "star-tsp143iiiu")):
        times: list[float] = []
        for i in range(n):
            lang = "ja" if name == "render_kanji" else LANGS[i % len(LANGS)]
            t = TicketPrint(
                number=1 + i % 999, service_code="A", service_name="住民異動届（転入・転出）",
                site_name="練馬区民事務所", issued_at=datetime(2026, 11, 21, 9, i % 60, tzinfo=tz),
                ahead=i % 40, estimate_min=(i % 30, i % 30 + 10),
                guidance="番号が呼ばれるまでお待ちください",
                qr_payload=f"https://queue.example.jp/t/tok{i:08d}abcdefgh", lang=lang,
                two_part=i % 2 == 0)
            t0 = time.perf_counter()
            render(printers[pid], t)
            times.append(time.perf_counter() - t0)
        out.update(_ms(times, name))
    return out


class _PtyReader:
    """Reads the far end of a pseudo-terminal and timestamps each arrival of bytes."""

    def __init__(self) -> None:
        import tty

        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.arrivals: list[tuple[float, bytes]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                data = os.read(self.master, 4096)
                self.arrivals.append((time.perf_counter(), data))

    def close(self) -> None:
        self._stop = True
        self._thread.join(1)
        os.close(self.master)
        os.close(self._slave)


def _site(base: SiteConfig, pty: str, voice_dir: Path) -> SiteConfig:
    counters = list(base.counters)[:8]
    display = DeviceSpec("bench-led", "display", "led-ascii-stx", f"serial://{pty}",
                         addresses=tuple((cid, i + 1) for i, cid in enumerate(counters)))
    voice = VoiceSpec(zones=(VoiceZone("hall", f"file://{voice_dir}"),))
    return replace(base, devices=(display,), voice=voice)


async def _calls(config: SiteConfig, workdir: Path, n: int, reader: _PtyReader,
                 ) -> dict[str, Any]:
    from edge.app import build_edge
    from edge.domain import commands as c

    edge = build_edge(config, workdir / "bench.db")
    devices = edge.devices
    assert devices is not None
    await devices.start()
    writer = edge.writer
    voice = devices.voice
    try:
        cid = next(iter(config.counters))
        service = config.counters[cid].services[0]
        await writer.execute(c.OpenCounter(cid))
        await _wait(lambda: devices.board.get("bench-led") is not None
                    and devices.board.get("bench-led").state == "ok", 10)  # type: ignore[union-attr]
        if voice is not None:
            await voice.ready()
        display_s: list[float] = []
        audio_s: list[float] = []
        for _ in range(n):
            await writer.execute(c.Issue(service))
        for _ in range(n):
            if voice is not None:
                await voice.idle()  # the previous call has been spoken: measure this one alone
                # In a hall the previous announcement plays for ~8 s (chime, ja, en), long
                # enough to prepare the next numbers (~0.1-0.3 s each with Open JTalk); the
                # file sink here "plays" at once, so wait for that preparation explicitly.
                await voice.ready()
            before_bytes = len(reader.arrivals)
            plays = voice.played_count() if voice is not None else 0
            t0 = time.perf_counter()
            await writer.execute(c.CallNext(cid))
            await _wait(lambda b=before_bytes: len(reader.arrivals) > b, 2)  # type: ignore[misc]
            display_s.append(reader.arrivals[before_bytes][0] - t0)
            if voice is not None:
                await _wait(lambda p=plays: voice.played_count() > p, 30)  # type: ignore[misc]
                audio_s.append(voice.last_started() - t0)
        out: dict[str, Any] = dict(_ms(display_s, "call_to_display"))
        if audio_s:
            out.update(_ms(audio_s, "call_to_audio"))
            names = voice.engine_names() if voice is not None else {}
            # the Japanese engine (Open JTalk unless it could not load), then all of them
            out["voice_engine"] = names.get("ja") or next((n for n in names.values() if n), "")
            out["voice_engines"] = names
        return out
    finally:
        await devices.stop()
        edge.writer.close()


async def _wait(cond: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("device did not respond in time")
        await asyncio.sleep(0.001)


def measure(quick: bool, config: SiteConfig) -> dict[str, Any]:
    n = 60 if quick else 400
    result: dict[str, Any] = {"bench": "devices", "quick": quick}
    result.update(render_figures(n))
    reader = _PtyReader()
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-dev-") as tmp:
        try:
            site = _site(config, reader.path, Path(tmp) / "voice")
            result.update(asyncio.run(_calls(site, Path(tmp), 40 if quick else 200, reader)))
        finally:
            reader.close()
    judge(result, TARGETS)
    return result
