"""Run time of the ward layouts: shared and multiple display heads, one keypad driving several
counters (edge/devices/input/router.py), per-zone voice volume, simulated keypads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from hypothesis import given, settings
from hypothesis import strategies as st
from support import morning

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.display.codec import decode
from edge.devices.display.service import DisplayService
from edge.devices.health import HealthBoard
from edge.devices.input.keypad import KeypadService
from edge.devices.input.router import CALLS, CounterRouter
from edge.devices.profile_store import load_profiles
from edge.devices.profiles import DisplayProfile
from edge.devices.transport.sim import SIMS, sim_device
from edge.devices.voice.service import zone_gains
from edge.domain.clock import ManualClock

_LED = load_profiles()["led-rs485-binary"]
assert isinstance(_LED, DisplayProfile)
LED: DisplayProfile = _LED


async def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- display heads ---------------------------------------------------------------------------

async def test_a_shared_head_shows_the_latest_call_and_falls_back() -> None:
    name = f"heads-{uuid.uuid4().hex[:8]}"
    dev = sim_device(name)
    svc = DisplayService("led", LED, f"sim://{name}", HealthBoard(),
                         [("1", 1), ("2", 1), ("3", 2), ("3", 3)], keepalive_s=None)
    await svc.start()

    async def last_frames(count: int) -> list[tuple[int, str | None, int | None]]:
        await wait_for(lambda: not svc.pending() and len(decode(LED, bytes(dev.received)))
                       >= count)
        return [(f.addr, f.command, f.number) for f in decode(LED, bytes(dev.received))]

    try:
        svc.update("1", 12)
        assert (await last_frames(1))[-1] == (1, "show", 12)
        svc.update("2", 34)
        assert (await last_frames(2))[-1] == (1, "show", 34)
        svc.update("1", 12)  # a re-send of an unchanged number: still 34 is the latest call
        assert (await last_frames(3))[-1] == (1, "show", 34)
        assert svc.shown(1) == ("2", 34)
        svc.update("2", None)  # 34 finished: back to counter 1's call still being served
        assert (await last_frames(4))[-1] == (1, "show", 12)
        svc.update("1", 13, blink=False)
        svc.update("2", 35, blink=True)
        svc.update("1", None)
        assert svc.shown(1) == ("2", 35)
        svc.update("2", None)
        frames = await last_frames(5)
        assert frames[-1] == (1, "clear", None)
        dev.clear()
        svc.update("3", 7)  # one counter on two heads
        assert sorted((await last_frames(2))[-2:]) == [(2, "show", 7), (3, "show", 7)]
    finally:
        await svc.stop()


def test_one_counter_per_head_is_unchanged() -> None:
    svc = DisplayService("led", LED, "sim://unused", HealthBoard(), {"a": 1, "b": 2})
    assert svc.heads == {"a": (1,), "b": (2,)}
    assert svc.addresses == {"a": 1, "b": 2}
    svc.update("a", 5)
    svc.update("b", 6)
    svc.update("a", None)
    assert list(svc.pending()) == ["b", "a"]
    assert svc.shown(1) == ("a", None)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.none() | st.integers(1, 99),
                          st.booleans()), max_size=25))
def test_shared_head_property(updates: list[tuple[str, int | None, bool]]) -> None:
    """The head shows the counter whose number changed (or was recalled) most recently among
    those showing a number; blank when none does."""
    svc = DisplayService("led", LED, "sim://unused", HealthBoard(),
                         [("1", 1), ("2", 1), ("3", 1)])
    model: dict[str, tuple[int, int | None]] = {}
    for t, (cid, number, blink) in enumerate(updates):
        svc.update(cid, number, blink)
        if cid not in model or model[cid][1] != number or blink:
            model[cid] = (t, number)
        live = [(when, c, n) for c, (when, n) in model.items() if n is not None]
        shown = svc.shown(1)
        assert shown is not None
        if live:
            _, c, n = max(live)
            assert shown == (c, n)
        else:
            assert shown[1] is None


# --- keypad routing ----------------------------------------------------------------------------

def test_router_fills_counters_in_order_and_acts_where_it_called() -> None:
    busy: set[str] = set()
    r = CounterRouter(["1", "2", "3"])
    assert r.target("call_number", busy.__contains__) == "1"
    busy.add("1")
    assert r.target("call_number", busy.__contains__) == "2"
    busy.add("2")
    assert r.target("finish", busy.__contains__) == "2"
    busy.discard("1")
    assert r.target("call_next", busy.__contains__) == "1"
    busy |= {"1", "3"}
    assert r.target("call_number", busy.__contains__) == "2"  # all busy: the next in turn
    assert r.target("recall", busy.__contains__) == "2"
    with pytest.raises(ValueError, match="at least one"):
        CounterRouter([])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just([str(i) for i in range(n)]),
    st.lists(st.tuples(st.sampled_from(sorted(CALLS | {"finish", "recall", "hold"})),
                       st.sets(st.sampled_from([str(i) for i in range(n)]))), max_size=20))))
def test_router_property(case: tuple[list[str], list[tuple[str, set[str]]]]) -> None:
    counters, steps = case
    r = CounterRouter(counters)
    last = counters[0]
    for action, busy in steps:
        got = r.target(action, busy.__contains__)
        assert got in counters
        if action not in CALLS or len(counters) == 1:
            assert got == last
        elif free := [c for c in counters if c not in busy]:
            assert got == free[0]
        else:
            assert got == counters[(counters.index(last) + 1) % len(counters)]
        last = got


# --- voice -------------------------------------------------------------------------------------

@given(st.floats(0, 1), st.lists(st.none() | st.floats(0, 1), min_size=1, max_size=5))
def test_zone_gains_never_amplify_and_give_each_zone_its_volume(
        site: float, zones: list[float | None]) -> None:
    top, gains = zone_gains(site, zones)
    assert 0 <= top <= 1
    for want, gain in zip(zones, gains, strict=True):
        assert 0 <= gain <= 1
        if top > 0:
            assert abs(top * gain - (site if want is None else want)) < 1e-9


# --- end to end: one keypad, two counters, a shared head, simulated keypad ------------------

SITE = """
[site]
access = "open"
id = "ward-run"
name = { ja = "国民年金係", en = "National Pension" }

