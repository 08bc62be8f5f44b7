"""``madoguchi demo --ward``: every site of ``sites/ward/`` against one hub.

The end-to-end test runs the real CLI in a subprocess, signs in to the hub with the demo account
the banner prints and waits until every ward site is online at the hub's API with events still
arriving; then Ctrl-C, and the demo has said what it cost. The plan (which counters are
simulated, at what rate), the ports and the cost meter are checked on their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import small_site, text

from edge.config import load_site_config
from edge.demo_ward import ward_folder
from edge.demo_ward_plan import (
    WARD_OPERATORS,
    CostMeter,
    WardError,
    kiosks_for,
    site_ports,
    ward_paths,
    ward_plan,
)
from edge.domain.model import Counter, DeviceSpec, Menu, Service, SiteConfig
from edge.paths import data_dir

WARD = data_dir("sites") / "ward"
START_S = 90.0  # eighteen sites join the broker one by one


def _ward_configs() -> list[SiteConfig]:
    return [load_site_config(p) for p in ward_paths(WARD)]


# --- the plan ------------------------------------------------------------------------------------

def _site(counters: list[list[int]], kiosk: list[bool]) -> SiteConfig:
    """Services A, B, … (``kiosk`` says which take numbers at the kiosk), counters serving the
    services of the given indexes (modulo the number of services)."""
    codes = [chr(ord("A") + i) for i in range(len(kiosk))]
    services = {code: Service(code, text(code, code), 1 + 1000 * i, 999 + 1000 * i,
                              kiosk=k, handling_s=60 * (1 + i))
                for i, (code, k) in enumerate(zip(codes, kiosk, strict=True))}
    return SiteConfig("s", text("s", "s"), "Asia/Tokyo", services,
                      {str(i + 1): Counter(str(i + 1), text("c", "c"),
                                           tuple(codes[j % len(codes)] for j in served))
                       for i, served in enumerate(counters)})


@given(st.lists(st.booleans(), min_size=1, max_size=5),
       st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True),
                min_size=1, max_size=12),
       st.integers(1, 5))
def test_plan_covers_kiosk_services_with_few_counters(kiosk: list[bool],
                                                      counters: list[list[int]],
                                                      cap: int) -> None:
    cfg = _site(counters, kiosk)
    plan = ward_plan(cfg, user=["1"], cap=cap)
    assert len(plan.counters) <= cap
    assert len(set(plan.counters)) == len(plan.counters)
    if len(cfg.counters) > 1:
        assert "1" not in plan.counters  # left to the user unless it is the only counter
    served = {s for cid in plan.counters for s in cfg.counters[cid].services}
    kiosk_codes = {code for code, s in cfg.services.items() if s.kiosk}
    assert set(plan.services) == served & kiosk_codes  # visitors only where someone serves
    # the greedy choice leaves out no kiosk service an unused counter could add, unless full
    others = [cid for cid in cfg.counters if cid not in plan.counters and cid != "1"]
    if len(plan.counters) < cap:
        assert all(not (set(cfg.counters[k].services) & kiosk_codes) for k in others)
    assert (plan.arrivals_per_sim_min > 0) == bool(plan.services)
    if plan.services:
        mean_min = sum(cfg.services[s].handling_s for s in plan.services) / 60 / len(
            plan.services)
        assert plan.arrivals_per_sim_min == pytest.approx(0.8 * len(plan.counters) / mean_min)


def test_plan_of_the_sample_site() -> None:
    plan = ward_plan(small_site(), user=["1"])
    assert plan.counters == ("2",)  # 3 serves only C, which no kiosk issues
    assert plan.services == ("A", "B")


def test_every_ward_site_gets_traffic() -> None:
    """Each site has simulated counters and services for visitors, so events arrive from all."""
    configs = _ward_configs()
    assert len(configs) == len(list(WARD.glob("*.toml")))
    for cfg in configs:
        plan = ward_plan(cfg)
        assert 1 <= len(plan.counters) <= WARD_OPERATORS, cfg.site
        assert plan.services, cfg.site


def test_visitors_take_numbers_at_a_kiosk_offering_the_service() -> None:
    def printer(kiosk: str) -> DeviceSpec:
        return DeviceSpec(f"printer-{kiosk}", "printer", "epson-tm-t88vi", f"sim://{kiosk}",
                          kiosk=kiosk)

    base = small_site()
    assert kiosks_for(base) == {"A": (None,), "B": (None,), "C": (None,)}  # nothing prints
    shared = replace(base, devices=(printer("k1"), printer("k2")), menus={
        "m1": Menu("m1", text("1", "1"), ("A",), default=True, kiosks=("k1",)),
        "m2": Menu("m2", text("2", "2"), ("A", "B"), default=True, kiosks=("k2",))})
    assert kiosks_for(shared) == {"A": ("k1", "k2"), "B": ("k2",), "C": ("k1", "k2")}
    for cfg in _ward_configs():  # every service visitors ask for has a kiosk offering it
        plan, kiosks = ward_plan(cfg), kiosks_for(cfg)
        for svc in plan.services:
            assert kiosks[svc], (cfg.site, svc)
            if any(svc in m.services for m in cfg.menus.values()):  # a menu offers it
                assert all(any(svc in m.services for m in cfg.menus_for(k).values())
                           for k in kiosks[svc]), (cfg.site, svc)


@given(st.integers(1024, 60000), st.integers(0, 30),
       st.sets(st.integers(1024, 60100), max_size=10))
def test_site_ports_skip_the_taken(first: int, n: int, taken: set[int]) -> None:
    ports = site_ports(first, n, taken)
    assert len(ports) == n
    assert ports == sorted(set(ports))
    assert not set(ports) & taken
    assert all(p >= first for p in ports)
    if ports:  # no gap other than the taken ports
        assert ports == [p for p in range(first, ports[-1] + 1) if p not in taken]


def test_default_ports_avoid_the_hub() -> None:
    ports = site_ports(8080, 18, {8090})
    assert 8090 not in ports
    assert ports[:10] == list(range(8080, 8090))
    assert ports[-1] == 8098


def test_ward_paths(tmp_path: Path) -> None:
    with pytest.raises(WardError, match="no such folder"):
        ward_paths(tmp_path / "missing")
    with pytest.raises(WardError, match="no site"):
        ward_paths(tmp_path)
    (tmp_path / "b.toml").write_text("")
    (tmp_path / "a.toml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert [p.name for p in ward_paths(tmp_path)] == ["a.toml", "b.toml"]
    assert ward_folder("") == WARD
    assert ward_folder(str(tmp_path)) == tmp_path


def test_cost_meter() -> None:
    wall, cpu, rss = [100.0], [5.0], [50.0]
    meter = CostMeter(lambda: wall[0], lambda: cpu[0], lambda: rss[0], lambda: 40.0)
    wall[0], cpu[0] = 110.0, 10.0  # start-up: 50 % of a core, not part of the run
    meter.reset()
    wall[0], cpu[0], rss[0] = 120.0, 12.0, 80.0
    first = meter.sample()
    assert first.cpu_pct == pytest.approx(20.0)
    assert (first.rss_mb, first.peak_rss_mb) == (80.0, 80.0)
    wall[0], cpu[0], rss[0] = 130.0, 20.0, 60.0
    assert meter.sample().cpu_pct == pytest.approx(80.0)
    final = meter.stop()
    assert final.cpu_pct == pytest.approx(50.0)  # 10 s of CPU over 20 s since the reset
    assert (final.rss_mb, final.peak_rss_mb, final.seconds) == (60.0, 80.0, 20.0)
    wall[0], cpu[0] = 200.0, 100.0  # shutting down does not change the run's figure
    assert meter.stop() == final
    assert "CPU 50%" in final.text()
    assert "RSS 60 MB" in final.text()


# --- the demo itself -----------------------------------------------------------------------------

@pytest.fixture
def ward_demo(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MADOGUCHI_SMTP_URL", None)
    env.pop("MADOGUCHI_MAIN_SITE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "demo", "--ward", "--at", "10:30", "--port", "0",
         "--hub-port", "0", "--no-screen", "--speed", "60"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _banner(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("broker mqtt://"):
            return lines
    raise AssertionError("the ward demo printed no banner:\n" + "\n".join(lines))


def _line(proc: subprocess.Popen[str], needle: str, timeout_s: float = 30.0) -> str:
    """The next output line containing ``needle`` (a summary line comes every 5 s)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if needle in line:
            return line
        seen.append(line)
    raise AssertionError(f"no line with {needle!r}:\n" + "".join(seen[-20:]))


