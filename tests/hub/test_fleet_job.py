"""The fleet watcher on a real store with the hub's clock injected (``use_clock``): findings
become incidents, one e-mail each way per site, opening hours decide "offline", and a restart
does not open (or e-mail) an incident again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
from fleet_support import put_site, site_toml

from edge.config import parse_site_config
from edge.domain.model import SiteConfig
from hub.fleet import mail, service
from hub.fleet.job import Fleet, sync_lag
from hub.fleet.service import Recipient
from hub.fleet.settings import FleetSettings
from hub.kit.runtime import Runtime
from hub.notify.senders import Notice, SendError
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.store import use_clock

TZ = ZoneInfo("Asia/Tokyo")
SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1",
                       public_url="https://hub.example.jp")
FLEET = FleetSettings(hold_s=30, clear_s=120, minute_s=60)
PAPER_OUT = [{"device": "printer-k1", "kind": "printer", "state": "error", "reason": "paper_out",
              "since": None}]
PAPER_OK = [{**PAPER_OUT[0], "state": "ok", "reason": None}]


class Sink:
    channel = "email"

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


class Live:
    """What the watcher asks of live sites: a site's config (for its calendar)."""

    def __init__(self, configs: dict[str, SiteConfig]) -> None:
        self.configs = configs

    async def config(self, site: str) -> SiteConfig | None:
        return self.configs.get(site)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock(datetime(2026, 12, 7, 10, 0, tzinfo=TZ))  # a Monday, 10:00
    use_clock(c)
    yield c
    use_clock(None)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HubStore]:
    s = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    yield s
    await s.close()


def fleet(store: HubStore, sink: Sink, configs: dict[str, SiteConfig] | None = None) -> Fleet:
    rt = Runtime(store=store, settings=SETTINGS, jinja=jinja2.Environment(autoescape=True),
                 live=Live(configs or {}))  # type: ignore[arg-type]
    return Fleet(rt, FLEET, sink)


async def step(f: Fleet, clock: Clock, seconds: float) -> list[Any]:
    clock.advance(seconds)
    f.heard = dict.fromkeys(f.heard, clock.at.timestamp())  # statuses keep coming
    out = await f.evaluate()
    await f.idle()
    return out


async def test_paper_out_opens_once_mails_once_and_survives_a_restart(
        store: HubStore, clock: Clock) -> None:
    await service.add_recipient(store, SETTINGS, "s1", "a.tantou@city.example.jp", "en",
                                actor=None, ip=None)
    await service.add_recipient(store, SETTINGS, "*", "ward.it@city.example.jp", "ja",
                                actor=None, ip=None)
    await service.add_recipient(store, SETTINGS, "s2", "other@city.example.jp", "ja",
                                actor=None, ip=None)
    sink = Sink()
    f = fleet(store, sink)
    f.heard["s1"] = clock.at.timestamp()
    await put_site(store, "s1", devices=PAPER_OUT)
    assert await step(f, clock, 0) == []
    assert await step(f, clock, 29) == []  # not yet held 30 s
    [opened] = await step(f, clock, 2)
    assert (opened.kind, opened.key) == ("opened", ("s1", "paper_out", "printer-k1"))
    assert sorted(n.to for n in sink.sent) == ["a.tantou@city.example.jp",
                                               "ward.it@city.example.jp"]  # not s2's
    english = next(n for n in sink.sent if n.lang == "en")
    assert english.subject == "[Madoguchi] s1: Printer out of paper"
    assert "https://hub.example.jp/admin/fleet" in english.body
    assert "用紙切れ" in english.body
    [inc] = await service.open_incidents(store)
    assert inc.open_mail == "sent"
    for _ in range(5):
        assert await step(f, clock, 10) == []
    assert len(sink.sent) == 2

    # a restart: the open incident is read back, nothing is opened or sent again
    sink2 = Sink()
    f2 = fleet(store, sink2)
    await f2.restore()
    f2.heard["s1"] = clock.at.timestamp()
    assert await step(f2, clock, 60) == []
    await put_site(store, "s1", devices=PAPER_OK)
    assert await step(f2, clock, 1) == []
    assert await step(f2, clock, 110) == []
    [recovered] = await step(f2, clock, 11)
    assert recovered.kind == "recovered"
    assert len(sink2.sent) == 2
    assert all("recovered" in n.subject or "復旧" in n.subject
                                        for n in sink2.sent)
    assert await service.open_incidents(store) == []


