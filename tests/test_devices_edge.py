"""The edge with its devices on simulators: kiosk tickets print after commit, displays follow
calls, scans at a counter clear absences, and a failing device never stalls the queue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import free_port
from support import morning

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.display.codec import split_frames
from edge.devices.printer.decode import QrCode, TextLine, decode, only
from edge.devices.transport.sim import SIMS, sim_device
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig

SITE = """
[site]
access = "open"  # these tests are about the queue; sign-in: tests/edge/test_edge_access.py
id = "dev-site"
name = { ja = "練馬区民事務所", en = "Nerima Office" }
status_url = "https://queue.example.jp/t/{token}"

[[services]]
code = "A"
name = { ja = "住民異動", en = "Moving" }
range = [1, 99]
ticket = "two-part"

[[services]]
code = "B"
name = { ja = "証明書", en = "Certificates" }
range = [101, 199]
web = { from = "00:00", to = "24:00" }  # web tickets all day (the tests run at any hour)

[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1" }
services = ["A", "B"]

[[counters]]
id = "2"
name = { ja = "2番窓口", en = "Counter 2" }
services = ["B", "A"]

[[devices]]
id = "printer-k1"
kind = "printer"
profile = "epson-tm-t88vi"
url = "sim://t-printer-k1"
kiosk = "k1"

[[devices]]
id = "printer-k2"
kind = "printer"
profile = "generic-58mm"
url = "sim://t-printer-k2"
kiosk = "k2"

[[devices]]
id = "led"
kind = "display"
profile = "led-ascii-stx"
url = "sim://t-led"
addresses = { "1" = 1, "2" = 2 }

[[devices]]
id = "scanner-1"
kind = "scanner"
profile = "generic-serial-scanner"
url = "sim://t-scanner-1"
counter = "1"
"""


@dataclass
class Site:
    edge: Edge
    session: aiohttp.ClientSession
    url: str
    previews: Path

    async def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        async with self.session.post(path, json=body) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == status, data
            return data

    async def get(self, path: str) -> Any:
        async with self.session.get(path) as r:
            assert r.status == 200
            return await r.json()

    def device(self, device_id: str) -> dict[str, Any]:
        views = self.edge.devices.board.views()  # type: ignore[union-attr]
        return next(v for v in views if v["id"] == device_id)


def config(tmp_path: Path) -> SiteConfig:
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    return load_site_config(path)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    SIMS.clear()
    previews = tmp_path / "tickets"
    edge = build_edge(config(tmp_path), tmp_path / "e.db", ManualClock(morning()),
                      preview_dir=previews)
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(base_url=url) as session:
        yield Site(edge, session, url, previews)
    await runner.cleanup()


async def wait_for(cond: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def display_frames(name: str) -> list[Any]:
    from edge.devices.profile_store import load_profiles

    frames, rest = split_frames(load_profiles()["led-ascii-stx"], bytes(sim_device(name).received))
    assert rest == b""
    return frames


async def test_kiosk_ticket_prints_after_commit_with_number_text_and_qr(site: Site) -> None:
    data = await site.post("/api/tickets", {"service": "A", "kiosk": "k1", "lang": "ja"}, 201)
    assert data["print"]["printed"] is True
    assert data["print"]["printer"] == "printer-k1"
    ticket = data["ticket"]
    printed = bytes(sim_device("t-printer-k1").printed)
    elements = decode(printed)
    texts = [e.text for e in only(elements, TextLine)]
    assert str(ticket["number"]) in texts
    assert any("練馬区民事務所" in t for t in texts)
    assert any("住民異動" in t for t in texts)
    qrs = only(elements, QrCode)
    assert qrs[0].payload == f"https://queue.example.jp/t/{ticket['token']}"
    # the event log holds the ticket (committed) and which kiosk asked
    previews = list((site.previews / "printer-k1").glob("*.png"))
    assert len(previews) == 1
    assert previews[0].name.endswith(f"-A-{ticket['number']}.png")


async def test_english_ticket_on_the_other_kiosk(site: Site) -> None:
    data = await site.post("/api/tickets", {"service": "B", "kiosk": "k2", "lang": "en"}, 201)
    assert data["print"]["printed"] is True
    texts = [e.text for e in only(decode(bytes(sim_device("t-printer-k2").printed)), TextLine)]
    assert str(data["ticket"]["number"]) in texts
    assert bytes(sim_device("t-printer-k1").received).count(b"\x1d\x56") == 0  # k1 printed nothing


async def test_paper_out_still_issues_the_number_and_says_why(site: Site) -> None:
    sim_device("t-printer-k1").faults.paper_out = True
    data = await site.post("/api/tickets", {"service": "A", "kiosk": "k1"}, 201)
    assert data["ticket"]["number"] == 1
    assert data["print"] == {"printed": False, "printer": "printer-k1", "reason": "paper_out",
                             "message": {"en": "Out of paper", "ja": "用紙切れです"}}
    devices = (await site.get("/api/devices"))["devices"]
    k1 = next(d for d in devices if d["id"] == "printer-k1")
    assert (k1["state"], k1["reason"], k1["bound_to"]) == ("error", "paper_out", "k1")
    assert (await site.get("/api/health"))["devices"] == "error"
    # the queue goes on: the number is in the queue and can be called
    await site.post("/api/counters/1/open")
    called = await site.post("/api/counters/1/call-next")
    assert called["ticket"]["number"] == 1


async def test_unplugged_printer_never_stalls_issuing(site: Site) -> None:
    sim_device("t-printer-k1").faults.unplugged = True
    results = [await site.post("/api/tickets", {"service": "B", "kiosk": "k1"}, 201)
               for _ in range(5)]
    assert [r["ticket"]["number"] for r in results] == [101, 102, 103, 104, 105]
    assert all(r["print"]["printed"] is False for r in results)
    assert {r["print"]["reason"] for r in results} == {"unplugged"}  # known at once: no timeout
    web = await site.post("/api/tickets", {"service": "B", "channel": "web"}, 201)
    assert "print" not in web  # a web ticket asks no printer


async def test_kiosk_without_printer_is_told_so(site: Site) -> None:
    data = await site.post("/api/tickets", {"service": "A", "kiosk": "k9"}, 201)
    assert data["print"]["reason"] == "no_printer"


async def test_display_follows_call_recall_absent_and_finish(site: Site) -> None:
    await site.post("/api/counters/1/open")
    t = (await site.post("/api/tickets", {"service": "A"}, 201))["ticket"]
    await site.post("/api/counters/1/call-next")
    await wait_for(lambda: any(f.number == t["number"] for f in display_frames("t-led")))
    await site.post("/api/counters/1/recall")
    await wait_for(lambda: display_frames("t-led")[-1].command == "blink")
    await site.post("/api/counters/1/absent")
    await wait_for(lambda: display_frames("t-led")[-1].command == "clear")
    last = display_frames("t-led")[-1]
    assert last.addr == 1


async def test_scan_of_absent_ticket_calls_it_again_and_shows_it(site: Site) -> None:
    await site.post("/api/counters/1/open")
    t = (await site.post("/api/tickets", {"service": "A"}, 201))["ticket"]
    await site.post("/api/counters/1/call-next")
    await site.post("/api/counters/1/absent")
    state = await site.get("/api/state")
    assert [a["number"] for a in state["absent"]] == [t["number"]]
    sim_device("t-scanner-1").feed(f"https://queue.example.jp/t/{t['token']}\r".encode())

    async def called() -> bool:
        s = await site.get("/api/state")
        return any(c["number"] == t["number"] and c["counter"] == "1" for c in s["calling"])

    for _ in range(100):
        if await called():
            break
        await asyncio.sleep(0.03)
    else:
        raise AssertionError("the scan did not call the ticket again")
    assert (await site.get("/api/state"))["absent"] == []


async def test_unreadable_scan_is_kept_for_the_operator_not_raised(site: Site) -> None:
    sim_device("t-scanner-1").feed(b"not a ticket\r")
    manager = site.edge.devices
    assert manager is not None
    await wait_for(lambda: "1" in manager.refusals)
    assert manager.refusals["1"].code == "unreadable_scan"


async def test_display_line_vanishing_keeps_the_queue_and_reports_offline(site: Site) -> None:
    await site.post("/api/counters/2/open")
    sim_device("t-led").faults.unplugged = True
    await site.post("/api/tickets", {"service": "B"}, 201)
    out = await site.post("/api/counters/2/call-next")
    assert out["ticket"]["number"] == 101
    await wait_for(lambda: site.device("led")["state"] == "offline", timeout=20)
    assert site.device("led")["reason"] == "unplugged"
    sim_device("t-led").faults.unplugged = False
    await wait_for(lambda: any(f.number == 101 and f.addr == 2
                               for f in display_frames("t-led")), timeout=40)
    assert site.device("led")["state"] == "ok"


async def test_websocket_state_carries_device_health_and_pushes_changes(site: Site) -> None:
    async with site.session.ws_connect("/api/ws") as ws:
        first = json.loads((await ws.receive()).data)
        ids = {d["id"] for d in first["state"]["devices"]}
        assert {"printer-k1", "printer-k2", "led", "scanner-1"} <= ids
        sim_device("t-printer-k1").faults.cover_open = True
        await site.post("/api/tickets", {"service": "A", "kiosk": "k1"}, 201)
        for _ in range(20):
            msg = json.loads((await asyncio.wait_for(ws.receive(), 3)).data)
            k1 = next(d for d in msg["state"]["devices"] if d["id"] == "printer-k1")
            if k1["reason"] == "cover_open":
                break
        else:
            raise AssertionError("no pushed state showed the open cover")
        assert k1["message"] == {"en": "Cover is open", "ja": "カバーが開いています"}


async def test_calls_are_spoken_in_their_zone_as_wav(tmp_path: Path) -> None:
    import wave

    SIMS.clear()
    text = SITE + f"""
[voice]
languages = ["ja", "en"]
recall_repeats = 2

[[voice.zones]]
id = "floor-1"
counters = ["1"]
output = "file://{tmp_path}/floor-1"

[[voice.zones]]
id = "floor-2"
counters = ["2"]
output = "file://{tmp_path}/floor-2"
"""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    edge = build_edge(load_site_config(path), tmp_path / "e.db", ManualClock(morning()))
    runner = await start_edge(edge, "127.0.0.1", port := free_port())
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            for path_ in ("/api/counters/1/open", "/api/tickets", "/api/counters/1/call-next",
                          "/api/counters/1/recall"):
                body = {"service": "A"} if path_ == "/api/tickets" else None
                async with http.post(path_, json=body) as r:
                    assert r.status in (200, 201), await r.text()
            voice = edge.devices.voice  # type: ignore[union-attr]
            await asyncio.wait_for(voice.idle(), 60)
    finally:
        await runner.cleanup()
    spoken = sorted((tmp_path / "floor-1").glob("*.wav"))
    assert len(spoken) == 2  # the call and the recall, in order, nothing on floor 2
    assert not list((tmp_path / "floor-2").glob("*.wav"))

    def seconds(p: Path) -> float:
        with wave.open(str(p)) as w:
            return w.getnframes() / w.getframerate()

    call, recall = (seconds(p) for p in spoken)
    assert 1.5 < call < 20  # chime + Japanese + English
    assert recall > 1.6 * call  # a recall says it twice


@pytest.mark.parametrize(("action", "number", "expected"), [
    ("call_number", None, "CallNext(counter='1')"),
    ("call_number", 12, "CallNumber(counter='1', number=12)"),
    ("recall", 5, "Recall(counter='1')"),
    ("clear_absence", 7, "ClearAbsence(counter='1', number=7, token=None)"),
    ("clear_absence", None, "None"),
    ("cancel", 9, "Cancel(number=9, token=None, counter='1')"),
    ("transfer", 3, "Transfer(counter='1', to_service=None, to_counter='3')"),
    ("call_held", 4, "CallHeld(counter='1', number=4)"),
    ("absent", None, "MarkAbsent(counter='1')"),
])
def test_keypad_actions_become_queue_commands(action: str, number: int | None,
                                              expected: str) -> None:
    from edge.devices.manager import keypad_command

    assert repr(keypad_command("1", action, number)) == expected


async def test_keypad_cancel_then_scan_cancels_that_ticket(site: Site) -> None:
    """Q10: cancel by scan (the keypad's cancel key with nothing typed arms it)."""
    t = (await site.post("/api/tickets", {"service": "A"}, 201))["ticket"]
    manager = site.edge.devices
    assert manager is not None
    await manager.on_keypad("1", "cancel", None)
    sim_device("t-scanner-1").feed(f"https://queue.example.jp/t/{t['token']}\r".encode())

    async def cancelled() -> bool:
        waiting = (await site.get("/api/state"))["services"][0]["waiting"]
        return bool(waiting == 0)

    for _ in range(100):
        if await cancelled():
            break
        await asyncio.sleep(0.03)
    else:
        raise AssertionError("the scan did not cancel the ticket")
    # the cancel was one-shot: the next scan calls instead of cancelling
    t2 = (await site.post("/api/tickets", {"service": "A"}, 201))["ticket"]
    await site.post("/api/counters/1/open")
    sim_device("t-scanner-1").feed(f"{t2['number']}\r".encode())
    for _ in range(100):
        state = await site.get("/api/state")
        if any(c["number"] == t2["number"] for c in state["calling"]):
            break
        await asyncio.sleep(0.03)
    else:
        raise AssertionError("the second scan did not call the ticket")


async def test_printer_unplugged_mid_ticket_then_plugged_back(site: Site) -> None:
    first = await site.post("/api/tickets", {"service": "A", "kiosk": "k1"}, 201)
    assert first["print"]["printed"] is True
    sim = sim_device("t-printer-k1")
    sim.faults.fail_after = 40  # the cable comes out 40 bytes into the next ticket
    cut = await site.post("/api/tickets", {"service": "A", "kiosk": "k1"}, 201)
    assert cut["print"]["printed"] is False
    assert cut["print"]["reason"] == "unplugged"
    assert cut["ticket"]["number"] == first["ticket"]["number"] + 1  # issued all the same
    assert site.device("printer-k1")["state"] == "offline"
    sim.faults.unplugged = False  # plugged back in: the service reconnects on its own
    for _ in range(60):
        again = await site.post("/api/tickets", {"service": "B", "kiosk": "k1"}, 201)
        if again["print"]["printed"]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the printer did not come back")
    assert site.device("printer-k1")["state"] == "ok"
    texts = [e.text for e in only(decode(bytes(sim.printed)), TextLine)]
    assert str(again["ticket"]["number"]) in texts
