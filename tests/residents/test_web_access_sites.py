"""W8 per office: views of two offices' resident pages (ticket pages, web ticket pages) are
counted per office, pages of no one office (the status page, the reservation start page) under
``""``; the statistics endpoint keeps its per-page totals and adds ``by_site``. Unknown offices
in a URL are not counted (a URL can name anything)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from residents_support import Ward, ward
from staff_support import staff_cookie

from hub.store.store import now_utc
from hub.web.api import SETTINGS
from hub.web.residents import ACCESS

TZ = ZoneInfo("Asia/Tokyo")
SITES = ("oizumi", "hikarigaoka")


@pytest.fixture
async def w(mqtt_broker_url: str, tmp_path: Path) -> AsyncIterator[Ward]:
    async with ward(mqtt_broker_url, tmp_path, sites=SITES,
                    open_counters={s: ("1",) for s in SITES}) as live:
        yield live


async def test_views_are_counted_per_site(w: Ward) -> None:
    (oz,) = await w.issue("oizumi", "B")
    (hk,) = await w.issue("hikarigaoka", "B")
    await w.synced()
    for _ in range(3):
        assert (await w.get(f"/t/{w.token('oizumi', oz['number'])}"))[0] == 200
    assert (await w.get(f"/t/{w.token('hikarigaoka', hk['number'])}"))[0] == 200
    for site, n in (("oizumi", 1), ("hikarigaoka", 2)):
        for _ in range(n):
            await w.get(f"/w/{site}/B")
    assert (await w.get("/w/nowhere/B"))[0] == 404
    await w.get("/?lang=en")
    await w.get("/r")
    access = w.hub.runner.app[ACCESS]
    await access.flush()
    await w.get(f"/t/{w.token('hikarigaoka', hk['number'])}")  # not flushed yet: counted too

    day = now_utc().astimezone(TZ).date().isoformat()
    hour = now_utc().astimezone(TZ).strftime("%H")
    viewer = await staff_cookie(w.hub.store, w.hub.runner.app[SETTINGS], "stats_viewer")
    status, _, stats = await w.get(f"/api/stats/web-access?day={day}", cookies=viewer)
    assert status == 200, stats
    pages = stats["pages"]
    ticket = pages["ticket"]
    assert (ticket["total"], ticket["by_hour"]) == (5, {hour: 5})  # all offices, as before
    assert {s: v["total"] for s, v in ticket["by_site"].items()} == {
        "oizumi": 3, "hikarigaoka": 2}
    assert ticket["by_site"]["oizumi"]["by_hour"] == {hour: 3}
    assert {s: v["total"] for s, v in pages["webticket"]["by_site"].items()} == {
        "oizumi": 1, "hikarigaoka": 2}
    assert pages["status"]["by_site"] == {"": {"total": 1, "by_hour": {hour: 1}}}
    assert list(pages["reservation_start"]["by_site"]) == [""]

    await access.flush()  # a second flush adds to the stored rows (upsert on page+site+hour)
    _, _, again = await w.get(f"/api/stats/web-access?day={day}", cookies=viewer)
    assert again["pages"]["ticket"]["by_site"]["hikarigaoka"]["total"] == 2
    assert again["pages"]["ticket"]["total"] == 5
