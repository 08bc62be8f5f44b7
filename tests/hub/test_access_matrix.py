"""Route × role matrix over the hub's own route table: every declared route is requested
anonymously and by each role, and is let through exactly when its access level allows it.

"Let through" means the access middleware did not refuse: its refusals are 401 JSON
``login_required`` and 403 JSON ``forbidden`` (requests ask for JSON). Whatever the handler
answers next (200, 400, 404, 503 without ingest) is the route's own business.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from staff_support import staff_cookie

from hub.app import Hub, start_hub
from hub.auth import service
from hub.auth.access import allows
from hub.auth.guard import COOKIE, check_declared, enforce_access
from hub.settings import HubSettings
from hub.web.api import ACCESS_TABLE, SETTINGS

SITE = "oizumi"
# who asks: (label, grants); None = anonymous
ROLES: tuple[tuple[str, tuple[tuple[str, str], ...] | None], ...] = (
    ("anonymous", None),
    ("admin", (("*", "admin"),)),
    ("ward_staff@oizumi", ((SITE, "ward_staff"),)),
    ("ward_staff@nerima", (("nerima", "ward_staff"),)),
    ("counter_staff@oizumi", ((SITE, "counter_staff"),)),
    ("stats_viewer", (("*", "stats_viewer"),)),
    ("notice_staff@zeimu", (("zeimu", "notice_staff"),)),
    ("form_staff@kosodate", (("kosodate", "form_staff"),)),
)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = HubSettings(keys={"t": bytes(32)}, key_id="t")
    h = await start_hub(f"sqlite:///{tmp_path}/m.db", None, port=0, settings=settings)
    yield h
    await h.stop()


def concrete(path: str, target: str) -> str:
    values = {"site": SITE, "token": secrets.token_urlsafe(16), "service": "A",
              "staff_id": target, "action": "enable", "notice_id": "1", "file_id": "1",
              "step": "code", "form_id": "f0123456789abcdef", "sid": "1", "page_id": "p1",
              "field_id": "name", "reference": "F-2026-000001", "n": "1"}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path + "/residents.css" if path == "/static" else path


async def refused(http: aiohttp.ClientSession, method: str, url: str,
                  headers: dict[str, str]) -> bool:
    try:
        async with http.request(method, url, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=3)) as r:
            if r.status not in (401, 403) or r.content_type != "application/json":
                return False
            code = (await r.json())["error"]["code"]
            return code in ("login_required", "forbidden")
    except TimeoutError:  # a stream that stays open: the guard let it through
        return False


async def test_every_route_times_every_role(hub: Hub) -> None:
    app = hub.runner.app
    declared = app[ACCESS_TABLE]
    table = dict(declared)
    target = await service.create_staff(hub.store, "target", "a long password!",
                                        grants=[(SITE, "counter_staff")])
    sessions: dict[str, dict[str, str]] = {}
    for label, grants in ROLES:
        if grants is not None:
            site, role = grants[0]
            sessions[label] = await staff_cookie(hub.store, app[SETTINGS], role, site)
    cases = mismatches = 0
    wrong: list[str] = []
    # sign-out last: it ends the session it is called with
    routes = sorted(table.items(), key=lambda kv: kv[0] == ("POST", "/auth/logout"))
    async with aiohttp.ClientSession() as http:
        for (method, path), level in routes:
            for label, grants in ROLES:
                cookies = sessions.get(label)
                headers = {"Accept": "application/json"}
                if cookies is not None:
                    headers["Cookie"] = f"{COOKIE}={cookies[COOKIE]}"
                    headers["X-CSRF-Token"] = service.csrf_token(cookies[COOKIE])
                url = hub.url + concrete(path, target)
                expected = (grants is not None and allows(
                    level, grants, SITE if "{site}" in path else None)) or allows(level, ())
                got = not await refused(http, method, url, headers)
                cases += 1
                if got != expected:
                    mismatches += 1
                    wrong.append(f"{method} {path} [{level}] as {label}: "
                                 f"{'allowed' if got else 'refused'}")
    print(f"access matrix: {len(table)} routes x {len(ROLES)} callers = {cases} cases")
    assert len(table) >= 25
    assert not wrong, "\n".join(wrong)


async def test_a_route_without_a_level_is_refused_and_stops_startup() -> None:
    app = web.Application(middlewares=[enforce_access])
    app[ACCESS_TABLE] = {}

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app.router.add_get("/forgotten", handler)
    with pytest.raises(RuntimeError, match="/forgotten"):
        check_declared(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/forgotten") as r:
            assert r.status == 403
            assert "secret" not in await r.text()
    finally:
        await runner.cleanup()


async def test_the_hub_refuses_to_start_with_an_undeclared_route(tmp_path: Path) -> None:
    def extra(app: web.Application) -> None:
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(text="x")

        app.router.add_get("/undeclared", handler)

    with pytest.raises(RuntimeError, match="/undeclared"):
        await start_hub(f"sqlite:///{tmp_path}/u.db", None, port=0, extra_routes=extra)