async def _signed_in(http: aiohttp.ClientSession, hub: str, login: str, password: str) -> None:
    async with http.get(f"{hub}/auth/login") as r:
        assert r.status == 200
    token = next(c.value for c in http.cookie_jar if c.key == "madoguchi_login")
    async with http.post(f"{hub}/auth/login", allow_redirects=False, data={
            "login": login, "password": password, "csrf": token, "next": "/staff/sites"}) as r:
        assert r.status == 303, await r.text()


async def _online_with_events(hub: str, login: str, password: str,
                              sites: set[str]) -> dict[str, int]:
    """Every ward site online at the hub and its last seq growing: events keep arriving."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _signed_in(http, hub, login, password)
        first: dict[str, int] = {}
        deadline = time.monotonic() + 60
        rows: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline:
            async with http.get(f"{hub}/api/sites") as r:
                assert r.status == 200
                rows = {row["site"]: row for row in (await r.json())["sites"]}
            online = {s: int(str(rows[s]["last_seq"])) for s in sites
                      if s in rows and rows[s]["online"]}
            if not first and len(online) == len(sites):
                first = online
            if first and all(online.get(s, 0) > first[s] for s in sites):
                return online
            await asyncio.sleep(1.0)
        late = sorted(s for s in sites if not first or rows.get(s, {}).get("last_seq")
                      == first.get(s))
        raise AssertionError(f"not online with new events within 60 s: {late}\n{rows}")


async def test_ward_demo_every_site_online_with_events(
        ward_demo: subprocess.Popen[str]) -> None:
    sites = {cfg.site for cfg in _ward_configs()}
    banner = _banner(ward_demo)
    text_ = "\n".join(banner)
    hub = re.search(r"ハブ hub (http://127\.0\.0\.1:\d+)/", text_)
    account = re.search(r"ID (\S+)\s+パスワード password (\S+)", text_)
    assert hub, text_
    assert account, text_
    for site in sites:  # every site's screens are listed
        assert re.search(rf"(?m)^  {re.escape(site)}\s+http://127\.0\.0\.1:\d+/ui/", text_), site
    assert f"{len(sites)} sites" in banner[0] or f"{len(sites)} sites" in text_
    seqs = await _online_with_events(hub.group(1), account.group(1), account.group(2), sites)
    assert set(seqs) == sites
    # the summary line (every 5 s) says the same, with the cost so far
    line = await asyncio.to_thread(_line, ward_demo, f"ハブ hub {len(sites)}/{len(sites)} online")
    assert re.search(r"CPU \d+% .* RSS \d+ MB", line), line
    ward_demo.send_signal(signal.SIGINT)
    out, _ = ward_demo.communicate(timeout=60)
    assert ward_demo.returncode == 0, out[-3000:]
    cost = re.search(r"cost over \d+ s of traffic \((\d+) sites\): CPU (\d+)% .* RSS (\d+) MB",
                     out)
    assert cost, out[-3000:]
    assert int(cost.group(1)) == len(sites)
    assert int(cost.group(3)) > 0
    assert "Traceback" not in out, out
    assert "demo stopped" in out