[[sections]]
id = "nenkin"
name = { ja = "国民年金係", en = "National Pension Section" }

[[services]]
code = "N"
name = { ja = "年金", en = "Pension" }
range = [1, 99]

[[counters]]
id = "1"
name = { ja = "1番", en = "1" }
services = ["N"]
section = "nenkin"

[[counters]]
id = "2"
name = { ja = "2番", en = "2" }
services = ["N"]
section = "nenkin"

[[devices]]
id = "pad"
kind = "keypad"
profile = "generic-usb-keypad"
url = "sim://wr-pad"
counters = ["1", "2"]
section = "nenkin"

[[devices]]
id = "led"
kind = "display"
profile = "led-rs485-binary"
url = "sim://wr-led"
addresses = { "1" = 1, "2" = 1 }
section = "nenkin"
"""


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    SIMS.clear()
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    e = build_edge(load_site_config(path), tmp_path / "e.db", ManualClock(morning()))
    runner = await start_edge(e, "127.0.0.1", free_port())
    yield e
    await runner.cleanup()


def calling(e: Edge) -> dict[str, int]:
    def read(s: Any) -> dict[str, int]:
        return {cid: t.number for cid in ("1", "2")
                if (t := s.current_ticket(cid)) is not None}
    return e.writer.read(read)


async def test_one_simulated_keypad_calls_to_two_counters(edge: Edge) -> None:
    from edge.domain import commands as c

    for cid in ("1", "2"):
        assert (await edge.writer.execute(c.OpenCounter(cid))).refused is None
    for _ in range(3):
        assert (await edge.writer.execute(c.Issue("N"))).refused is None
    board = edge.devices.board  # type: ignore[union-attr]
    await wait_for(lambda: (h := board.get("pad")) is not None and h.state == "ok")
    pad = sim_device("wr-pad")
    pad.feed(b"KEY_KPENTER\n")  # call next: counter 1 is free
    await wait_for(lambda: calling(edge) == {"1": 1})
    pad.feed(b"KEY_KPENTER\n")  # counter 1 busy: counter 2
    await wait_for(lambda: calling(edge) == {"1": 1, "2": 2})
    led = sim_device("wr-led")
    await wait_for(lambda: decode(LED, bytes(led.received))[-1].number == 2)
    pad.feed(b"KEY_KPSLASH\n")  # finish: where the keypad called last (counter 2)
    await wait_for(lambda: calling(edge) == {"1": 1})
    # the shared head falls back to counter 1's call, still being served
    await wait_for(lambda: decode(LED, bytes(led.received))[-1].number == 1)
    pad.feed(b"KEY_KP3 KEY_KPENTER\n")  # a typed number goes to the first free counter
    await wait_for(lambda: calling(edge) == {"1": 1, "2": 3})
    services = [s for s in edge.devices.services  # type: ignore[union-attr]
                if isinstance(s, KeypadService)]
    assert [s.id for s in services] == ["pad"]
    assert board.get("pad").bound_to == "1,2"  # type: ignore[union-attr]
