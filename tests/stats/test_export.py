"""The CSV export read back as Excel reads it: UTF-8 with BOM (``utf-8-sig``) or cp932, headers
in Japanese, the columns of the chosen set in their order; a column-set change shows in the
next export; characters cp932 lacks are replaced, never a failure; the export is audited; it
is streamed in pieces that add up to the whole report."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fleet_support import csrf_of, site_toml
from sqlalchemy import select
from staff_support import staff_cookie

from hub.app import Hub, start_hub
from hub.audit.tables import audit_log
from hub.settings import HubSettings
from hub.stats import columns, periods
from hub.stats import store as rollup_store
from hub.stats.export import csv_chunks, encode, export_rows, write_csv
from hub.stats.report import Scope, report
from hub.stats.rollup import Cell

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
SITE, OTHER = "nerima", "oizumi"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    for site in (SITE, OTHER):
        await h.set_config(site, site_toml(site))
    cells = {}
    for i, day in enumerate(("2026-04-01", "2026-05-15", "2027-03-31")):
        cells[(day, "issued", 9, "A", "", "", "kiosk", -1)] = Cell(10 + i)
        cells[(day, "served", -1, "A", "1", "𠮷田—=cmd", "", -1)] = Cell(5 + i)
        cells[(day, "served", -1, "A", "2", "髙橋", "", -1)] = Cell(1)
    async with h.store.begin() as tx:
        await rollup_store.add(tx, SITE, cells)
        await rollup_store.add(tx, OTHER, {("2026-04-01", "issued", 9, "A", "", "", "kiosk",
                                            -1): Cell(99)})
    try:
        yield h
    finally:
        await h.stop()


def read_csv(data: bytes, encoding: str) -> list[list[str]]:
    """As Excel opens it: the BOM says UTF-8; without one, the Japanese Windows code page."""
    if encoding == "utf-8-sig":
        assert data.startswith(b"\xef\xbb\xbf")
    else:
        assert not data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


FY = Scope(periods.parse("fy", "2026"), frozenset({SITE}), ("month", "staff"))
COLS = ["period", "staff", "served", "issued"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp932"])
async def test_csv_reads_back_in_excel_encodings_with_japanese_headers(hub: Hub,
                                                                       encoding: str) -> None:
    out = io.BytesIO()
    size = await write_csv(hub.store, FY, COLS, out, encoding=encoding)  # type: ignore[arg-type]
    assert size == len(out.getvalue())
    rows = read_csv(out.getvalue(), encoding)
    assert rows[0] == ["期間", "職員", "完了数", "発券数"]
    body = {(r[0], r[1]): r[2:] for r in rows[1:]}
    odd = "𠮷田—=cmd" if encoding == "utf-8-sig" else "吉田―=cmd"
    assert body[("2026-04", odd)] == ["5", ""]  # arrivals are not split by staff member
    assert body[("2026-04", "髙橋")] == ["1", ""]
    assert body[("2027-03", odd)] == ["7", ""]
    assert out.getvalue().count(b"\r\n") == len(rows)  # CRLF, as Excel writes


async def test_formulas_are_defused_and_english_headers_on_request(hub: Hub) -> None:
    scope = Scope(periods.parse("fy", "2026"), frozenset({SITE}), ("staff",))
    rows = [r async for r in export_rows(hub.store, scope, ["staff", "served"], lang="en")]
    assert rows[0] == ["Staff member", "Finished"]
    flat = {r[0] for r in rows[1:]}
    assert "髙橋" in flat
    assert all(not str(v).startswith("=") for v in flat)
    weird = Scope(periods.parse("fy", "2026"), frozenset({SITE}), ("staff",), staff="=1+1")
    [_header, *cells] = [r async for r in export_rows(hub.store, weird, ["staff", "served"])]
    assert cells == []  # nobody by that login: no row, and no failure


def test_cp932_replaces_what_it_cannot_hold() -> None:
    text = "𠮷野家—鷗外😀①ﾃｽﾄ〜"
    got = encode(text, "cp932").decode("cp932")
    assert got == "吉野家―鴎外〓①ﾃｽﾄ～"


async def test_streamed_pieces_add_up_to_the_whole_report(hub: Hub) -> None:
    scope = Scope(periods.parse("fy", "2026"), None, ("day", "site"))
    whole = await report(hub.store, scope, compare=False)
    rows = [r async for r in export_rows(hub.store, scope, ["period", "site", "issued"])]
    assert [tuple(r) for r in rows[1:]] == [
        (r.key[0], r.key[1], r.figures["issued"]) for r in whole.rows]
    chunks = [c async for c in csv_chunks(hub.store, scope, ["period", "site"])]
    assert b"".join(chunks).decode("utf-8-sig").count("\r\n") == len(rows)


async def get(hub: Hub, cookies: dict[str, str], path: str,
              accept: str = "*/*") -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession(cookies=cookies) as http, \
            http.get(f"{hub.url}{path}", headers={"Accept": accept},
                     allow_redirects=False) as r:
        return r.status, await r.read(), dict(r.headers)


async def post(hub: Hub, cookies: dict[str, str], path: str,
               form: dict[str, str]) -> tuple[int, str, str]:
    async with aiohttp.ClientSession(cookies=cookies) as http, \
            http.post(f"{hub.url}{path}", data=form, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


REPORT = f"kind=fy&value=2026&site={SITE}&group=month"


async def test_a_column_set_change_shows_in_the_next_export_and_both_are_audited(
        hub: Hub) -> None:
    ward = await staff_cookie(hub.store, SETTINGS, "ward_staff", SITE, login="tantou")
    status, page, _ = await get(hub, ward, f"/admin/stats?{REPORT}&lang=ja")
    assert status == 200
    csrf = csrf_of(page.decode())
    form = {"csrf": csrf, "name": "月報", "owner": "ward", "cols": "period,issued,served"}
    status, _, location = await post(hub, ward, f"/admin/stats/column-sets?{REPORT}", form)
    assert status == 303
    set_id = re.search(r"set=(\d+)", location)
    assert set_id is not None
    [saved] = await columns.list_sets(hub.store, "someone-else")  # a ward set: everyone's
    assert saved.columns == ("period", "issued", "served")
    status, data, headers = await get(
        hub, ward, f"/admin/stats/export?{REPORT}&set={set_id.group(1)}&encoding=cp932")
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=shift_jis"
    assert "attachment" in headers["Content-Disposition"]
    first = read_csv(data, "cp932")
    assert first[0] == ["期間", "発券数", "完了数"]
    assert first[1] == ["2026-04", "10", "6"]
    # the same set saved again in another order: the next export follows it
    status, _, _ = await post(hub, ward, f"/admin/stats/column-sets?{REPORT}",
                              {**form, "cols": "served,period"})
    assert status == 303
    _, data, _ = await get(hub, ward,
                           f"/admin/stats/export?{REPORT}&set={set_id.group(1)}")
    assert read_csv(data, "utf-8-sig")[0] == ["完了数", "期間"]
    async with hub.store.read() as tx:
        rows = (await tx.conn.execute(select(audit_log.c.action, audit_log.c.detail).where(
            audit_log.c.action.like("stats_%")).order_by(audit_log.c.id))).all()
    assert [r.action for r in rows] == ["stats_columns_saved", "stats_exported",
                                        "stats_columns_saved", "stats_exported"]
    exported = json.loads(rows[1].detail)
    assert exported["sites"] == [SITE]
    assert (exported["start"], exported["end"]) == ("2026-04-01", "2027-03-31")
    assert exported["columns"] == ["period", "issued", "served"]
    assert exported["encoding"] == "cp932"


async def test_refusals(hub: Hub) -> None:
    viewer = await staff_cookie(hub.store, SETTINGS, "stats_viewer", SITE)
    counter = await staff_cookie(hub.store, SETTINGS, "counter_staff", SITE)
    status, _, _ = await get(hub, counter, f"/admin/stats/export?{REPORT}")
    assert status == 403
    status, _, _ = await get(hub, counter, "/admin/stats")
    assert status == 403
    # another site's data is not this viewer's: refused at the field, nothing exported
    status, body, _ = await get(hub, viewer, f"/admin/stats/export?kind=fy&value=2026"
                                f"&site={OTHER}", accept="text/html")
    assert status == 400
    assert "この拠点は選べません。" in body.decode()
    status, body, _ = await get(hub, viewer, "/admin/stats/export?kind=month&value=2026-13")
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_parameter"
    # no site chosen: the viewer's own sites only
    _, data, _ = await get(hub, viewer, "/admin/stats/export?kind=fy&value=2026&group=site"
                           "&cols=site,issued")
    assert read_csv(data, "utf-8-sig")[1:] == [[SITE, "33"]]
    # a ward set is for ward staff and administrators to save
    _, page, _ = await get(hub, viewer, f"/admin/stats?{REPORT}")
    status, text, _ = await post(hub, viewer, f"/admin/stats/column-sets?{REPORT}", {
        "csrf": csrf_of(page.decode()), "name": "x", "owner": "ward", "cols": "issued"})
    assert status == 400
    assert "区全体用の列セットは" in text
    for cols, message in (("issued,issued", "同じ列が二度"), ("nope", "知らない列"),
                          ("", "列を一つ以上")):
        status, text, _ = await post(hub, viewer, f"/admin/stats/column-sets?{REPORT}", {
            "csrf": csrf_of(page.decode()), "name": "x", "owner": "me", "cols": cols})
        assert status == 400, cols
        assert message in text
    assert await columns.list_sets(hub.store, "nobody") == []


async def test_column_sets_are_deleted_only_by_their_owner_or_for_the_ward_by_ward_staff(
        hub: Hub) -> None:
    viewer = await staff_cookie(hub.store, SETTINGS, "stats_viewer", SITE, login="viewer")
    ward = await staff_cookie(hub.store, SETTINGS, "ward_staff", SITE, login="ward")
    mine = await columns.save_set(hub.store, SETTINGS, owner="viewer", name="私の", columns=[
        "issued"], actor=None, login="viewer", ip=None)
    theirs = await columns.save_set(hub.store, SETTINGS, owner="ward", name="他人の",
                                    columns=["issued"], actor=None, login="ward", ip=None)
    common = await columns.save_set(hub.store, SETTINGS, owner=columns.WARD, name="区の",
                                    columns=["issued"], actor=None, login="ward", ip=None)
    _, page, _ = await get(hub, viewer, "/admin/stats")
    csrf = csrf_of(page.decode())
    for set_id, outcome in ((theirs.id, "not_deleted"), (common.id, "not_deleted"),
                            (mine.id, "deleted"), ("1e3", "not_deleted")):
        status, _, location = await post(hub, viewer, "/admin/stats/column-sets/delete",
                                         {"csrf": csrf, "id": str(set_id)})
        assert status == 303
        assert f"saved={outcome}" in location, set_id
    assert {s.name for s in await columns.list_sets(hub.store, "viewer")} == {"区の"}
    _, page, _ = await get(hub, ward, "/admin/stats")
    status, _, location = await post(hub, ward, "/admin/stats/column-sets/delete",
                                     {"csrf": csrf_of(page.decode()), "id": str(common.id)})
    assert "saved=deleted" in location
    assert {s.name for s in await columns.list_sets(hub.store, "ward")} == {"他人の"}
