"""Load processes of ``bench hub``, each run as ``python -m edge.bench.hub_load …``.

Why separate processes: the phones are not in the hub, nor in the bench that drives the sites;
a client sharing their event loop would measure its own queueing. Only aiohttp is imported, so
a process starts fast.

* ``sse URL N OUT``: holds ``N`` server-sent-event streams; prints ``ready <connected>
  <failed>`` once each has its first frame (or failed), records ``(version, time.time())`` for
  every ``id:`` frame, and on a line on stdin (or EOF) writes them as JSON to ``OUT``.
* ``http URL CONNECTIONS SECONDS``: the fallback when ``wrk`` is absent: keeps ``CONNECTIONS``
  requests in flight for ``SECONDS`` and prints one JSON object (requests, latencies, errors).
* ``login URL``: staff signing in at one moment. Reads ``{"logins": [...], "password": ...}``
  on stdin (the password is the bench's own, but still kept off the command line, where ``ps``
  shows it); each login opens the sign-in page as a browser does (its double-submit CSRF cookie,
  a kept-alive connection), then all post the form together; prints one JSON object (seconds per
  post, statuses, and how many of the sessions then opened a staff page).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

CONNECT_AT_ONCE = 100  # the hub's listen backlog is 128: connect in waves


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Stream:
    __slots__ = ("failed", "first", "frames")

    def __init__(self) -> None:
        self.frames: list[tuple[int, float]] = []
        self.first = asyncio.Event()
        self.failed = False


async def _follow(session: aiohttp.ClientSession, url: str, st: Stream,
                  gate: asyncio.Semaphore) -> None:
    """Read one stream; a frame's time is when the chunk completing it arrived."""
    buf = b""
    try:
        async with gate:
            resp = await session.get(url)
        async with resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            async for chunk in resp.content.iter_any():
                now = time.time()
                buf += chunk
                *frames, buf = buf.split(b"\n\n")
                for f in frames:
                    if f.startswith(b"id: "):
                        st.frames.append((int(f[4:f.index(b"\n")]), now))
                        st.first.set()
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        st.failed = True
    finally:
        st.first.set()


async def sse(url: str, n: int, out: str) -> None:
    _raise_nofile()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    streams = [Stream() for _ in range(n)]
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [asyncio.create_task(_follow(session, url, st, gate)) for st in streams]
        for st in streams:
            await st.first.wait()
        failed = sum(st.failed for st in streams)
        print(f"ready {n - failed} {failed}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    Path(out).write_text(json.dumps({"failed": [st.failed for st in streams],  # noqa: ASYNC240
                                     "frames": [st.frames for st in streams]}), encoding="utf-8")


async def http(url: str, connections: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < end:
                t0 = time.monotonic()
                try:
                    async with session.get(url) as r:
                        await r.read()
                        codes[r.status] = codes.get(r.status, 0) + 1
                except (aiohttp.ClientError, OSError):
                    errors += 1
                    continue
                latencies.append(time.monotonic() - t0)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        took = time.monotonic() - t0
    return {"requests": len(latencies), "seconds": took, "latencies_s": latencies,
            "codes": codes, "errors": errors}


LOGIN_PRE_COOKIE = "madoguchi_login"  # hub.auth.routes.PRE_COOKIE (not imported: aiohttp only)
STAFF_COOKIE = "madoguchi_staff"  # hub.auth.guard.COOKIE


async def _login_page(session: aiohttp.ClientSession, url: str) -> str:
    """Open the sign-in page; the form's CSRF token is the double-submit cookie it sets."""
    async with session.get(f"{url}/auth/login") as r:
        await r.read()
        if r.status != 200:
            raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
    return next((c.value for c in session.cookie_jar if c.key == LOGIN_PRE_COOKIE), "")


async def _login_post(session: aiohttp.ClientSession, url: str, login: str, password: str,
                      token: str) -> tuple[float, int]:
    """(seconds the POST took until its whole answer was read, its status)."""
    t0 = time.perf_counter()
    async with session.post(f"{url}/auth/login", allow_redirects=False, data={
            "login": login, "password": password, "csrf": token, "next": "/auth/home"}) as r:
        await r.read()
        return time.perf_counter() - t0, r.status


async def _signed_in(session: aiohttp.ClientSession, url: str) -> bool:
    """Does the session the sign-in gave open a staff-only API (after the burst, untimed)?"""
    async with session.get(f"{url}/api/sites") as r:
        return r.status == 200


async def login(url: str, logins: list[str], password: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=60)
    sessions = [aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.CookieJar(unsafe=True))
                for _ in logins]
    try:
        tokens = await asyncio.gather(*(_login_page(s, url) for s in sessions))
        await asyncio.sleep(0.2)  # every page loaded and the hub idle: now all post at once
        done = await asyncio.gather(*(_login_post(s, url, name, password, token) for s, name, token
                                      in zip(sessions, logins, tokens, strict=True)))
        signed_in = sum(await asyncio.gather(*(_signed_in(s, url) for s in sessions)))
    finally:
        for s in sessions:
            await s.close()
    codes: dict[int, int] = {}
    for _took, status in done:
        codes[status] = codes.get(status, 0) + 1
    return {"latencies_s": [took for took, _s in done], "codes": codes, "signed_in": signed_in}


def main(argv: list[str]) -> None:
    if argv[0] == "sse":
        asyncio.run(sse(argv[1], int(argv[2]), argv[3]))
    elif argv[0] == "http":
        print(json.dumps(asyncio.run(http(argv[1], int(argv[2]), float(argv[3])))))
    elif argv[0] == "login":
        job = json.loads(sys.stdin.read())
        print(json.dumps(asyncio.run(login(argv[1], list(job["logins"]), str(job["password"])))))
    else:
        raise SystemExit(f"unknown load {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
