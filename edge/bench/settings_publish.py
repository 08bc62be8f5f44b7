"""``settings_publish_to_kiosk_*`` of ``madoguchi bench screens``: a staff member presses
"公開" (publish) in the settings editor, and the kiosk page of a live edge shows the change.

The rig: a private mosquitto on a free port, the hub (SQLite) and an edge with sync, both in
this process's event loop (so the figure includes their sharing one core with the Playwright
driver), and two pages in one headless Chromium: the editor at 1366x768 signed in as ward
staff, and the kiosk (1080x1920, never reloaded). Each round changes the site's Japanese
guidance to a new text and publishes it. Both ends are read on the browser's one clock
(``performance.timeOrigin + …``): the publish button's click ``event.timeStamp`` on the
editor page (kept in ``sessionStorage`` across the post), and the moment a ``MutationObserver``
on the kiosk sees the new text in its guidance. The span covers the form post, the checker,
the versioned store and audit row, the retained MQTT publish, the edge's check and apply, its
push to the kiosk, the kiosk's config fetch and render.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.bench.load import BenchError

if TYPE_CHECKING:
    from playwright.async_api import Browser

TARGETS: dict[str, float] = {"settings_publish_to_kiosk_p95_ms": 2000.0}
SITE = "bench-settings"
PREFIX = "mdg-bench-settings"

_KIOSK_JS = """() => {
  window.__seen = new Map();
  const el = document.querySelector('[data-testid="guidance"]');
  const note = () => {
    const t = el.textContent;
    if (!window.__seen.has(t)) window.__seen.set(t, performance.timeOrigin + performance.now());
  };
  new MutationObserver(note).observe(el, {childList: true, subtree: true, characterData: true});
  note();
}"""
_CLICK_JS = """() => {
  sessionStorage.removeItem('clicked');  // kept across the post and its redirect
  const b = [...document.querySelectorAll('button[value="publish"]')].pop();
  b.addEventListener('click', (e) => sessionStorage.setItem(
    'clicked', String(performance.timeOrigin + e.timeStamp)), {capture: true, once: true});
}"""


def site_toml() -> str:
    return f"""[site]
id = "{SITE}"
name = {{ ja = "ベンチ区民事務所", en = "Bench Residents Office" }}
guidance = {{ ja = "ご用件のボタンを押してください。", en = "Touch the button for your errand." }}

[[services]]
code = "A"
name = {{ ja = "住民異動届", en = "Moving in or out" }}
range = [1, 999]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A"]

[calendar]
national_holidays = false
year_end = []
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        raise BenchError("mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    conf = workdir / "mosquitto-settings.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
                    encoding="utf-8")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise BenchError("mosquitto did not start")


async def _session(store: Any) -> dict[str, str]:
    from hub.auth import service
    from hub.auth.guard import COOKIE
    from hub.settings import HubSettings

    login, password = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    await service.create_staff(store, login, password, grants=[(SITE, "ward_staff")])
    result = await service.login(store, HubSettings.from_env(), login, password, "127.0.0.1")
    if result.sid is None or result.outcome != "ok":
        raise BenchError(f"bench staff sign-in failed: {result.outcome}")
    return {COOKIE: result.sid}


async def measure_settings_publish(browser: Browser, workdir: Path,
                                   rounds: int) -> dict[str, Any]:
    from edge.app import SyncOptions, build_edge, start_edge
    from edge.bench.screens import figures
    from edge.config import parse_site_config
    from hub.app import start_hub

    broker, url = _mosquitto(workdir)
    hub = await start_hub(f"sqlite:///{workdir}/settings-hub.db", url, PREFIX, port=0)
    out: dict[str, Any] = {}
    try:
        await hub.set_config(SITE, site_toml())
        edge = build_edge(parse_site_config(site_toml()), workdir / "settings-edge.db",
                          sync=SyncOptions(url, prefix=PREFIX))
        port = _free_port()
        runner = await start_edge(edge, "127.0.0.1", port)
        try:
            cookie = await _session(hub.store)
            kctx = await browser.new_context(viewport={"width": 1080, "height": 1920},
                                             locale="ja-JP")
            kiosk = await kctx.new_page()
            await kiosk.goto(f"http://127.0.0.1:{port}/ui/kiosk.html?kiosk=k1")
            await kiosk.wait_for_selector('[data-testid="guidance"]:not(:empty)')
            await kiosk.evaluate(_KIOSK_JS)
            sctx = await browser.new_context(viewport={"width": 1366, "height": 768},
                                             locale="ja-JP")
            await sctx.add_cookies([{"name": k, "value": v, "url": hub.url}
                                    for k, v in cookie.items()])
            staff = await sctx.new_page()
            await staff.goto(f"{hub.url}/admin/settings/{SITE}?lang=ja")
            samples: list[float] = []
            for i in range(rounds + 1):  # the first round warms up
                text = f"ご用件のボタンを押してください。（{i + 1}回目の変更）"
                await staff.fill("#f-site-guidance-ja", text)
                await staff.evaluate(_CLICK_JS)
                await staff.click('button[value="publish"] >> nth=-1')
                await staff.wait_for_selector("#published", timeout=15000)
                deadline = time.monotonic() + 15
                seen = None
                while seen is None:
                    seen = await kiosk.evaluate("(t) => window.__seen.get(t) ?? null", text)
                    if seen is None:
                        if time.monotonic() > deadline:
                            raise BenchError(f"the kiosk did not show round {i + 1}")
                        await asyncio.sleep(0.02)
                clicked = await staff.evaluate("sessionStorage.getItem('clicked')")
                if i > 0:
                    samples.append(float(seen) - float(clicked))
            out.update(figures("settings_publish_to_kiosk", samples))
            await kctx.close()
            await sctx.close()
        finally:
            await runner.cleanup()
    finally:
        await hub.stop()
        broker.terminate()
        broker.wait(10)
    return out
