"""The demo's terminal: the banner (URLs, PINs, clock) stays on top, the live summary below it.

Why a scroll region: the old screen cleared the whole terminal every second, so the URLs a
newcomer needs vanished. In a terminal the banner is printed once in the top rows and the rows
below it are made the scroll region (DECSTBM), so neither the redraw nor a stray log line can
push the banner away; a resize redraws everything. When stdout is not a terminal (a pipe, a log
file, a test) the banner is printed once and a one-line summary follows every few seconds.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TextIO

from edge.app import Edge
from edge.domain.views import snapshot, stats_view
from edge.store.writer import Writer

LABEL = {"ja": "待ち", "en": "waiting"}


def cols(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` columns (a wrapped line would scroll the screen)."""
    out, used = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out)


def rows_of(lines: Sequence[str], width: int) -> int:
    """How many terminal rows ``lines`` take once wrapped at ``width`` columns."""
    return sum(max(1, -(-cols(line) // max(width, 1))) for line in lines)


def _w(text: object, width: int, right: bool = True) -> str:
    s = str(text)
    pad = " " * max(width - cols(s), 0)
    return pad + s if right else s + pad


def _fmt_wait(est: dict[str, int] | None) -> str:
    if est is None:
        return "—"
    return f"{est['low_s'] // 60}–{-(-est['high_s'] // 60)} min"


def _device_lines(edge: Edge | None) -> list[str]:
    if edge is None or edge.devices is None:
        return []
    parts = []
    for h in edge.devices.board.all():
        why = f" ({h.reason})" if h.reason and h.state != "ok" else ""
        parts.append(f"{h.id} {h.state}{why}")
    lines = ["機器 devices: " + "  ".join(parts)]
    printed = sum(p.printed for p in edge.devices.printers.values())
    if edge.devices.preview_dir is not None:
        lines.append(f"印刷 printed: {printed} tickets → {edge.devices.preview_dir}")
    return lines


def render(writer: Writer, edge: Edge | None = None) -> list[str]:
    """The main office's summary (Japanese and English labels side by side)."""
    now = writer.clock.now()
    snap = writer.read(lambda s: snapshot(s, now))
    stats = writer.read(stats_view)
    lines = [
        f"{snap['name'].get('ja')} / {snap['name'].get('en')}   "
        f"{now:%Y-%m-%d %H:%M:%S}   seq {snap['seq']}",
        _w("業務 service", 26, right=False) + _w("待ち wait", 10) + _w("2次待ち 2nd", 12)
        + _w("次 next", 9) + _w("経過 since", 12) + _w("目安 estimate", 16),
    ]
    for s in snap["services"]:
        nxt = s["next"]
        lines.append(
            f"{s['code'] + ' ' + s['name'].get('en', '')[:22]:<26}{s['waiting']:>10}"
            f"{s['second_wait']:>12}{(nxt['number'] if nxt else '—'):>9}"
            f"{(str(nxt['wait_s'] // 60) + ' min' if nxt else '—'):>12}"
            f"{_fmt_wait(s['estimate']):>16}"
        )
    calling = "  ".join(f"[{x['counter']}] {x['number']}" for x in snap["calling"]) or "—"
    lines.append("呼出中 now calling: " + calling)
    lines.append("不在 absent: " + (", ".join(str(a["number"]) for a in snap["absent"]) or "—")
                 + "   保留 on hold: "
                 + (", ".join(str(a["number"]) for a in snap["held"]) or "—"))
    waits = [v["wait_avg_s"] for v in stats["services"].values() if v["wait_avg_s"] is not None]
    avg = f"{sum(waits) / len(waits) / 60:.1f} min" if waits else "—"
    lines.append(f"本日 today: issued {stats['issued_total']}   avg wait {avg}")
    return lines + _device_lines(edge)


def branch_line(writer: Writer) -> str:
    snap = writer.read(lambda s: snapshot(s, writer.clock.now()))
    waiting = sum(s["waiting"] for s in snap["services"])
    second = sum(s["second_wait"] for s in snap["services"])
    return (f"{snap['site']}: {LABEL['ja']}/{LABEL['en']} {waiting} "
            f"(2次 {second}) seq {snap['seq']}")


SignIn = Callable[[], Awaitable[str | None]]  # a new staff session id, or None


class HubPoll:
    """The hub line of the summary: ``GET /api/sites`` as the demo's staff account.

    Why a session: since issue 12 every hub route is deny-by-default and ``/api/sites`` needs a
    staff session, so an anonymous poll only ever got 401 and the line showed "—". The demo
    signs its own account in (``sign_in``, in-process through ``hub.auth.service``) on the
    first poll, and again whenever the hub answers 401 (idle or absolute timeout).
    """

    COOKIE = "madoguchi_staff"  # hub.auth.guard.COOKIE (the edge does not import the hub's web)

    def __init__(self, hub_url: str, sign_in: SignIn | None = None) -> None:
        self.hub_url, self.sign_in = hub_url, sign_in
        self.sid: str | None = None

    async def _get(self) -> tuple[int, object]:
        import aiohttp

        headers = {"Accept": "application/json"}
        if self.sid:
            headers["Cookie"] = f"{self.COOKIE}={self.sid}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as http, \
                http.get(f"{self.hub_url}/api/sites", headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def sites(self) -> list[dict[str, object]] | None:
        """The hub's sites, or None (hub unreachable, or no session to be had)."""
        if self.sid is None and self.sign_in is not None:
            self.sid = await self.sign_in()
        status, body = await self._get()
        if status == 401 and self.sign_in is not None:
            self.sid = await self.sign_in()
            status, body = await self._get()
        if status != 200:
            return None
        rows = body["sites"] if isinstance(body, dict) else body
        return list(rows) if isinstance(rows, list) else None

    async def line(self) -> str:
        try:
            rows = await self.sites()
        except Exception:  # the summary must never stop the demo
            rows = None
        if rows is None:
            return "ハブ hub: —"
        parts = [f"{r['site']} {'online' if r.get('online') else 'OFFLINE'} seq "
                 f"{r.get('last_seq')}" for r in rows]
        return "ハブ hub: " + ("  ".join(parts) or "no site yet")


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((100, 40))
    return size.columns, size.lines


class Terminal:
    """The banner once on top; ``draw`` replaces the summary below it (see the module doc)."""

    def __init__(self, banner: Sequence[str], live: bool, out: TextIO | None = None,
                 size: Callable[[], tuple[int, int]] | None = None) -> None:
        self.banner, self.live = list(banner), live
        self.out = out or sys.stdout
        self._size = size or _terminal_size
        self._drawn_for: tuple[int, int] | None = None
        self._top = 1

    def start(self) -> None:
        if not self.live:
            self.out.write("\n".join(self.banner) + "\n")
            self.out.flush()

    def _layout(self, width: int, height: int) -> None:
        """Clear, print the banner, and make the rows below it the scroll region."""
        self._top = min(rows_of(self.banner, width) + 2, height)  # wrapped, never cut: URLs
        self.out.write("\x1b[r\x1b[H\x1b[2J" + "\n".join(self.banner) + "\n")
        if self._top < height:
            self.out.write(f"\x1b[{self._top};{height}r")
        self._drawn_for = (width, height)

    def draw(self, lines: Sequence[str]) -> None:
        if not self.live:
            self.out.write("  ".join(lines) + "\n")
            self.out.flush()
            return
        width, height = self._size()
        if self._drawn_for != (width, height):
            self._layout(width, height)
        room = height - self._top + 1
        if 0 < room < min(len(lines), 4):  # the URLs come first; say where the summary went
            lines = ["端末を大きくすると概要が表示されます / enlarge the terminal for the summary"]
        body = [clip(line, width - 1) for line in lines][:max(room, 0)]
        self.out.write(f"\x1b[{self._top};1H\x1b[J" + "\n".join(body))
        self.out.flush()

    def stop(self) -> None:
        if self.live and self._drawn_for is not None:
            self.out.write(f"\x1b[r\x1b[{self._drawn_for[1]};1H\n")
            self.out.flush()


async def run_screen(term: Terminal, edges: Sequence[Edge], hub: HubPoll,
                     until: float | None) -> None:
    """Redraw every second in a terminal, a log line every 5 s otherwise; ``until`` seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    term.start()
    while until is None or loop.time() - start < until:
        hub_text = await hub.line()
        main = edges[0]
        if term.live:
            term.draw(render(main.writer, main) + [""]
                      + [branch_line(e.writer) for e in edges[1:]] + [hub_text])
        else:
            now: datetime = main.writer.clock.now()
            term.draw([f"{now:%H:%M:%S}"] + [branch_line(e.writer) for e in edges]
                      + ["|", hub_text])
        await asyncio.sleep(1.0 if term.live else 5.0)

