"""``madoguchi bench screens``: call -> guide monitor shows it; kiosk tap -> number on screen.

Everything runs for real: an ``edge run`` process (the sample site, durable commits, devices on
simulators) on 127.0.0.1 and headless Chromium (``MADOGUCHI_CHROMIUM`` or ``/usr/bin/chromium``)
driven by Playwright, opening the pages from ``kiosk-ui/`` as a monitor or kiosk would.

**Call -> monitor.** Each guide monitor page gets a ``MutationObserver`` on its document that
records, for every number that appears in the ``calling`` region, the page time it first appeared
(``performance.timeOrigin + performance.now()``, i.e. wall-clock milliseconds at sub-ms
resolution) and the time of the next animation frame (when it is painted). The benchmark sends
``POST /api/counters/{id}/call-next`` with aiohttp and reads ``time.time()`` just before sending.
To compare the two clocks, the offset of each page's clock to this process's clock is measured
beforehand NTP-style: ``t0 = time.time()``, the page returns its clock, ``t1 = time.time()``;
of 15 such round trips the shortest gives ``offset = page - (t0 + t1) / 2`` with an error of at
most half that round trip (reported as ``clock_offset_uncertainty_ms``, typically < 1 ms).
The latency is ``seen - offset - sent``: command over HTTP, durable commit, websocket push,
JSON parse and render, up to the DOM holding the number. Calls are sent one at a time (the next
after every monitor has shown the previous one and a short pause), cycling over the counters;
before each call one more ticket is issued, so about 40 stay waiting (a busy office: every push
then carries a state of about 13 kB).

**Kiosk tap -> number.** Measured wholly inside the kiosk page, on one clock: a capturing
``click`` listener on ``window`` keeps the click's ``event.timeStamp``; a ``MutationObserver``
records ``performance.now()`` when ``ticket-number`` becomes visible with a new number. This spans
the fetch to ``POST /api/tickets``, the durable commit, the print on the simulated printer (the
answer says whether it printed) and the render. Playwright clicks ``service-B`` like a finger;
``kiosk_tap_to_response`` (the issue request's ``responseEnd`` in Resource Timing) splits the
edge's share from the page's.

**Where the time goes.** An init script notes when each websocket message carrying a call
arrives in the page (``..._ws_message``): the rest up to ``call_to_monitor`` is the page's own
parse and render; ``..._frame`` is the next animation frame after the DOM change.

**30 monitors**, two ways. ``clients30_*``: the measured Chromium monitor plus 29 more websocket
clients that take and parse every push as a monitor does: the edge's side of 30 monitors, each
monitor rendering on its own hardware as on a real floor. ``monitors30_*``: 30 real monitor
pages in this one Chromium (each its own websocket, renderer and animations) on this machine's
CPUs next to the edge, a much harsher case; the call figure covers every monitor's copy of every
call (``_n`` = calls x monitors), ``monitors30_call_to_last_monitor`` the slowest monitor per call,
and the kiosk taps are repeated with the 30 pages open. ``loadavg_1m_*`` and ``edge_cpu_s`` say
how busy the machine and the edge were: other work on the machine shows in every figure.

**Legibility in a 15-counter hall** (``monitor15_*``, see ``edge/bench/monitor15.py``): a second
edge with a generated 15-counter site, all counters calling, the monitor at 1920x1080 in this
Chromium; the glyph (ink) heights of the big rows' numbers and counter names as % of the
viewport height (targets: at least 8 and 6), and rows with clipped text (target 0).

Figures end in ``_ms`` with their statistic; ``targets`` and ``meets_targets`` as ``bench edge``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from edge.bench.judge import judge
from edge.bench.load import BenchError, EdgeProcess
from edge.bench.monitor15 import AT_LEAST as MONITOR15_AT_LEAST
from edge.bench.monitor15 import TARGETS as MONITOR15_TARGETS
from edge.bench.monitor15 import measure_monitor15
from edge.bench.settings_publish import TARGETS as SETTINGS_TARGETS
from edge.bench.settings_publish import measure_settings_publish

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

TARGETS: dict[str, float] = {
    "call_to_monitor_p95_ms": 150.0, "kiosk_tap_to_number_p95_ms": 300.0,
    "clients30_call_to_monitor_p95_ms": 150.0,
    "monitors30_call_to_monitor_p95_ms": 150.0, "monitors30_kiosk_tap_to_number_p95_ms": 300.0,
    **MONITOR15_TARGETS, **SETTINGS_TARGETS,
}
MONITORS = 30
SERVICE = "B"  # in every menu of the sample site, no daily limit, 999 numbers
PAUSE_S = 0.05
WAITING = 40  # tickets kept waiting throughout: a busy office (the state pushed grows with it)
TIMEOUT_S = 10.0

_MONITOR_JS = """() => {
  if (window.__bench) return;
  const seen = new Map(), frame = new Map(), waiters = new Map();
  const clock = () => performance.timeOrigin + performance.now();
  const check = () => {
    const root = document.querySelector('[data-testid="calling"]');
    if (!root) return;
    const at = clock();
    const found = [];  // per text node: textContent would join "Counter 2" and "1002"
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) found.push(...walk.currentNode.data.matchAll(/\\d+/g));
    for (const m of found) {
      const n = m[0];
      if (seen.has(n)) continue;
      seen.set(n, at);
      requestAnimationFrame(() => frame.set(n, clock()));
      for (const w of waiters.get(n) || []) w(at);
      waiters.delete(n);
    }
  };
  new MutationObserver(check).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true});
  check();
  window.__bench = {
    clock,
    when: (n) => seen.has(n) ? Promise.resolve(seen.get(n)) : new Promise((res) => {
      waiters.set(n, [...(waiters.get(n) || []), res]);
    }),
    read: (n, since) => [seen.get(n) ?? null, frame.get(n) ?? null,
                         (window.__ws || []).find((t) => t >= since) ?? null],
  };
}"""

# Before the page's scripts: note when each websocket message announcing a call arrives (our
# listener is added in the constructor, so it runs before the page's own onmessage).
_WS_INIT = """(() => {
  const Native = window.WebSocket;
  window.__ws = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (m) => {
        if (typeof m.data === 'string' && m.data.includes('"TicketCalled"')) {
          window.__ws.push(performance.timeOrigin + performance.now());
          if (window.__ws.length > 1000) window.__ws.shift();
        }
      });
    }
  };
})();"""

_KIOSK_JS = """() => {
  if (window.__tap) return;
  const tap = {last: null, shown: [], text: ''};
  window.__tap = tap;
  window.addEventListener('click', (e) => { tap.last = e.timeStamp; }, true);
  const check = () => {
    const el = document.querySelector('[data-testid="ticket-number"]');
    if (!el) return;
    const visible = el.checkVisibility ? el.checkVisibility() : el.offsetParent !== null;
    const text = el.textContent.trim();
    if (!visible || !/\\d/.test(text) || text === tap.text) return;
    tap.text = text;
    const at = performance.now();
    const issue = performance.getEntriesByType('resource')
      .filter((r) => r.name.endsWith('/api/tickets')).at(-1);
    tap.shown.push({text, at, tap: tap.last, response: issue ? issue.responseEnd : null});
  };
  performance.setResourceTimingBufferSize(100000);
  new MutationObserver(check).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def figures(name: str, values: list[float]) -> dict[str, Any]:
    if not values:
        raise BenchError(f"no {name} sample was measured")
    v = sorted(values)
    return {f"{name}_p50_ms": round(statistics.median(v), 2),
            f"{name}_p95_ms": round(_pct(v, 95), 2), f"{name}_p99_ms": round(_pct(v, 99), 2),
            f"{name}_max_ms": round(v[-1], 2), f"{name}_n": len(v)}


def chromium_path() -> str:
    path = os.environ.get("MADOGUCHI_CHROMIUM") or os.environ.get("MADOGUCHI_TEST_CHROMIUM")
    found = path or shutil.which("chromium") or "/usr/bin/chromium"
    if not (Path(found).is_file() and os.access(found, os.X_OK)):
        raise BenchError(f"Chromium not found at {found}: install chromium or set "
                         "MADOGUCHI_CHROMIUM")
    return found


class _Bench:
    def __init__(self, server: EdgeProcess, http: aiohttp.ClientSession,
                 browser: Browser) -> None:
        self.server, self.http, self.browser = server, http, browser
        self.base = server.base
        self.counters: list[str] = []
        self.uncertainty_ms = 0.0

    async def post(self, path: str, body: Any = None) -> dict[str, Any]:
        async with self.http.post(self.base + path, json=body) as resp:
            data: dict[str, Any] = await resp.json()
            if resp.status >= 300:
                raise BenchError(f"POST {path} -> {resp.status}: {data}")
            return data

    async def prepare(self, calls: int = WAITING) -> None:
        """Open the counters that serve the service without a PIN; queue ``calls`` tickets."""
        async with self.http.get(self.base + "/api/ui/config") as resp:
            config = await resp.json()
        self.counters = [k["id"] for k in config["counters"]
                         if SERVICE in k["services"] and not k["pin"]]
        if not self.counters:
            raise BenchError(f"no counter without a PIN serves {SERVICE}")
        for cid in self.counters:
            await self.post(f"/api/counters/{cid}/open")
        for _ in range(calls):
            await self.post("/api/tickets", {"service": SERVICE, "lang": "ja"})

    async def monitor(self, context: Any) -> tuple[Page, float]:
        """A guide monitor page, ready, and its clock's offset to ``time.time()`` in ms."""
        page: Page = await context.new_page()
        await page.goto(f"{self.base}/ui/monitor.html")
        await page.wait_for_selector('[data-testid="calling"]', state="attached")
        await page.wait_for_selector(f'[data-testid="waiting-{SERVICE}"]', state="attached")
        await page.evaluate(_MONITOR_JS)
        best: tuple[float, float] | None = None
        for _ in range(15):
            t0 = time.time()
            page_ms: float = await page.evaluate("() => window.__bench.clock()")
            t1 = time.time()
            rtt = (t1 - t0) * 1000
            if best is None or rtt < best[0]:
                best = (rtt, page_ms - (t0 + t1) * 500)
        assert best is not None
        self.uncertainty_ms = max(self.uncertainty_ms, best[0] / 2)
        return page, best[1]

    async def calls(self, monitors: list[tuple[Page, float]], n: int) -> dict[str, list[float]]:
        """Latencies of every monitor: ``ws`` message arrived, ``dom`` shows the number,
        ``frame`` the next animation frame; ``last``: the slowest monitor's ``dom`` per call."""
        dom: list[float] = []
        painted: list[float] = []
        arrived: list[float] = []
        last: list[float] = []
        for i in range(n):
            cid = self.counters[i % len(self.counters)]
            await self.post("/api/tickets", {"service": SERVICE, "lang": "ja"})  # keep the queue
            await asyncio.sleep(PAUSE_S)
            sent = time.time() * 1000
            data = await self.post(f"/api/counters/{cid}/call-next")
            number = str(data["ticket"]["number"])
            waits = [p.evaluate("(n) => window.__bench.when(n)", number) for p, _ in monitors]
            try:
                await asyncio.wait_for(asyncio.gather(*waits), TIMEOUT_S)
            except TimeoutError as exc:
                raise BenchError(f"number {number} did not appear on every monitor within "
                                 f"{TIMEOUT_S:.0f} s") from exc
            await asyncio.sleep(PAUSE_S)  # let the frame callbacks run
            reads = await asyncio.gather(*(
                page.evaluate("([n, t]) => window.__bench.read(n, t)", [number, sent + offset])
                for page, offset in monitors))
            this_call: list[float] = []
            for (seen, frame, ws), (_page, offset) in zip(reads, monitors, strict=True):
                this_call.append(seen - offset - sent)
                if frame is not None:
                    painted.append(frame - offset - sent)
                if ws is not None:
                    arrived.append(ws - offset - sent)
            dom.extend(this_call)
            last.append(max(this_call))
        return {"dom": dom, "frame": painted, "ws": arrived, "last": last}

    async def taps(self, n: int) -> dict[str, list[float]]:
        """``shown``: tap -> number on screen; ``response``: tap -> the issue's HTTP answer."""
        context = await self.browser.new_context(viewport={"width": 1920, "height": 1080})
        page = await context.new_page()
        latencies: list[float] = []
        answered: list[float] = []
        button = page.get_by_test_id(f"service-{SERVICE}")
        close = page.get_by_test_id("dialog-close")
        try:
            await page.goto(f"{self.base}/ui/kiosk.html?kiosk=k1")
            for i in range(n):
                await button.wait_for(state="visible")
                await page.evaluate(_KIOSK_JS)
                await button.click()
                await page.wait_for_function(f"() => window.__tap.shown.length > {i}",
                                             timeout=TIMEOUT_S * 1000)
                shown = await page.evaluate("() => window.__tap.shown.at(-1)")
                if shown["tap"] is None:
                    raise BenchError("the kiosk click was not seen by the page")
                latencies.append(shown["at"] - shown["tap"])
                if shown["response"] is not None and shown["response"] > shown["tap"]:
                    answered.append(shown["response"] - shown["tap"])
                # back to the buttons as a visitor would (the result closes itself later)
                if await close.is_visible():
                    await close.click()
                await asyncio.sleep(PAUSE_S)
        finally:
            await context.close()
        return {"shown": latencies, "response": answered}


async def _ws_client(http: aiohttp.ClientSession, url: str, ready: asyncio.Event,
                     counts: list[int]) -> None:
    """A monitor as the edge sees it: one websocket that takes and parses every state push."""
    async with http.ws_connect(url) as ws:
        ready.set()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                json.loads(msg.data)
                counts[0] += 1


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(server: EdgeProcess, quick: bool, workdir: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    n_calls, n_taps = (25, 15) if quick else (200, 100)
    n_clients30 = 15 if quick else 200
    n_calls30, n_taps30 = (6, 5) if quick else (100, 50)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        await server.wait_ready(http)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path())
            try:
                out["chromium"] = browser.version
                bench = _Bench(server, http, browser)
                await bench.prepare()
                cpu0 = _cpu_s(server.proc.pid)
                ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
                await ctx.add_init_script(script=_WS_INIT)
                one = [await bench.monitor(ctx)]
                await bench.calls(one, 3)  # warm-up
                got = await bench.calls(one, n_calls)
                for key, name in (("dom", ""), ("frame", "_frame"), ("ws", "_ws_message")):
                    out.update(figures(f"call_to_monitor{name}", got[key]))
                taps = await bench.taps(n_taps)
                out.update(figures("kiosk_tap_to_number", taps["shown"]))
                out.update(figures("kiosk_tap_to_response", taps["response"]))

                # the edge's side of 30 monitors: 1 Chromium monitor + 29 websocket clients
                counts = [0]
                readies = [asyncio.Event() for _ in range(MONITORS - 1)]
                ws_url = server.base.replace("http", "ws", 1) + "/api/ws"
                clients = [asyncio.create_task(_ws_client(http, ws_url, r, counts))
                           for r in readies]
                await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), TIMEOUT_S)
                got = await bench.calls(one, n_clients30)
                for key, name in (("dom", ""), ("ws", "_ws_message")):
                    out.update(figures(f"clients30_call_to_monitor{name}", got[key]))
                for task in clients:
                    task.cancel()
                await asyncio.gather(*clients, return_exceptions=True)
                out["clients30_messages"] = counts[0]

                # 30 real monitor pages in this one Chromium, on this machine's CPUs
                t0 = time.monotonic()
                while len(one) < MONITORS:
                    batch = min(10, MONITORS - len(one))
                    one += await asyncio.gather(*(bench.monitor(ctx) for _ in range(batch)))
                out["monitors30_open_s"] = round(time.monotonic() - t0, 2)
                out["monitors"] = len(one)
                await bench.calls(one, 2)  # warm-up
                got = await bench.calls(one, n_calls30)
                for key, name in (("dom", ""), ("frame", "_frame"), ("ws", "_ws_message")):
                    out.update(figures(f"monitors30_call_to_monitor{name}", got[key]))
                out.update(figures("monitors30_call_to_last_monitor", got["last"]))
                taps = await bench.taps(n_taps30)
                out.update(figures("monitors30_kiosk_tap_to_number", taps["shown"]))
                out.update(figures("monitors30_kiosk_tap_to_response", taps["response"]))
                out["edge_cpu_s"] = round(_cpu_s(server.proc.pid) - cpu0, 2)
                out["counters"] = len(bench.counters)
                out["clock_offset_uncertainty_ms"] = round(bench.uncertainty_ms, 3)
                await ctx.close()
                # legibility in a 15-counter hall: its own edge and site (edge/bench/monitor15.py)
                out.update(await measure_monitor15(browser, workdir))
                # publish in the settings editor -> live kiosk (edge/bench/settings_publish.py)
                out.update(await measure_settings_publish(browser, workdir, 5 if quick else 20))
            finally:
                await browser.close()
    return out


def measure(quick: bool, config_path: Path) -> dict[str, Any]:
    try:
        import playwright  # noqa: F401
    except ImportError as exc:
        raise BenchError("playwright is not installed (uv sync --extra dev)") from exc
    from edge.bench import _cpu_model

    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-screens-"))
    result: dict[str, Any] = {"bench": "screens", "quick": quick,
                              "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    try:
        server = EdgeProcess(config_path, workdir / "edge.db", workdir / "edge.log")
        try:
            result.update(asyncio.run(_measure(server, quick, workdir)))
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    judge(result, TARGETS, at_least=MONITOR15_AT_LEAST)
    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "machine": f"{platform.machine()} {_cpu_model()}".strip()})
    return result