async def test_offline_counts_in_opening_hours_only(store: HubStore, clock: Clock) -> None:
    toml = site_toml("s3").replace(
        'timezone = "Asia/Tokyo"',
        'timezone = "Asia/Tokyo"\nhours = { mon = ["08:30", "17:00"] }')
    configs = {"s3": parse_site_config(toml)}
    clock.at = datetime(2026, 12, 7, 6, 0, tzinfo=TZ)  # Monday before opening
    sink = Sink()
    f = fleet(store, sink, configs)
    await put_site(store, "s3", online=False)
    for _ in range(12):  # 06:00-08:00: closed, nothing however long it is offline
        assert await step(f, clock, 600) == []
    clock.at = datetime(2026, 12, 7, 8, 29, tzinfo=TZ)
    assert await step(f, clock, 0) == []
    assert await step(f, clock, 60) == []  # 08:30 open: the 5 minutes start now
    assert await step(f, clock, 240) == []
    [opened] = await step(f, clock, 61)
    assert opened.key == ("s3", "site_offline", "")
    assert sink.sent == []  # no recipients: marked so
    [inc] = await service.open_incidents(store)
    assert inc.open_mail == "none"


async def test_a_silent_site_counts_as_offline(store: HubStore, clock: Clock) -> None:
    """No offline status came (the line is cut, the broker has not sent the will yet), but no
    status either for ``stale_s``: offline."""
    f = fleet(store, Sink())
    f.started = clock.at.timestamp()
    await put_site(store, "s4")  # online, as it said last
    clock.advance(FLEET.stale_s + 1)
    assert await f.evaluate() == []  # the offline hold (5 minutes) starts
    clock.advance(5 * 60 + 1)
    [opened] = await f.evaluate()
    assert opened.key == ("s4", "site_offline", "")


def test_sync_lag_is_zero_in_sync_and_the_hub_copys_age_behind() -> None:
    now = datetime(2026, 12, 7, 10, 0, tzinfo=TZ)
    row = {"last_seq_contiguous": 40, "last_event_at": now - timedelta(seconds=95)}
    assert sync_lag(row, {"last_seq": 40}, now) == 0
    assert sync_lag(row, {"last_seq": 42}, now) == 95
    assert sync_lag(row, {}, now) is None  # nothing said yet
    assert sync_lag({"last_seq_contiguous": 0, "last_event_at": None}, {"last_seq": 3},
                    now) is None


class Failing:
    channel = "email"

    def __init__(self, permanent: bool) -> None:
        self.permanent, self.tries = permanent, 0

    async def send(self, notice: Notice) -> None:
        self.tries += 1
        raise SendError("SMTP 550" if self.permanent else "ConnectionRefusedError",
                        permanent=self.permanent)


@pytest.mark.parametrize(("permanent", "tries"), [(True, 1), (False, 3)])
async def test_a_failing_smtp_server_is_retried_and_logged_without_the_address(
        permanent: bool, tries: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sender = Failing(permanent)
    who = Recipient("r1", "s1", "secret.person@city.example.jp", "ja")
    item = {"kind": "opened", "rule": "disk_full", "subject": "", "at": 1.8e9}
    outcome = await mail.send_all(sender, [who], "s1", None, [item], "https://h/admin/fleet",
                                  (0.0, 0.0), "inc-1")
    assert (outcome, sender.tries) == ("failed", tries)
    assert any("inc-1" in r.getMessage() for r in caplog.records)
    assert not any("secret.person" in r.getMessage() for r in caplog.records)
    assert await mail.send_all(None, [who], "s1", None, [item], "u", (), "i") == "off"
    assert await mail.send_all(sender, [], "s1", None, [item], "u", (), "i") == "none"
