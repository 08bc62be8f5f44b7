"""The status page's "usually quiet" hours on a real hub with real edges: ``stats_rollup`` rows
inserted as ingest would write them show as quiet hours in Japanese and English, for today's
weekday and a weekday picked by link; a weekday with too little history says so and claims
nothing; without history there is no section at all. The rows are read once per refresh, not
per request."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import residents_support
from residents_support import Ward, ward
from sqlalchemy import insert

from hub.stats.tables import stats_rollup
from hub.store.store import now_utc
from hub.web.residents import QUIET
from hub.web.residents.access import TZ
from hub.web.residents.snapshot import DAY_KEYS

SITE = "oizumi"
HOURS = "hours = { " + ", ".join(f'{d} = ["08:30", "19:00"]' for d in DAY_KEYS) + " }"
PER_HOUR = {8: 5, 9: 10, 10: 20, 11: 20, 12: 10, 13: 10, 14: 2, 15: 2, 16: 10, 17: 10, 18: 10}


@pytest.fixture
async def w(mqtt_broker_url: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Ward]:
    monkeypatch.setattr(residents_support, "ALL_WEEK", HOURS)  # real opening hours, every day
    async with ward(mqtt_broker_url, tmp_path, sites=(SITE, "hikarigaoka"),
                    open_counters={SITE: ("1",), "hikarigaoka": ("1",)}) as live:
        yield live


def history(today: dt.date, sparse: int) -> list[dict[str, Any]]:
    """Eight weeks of arrivals at ``SITE`` (quiet 14-16, busy 10-12; split over two services
    and channels, as ingest writes them); weekday ``sparse`` only twice."""
    rows = []
    for back in range(1, 57):
        day = today - dt.timedelta(days=back)
        if day.weekday() == sparse and back > 14:
            continue
        for hour, n in PER_HOUR.items():
            for service, channel, part in (("A", "kiosk", n - n // 2), ("B", "web", n // 2)):
                if part:
                    rows.append({"site": SITE, "day": day.isoformat(), "measure": "issued",
                                 "hour": hour, "service": service, "counter": "", "staff": "",
                                 "channel": channel, "bucket": -1, "n": part, "total": 0.0,
                                 "max_s": 0.0})
    # today's own arrivals are not history; another measure is not arrivals
    rows.append({**rows[0], "day": today.isoformat(), "hour": 14, "n": 500})
    rows.append({**rows[0], "measure": "served", "hour": 15, "n": 500})
    return rows


def section(html: str) -> str:
    found = re.search(rf'<section class="quiet"[^>]*data-testid="quiet-{SITE}".*?</section>',
                      html, re.S)
    assert found, "no quiet section"
    return re.sub(r"\s+", " ", found.group(0))


async def test_quiet_hours_on_the_status_page(w: Ward) -> None:
    today = now_utc().astimezone(TZ).date()
    sparse = (today.weekday() + 2) % 7
    quiet = w.hub.runner.app[QUIET]
    _, _, page = await w.get("/?lang=ja")
    assert 'class="quiet"' not in page  # no history yet: nothing said

    async with w.hub.store.begin() as tx:
        await tx.conn.execute(insert(stats_rollup), history(today, sparse))
    _, _, page = await w.get("/?lang=ja")
    assert 'class="quiet"' not in page  # read at the next refresh, not per request
    version = quiet.version
    await quiet.refresh()
    assert quiet.version == version + 1
    await quiet.refresh()
    assert quiet.version == version + 1  # nothing changed: the rendered pages stay cached

    ja = section((await w.get("/?lang=ja"))[2])
    names_ja = ["月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日", "日曜日"]
    assert f"今日（{names_ja[today.weekday()]}）" in ja
    assert '<span class="nowrap">14時〜16時</span>ごろがふだんすいています' in ja
    assert "8時30分〜9時" in ja  # the opening part hour, as opened
    assert not re.search(r"(?<!\d)7時", ja)
    assert "19時〜" not in ja
    levels = re.findall(r'<tr data-level="(\w+)"><th scope="row">([^<]+)</th>', ja)
    assert levels[0] == ("normal", "8時30分〜9時")
    assert len(levels) == 11
    assert dict((t, lv) for lv, t in levels)["10時〜11時"] == "busy"
    assert "すいている" in ja
    assert "混んでいる" in ja
    assert "ふつう" in ja
    assert ja.count("<svg") == 11
    picker = re.findall(r'href="(/\?lang=ja[^"]*)"', ja)
    assert f"/?lang=ja&amp;weekday={DAY_KEYS[sparse]}#quiet-{SITE}" not in picker  # no history
    other = (today.weekday() + 1) % 7
    assert f"/?lang=ja&amp;weekday={DAY_KEYS[other]}#quiet-{SITE}" in picker

    en = section((await w.get(f"/?lang=en&weekday={DAY_KEYS[other]}"))[2])
    names_en = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    assert (f'On {names_en[other]}s it is usually quiet at <span class="nowrap">14:00–16:00'
            "</span>.") in en
    assert "Today (" not in en.split("</strong>")[0]
    assert "Quiet" in en
    assert "Busy" in en
    assert f'href="/?lang=en#quiet-{SITE}"' in en  # back to today

    thin = section((await w.get(f"/?lang=ja&weekday={DAY_KEYS[sparse]}"))[2])
    assert "まだお知らせできるだけの記録がありません" in thin
    assert "ごろがふだんすいています" not in thin
    assert "<table" not in thin
    # an office without history gets no section
    assert 'data-testid="quiet-hikarigaoka"' not in (await w.get("/?lang=ja"))[2]
