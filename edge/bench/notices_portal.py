"""The portal half of ``madoguchi bench notices``: residents download their signed PDFs.

The hub runs in a process of its own (``start_hub``, web only: no broker), on the database and
encrypted file store the bench prepared and with the same keys, so the bench's own work (the
clients) does not share its event loop. Each resident is a client with a cookie jar of its own
and signs in as a browser does, with the link from the mail the aiosmtpd sink received:
``GET /n/{token}`` (the form's CSRF value), ``POST /n/{token}/open`` (the magic link, consumed by
this POST; 303 with the session cookie), ``GET /n/view`` (the file's link). Then all of them at
once download their PDF (``GET /n/file/{id}``) several times each; every download is checked to
be the PDF (status 200, ``%PDF`` bytes) and timed from sending to the last byte.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from edge.bench.load import BenchError, _percentile
from edge.bench.sync_rig import _root

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_FILE = re.compile(r'/n/file/([A-Za-z0-9_-]+)')


class PortalProcess:
    """The hub serving the portal; ``start``/``stop``. ``key_id``, ``key``: the hub key the
    bench sealed the rows and files with; ``files_dir``: the encrypted PDF store."""

    def __init__(self, db_url: str, schema: str | None, port: int, key_id: str, key: bytes,
                 files_dir: Path, log: Path) -> None:
        self.db_url, self.schema, self.port, self.log = db_url, schema, port, log
        ring = f"{key_id}:{base64.b64encode(key).decode('ascii')}"
        self.env = {**os.environ, "PYTHONPATH": _root(), "MADOGUCHI_HUB_KEYS": ring,
                    "MADOGUCHI_HUB_PUBLIC_URL": self.url, "MADOGUCHI_COOKIE_SECURE": "0",
                    "MADOGUCHI_NOTICE_FILES": str(files_dir)}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        args = [sys.executable, "-m", "edge.bench.notices_portal", "hub", self.db_url,
                self.schema or "", str(self.port)]

        def spawn() -> subprocess.Popen[bytes]:
            with self.log.open("wb") as out:
                return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=self.env)

        self.proc = await asyncio.to_thread(spawn)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{self.url}/api/health") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise BenchError(f"the portal's hub process did not start:\n{tail}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def _sign_in(http: aiohttp.ClientSession, base: str, token: str) -> str:
    """A resident's magic-link sign-in as a browser does it; returns the PDF's file id."""
    async with http.get(f"{base}/n/{token}") as r:
        page = await r.text()
        csrf = _CSRF.search(page)
        if r.status != 200 or csrf is None:
            raise BenchError(f"the link page answered {r.status}")
    async with http.post(f"{base}/n/{token}/open", data={"csrf": csrf.group(1)},
                         allow_redirects=False) as r:
        await r.read()
        if r.status != 303 or "/n/view" not in r.headers.get("Location", ""):
            raise BenchError(f"the magic link answered {r.status}")
    async with http.get(f"{base}/n/view") as r:
        found = _FILE.search(await r.text())
        if r.status != 200 or found is None:
            raise BenchError(f"the notice page answered {r.status} without a file link")
    return found.group(1)


async def download_figures(base: str, tokens: list[str], each: int) -> dict[str, Any]:
    """``len(tokens)`` residents sign in, then download their PDF ``each`` times, all at once."""
    jars = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                  timeout=aiohttp.ClientTimeout(total=120)) for _ in tokens]
    latencies: list[float] = []
    failures: dict[str, int] = {}
    sizes: set[int] = set()
    try:
        t0 = time.perf_counter()
        limit = asyncio.Semaphore(20)

        async def sign_in(http: aiohttp.ClientSession, token: str) -> str:
            async with limit:
                return await _sign_in(http, base, token)

        files = await asyncio.gather(*(sign_in(h, t) for h, t in zip(jars, tokens, strict=True)))
        signin_s = time.perf_counter() - t0

        async def resident(http: aiohttp.ClientSession, file_id: str) -> None:
            for _ in range(each):
                t = time.perf_counter()
                try:
                    async with http.get(f"{base}/n/file/{file_id}") as r:
                        body = await r.read()
                        ok = r.status == 200 and body.startswith(b"%PDF")
                        kind = "ok" if ok else f"http_{r.status}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    kind, body = type(exc).__name__, b""
                latencies.append((time.perf_counter() - t) * 1000)
                if kind == "ok":
                    sizes.add(len(body))
                else:
                    failures[kind] = failures.get(kind, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(resident(h, f) for h, f in zip(jars, files, strict=True)))
        wall = time.perf_counter() - t0
    finally:
        await asyncio.gather(*(h.close() for h in jars))
    if failures:
        raise BenchError(f"downloads failed: {failures}")
    ordered = sorted(latencies)
    return {"portal_residents_count": len(tokens), "portal_downloads_count": len(ordered),
            "portal_download_p50_ms": round(statistics.median(ordered), 1),
            "portal_download_p99_ms": round(_percentile(ordered, 99), 1),
            "portal_download_max_ms": round(ordered[-1], 1),
            "portal_downloads_per_s": round(len(ordered) / wall, 1),
            "portal_pdf_bytes_max": max(sizes), "portal_signin_s": round(signin_s, 2)}


def _hub_child(db: str, schema: str, port: str) -> None:
    """The portal's hub: ``start_hub`` (web only) until SIGTERM; settings from the environment."""
    from edge.watchdog import loop_alive, run_until_signal
    from hub.app import start_hub

    async def main() -> None:
        hub = await start_hub(db, None, port=int(port), schema=schema or None)
        try:
            await run_until_signal(loop_alive)
        finally:
            await hub.stop()

    asyncio.run(main())


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "hub":
    _hub_child(*sys.argv[2:])
