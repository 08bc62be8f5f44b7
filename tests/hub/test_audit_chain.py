"""Audit trail (A3): the hash chain on SQLite and on the real PostgreSQL.

Rows are appended through the service, then tampered with in raw SQL (update, delete, reorder)
the way someone with database access would; ``verify`` and ``madoguchi hub audit verify`` must
name the first broken row each time. The chain rules themselves are checked with hypothesis
over random appends and one tampering, on the pure walk.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from store_support import Db, hub_store

import hub.audit.commands as commands
from edge.cli import main
from hub.audit.chain import GENESIS, Row, clean_detail, detail_json, mac_of, walk
from hub.audit.search import BOM, Query, export_csv, search
from hub.audit.service import (
    AuditError,
    append,
    audit_key,
    audit_keys,
    prune,
    prune_expired,
    record,
    retention_days,
    set_retention_days,
    verify,
)
from hub.settings import HubSettings
from hub.store import HubStore

RAW = bytes(range(32))
SETTINGS = HubSettings(keys={"k1": RAW}, key_id="k1")
KEYS = audit_keys(SETTINGS)
KEY, KID = audit_key(SETTINGS)
T0 = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
COLS = "at, actor, action, target, detail, ip, key_id, prev, mac"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    async with hub_store(request.param, tmp_path, pg, "audittest") as got:
        yield got


async def fill(store: HubStore, n: int, *, step: timedelta = timedelta(minutes=1),
               start: datetime = T0) -> None:
    actions = ["login", "logout", "role_changed", "setting_changed", "login_failed"]
    async with store.begin() as tx:
        for i in range(n):
            await append(tx, actor=f"staff{i % 3}", action=actions[i % len(actions)],
                         target=f"account:{i}", detail={"role": "ward_admin", "n": i},
                         ip=f"10.0.0.{i % 250}", key=KEY, key_id=KID, at=start + i * step)


async def sql(store: HubStore, *statements: str) -> None:
    async with store.begin() as tx:
        for stmt in statements:
            await tx.conn.execute(text(stmt))


async def swap_contents(store: HubStore, a: int, b: int) -> None:
    """Exchange every field but the id between rows ``a`` and ``b`` (raw SQL)."""
    async with store.begin() as tx:
        rows = {int(r[0]): r[1:] for r in (await tx.conn.execute(
            text(f"SELECT id, {COLS} FROM audit_log WHERE id IN (:a, :b)"), {"a": a, "b": b}))}
        names = COLS.split(", ")
        for dst, src in ((a, b), (b, a)):
            await tx.conn.execute(
                text(f"UPDATE audit_log SET {', '.join(f'{n} = :{n}' for n in names)} "
                     "WHERE id = :id"),
                {"id": dst, **dict(zip(names, rows[src], strict=True))})


async def cli(db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              *argv: str) -> tuple[int, str, str]:
    """Run ``madoguchi hub audit …`` in-process (in a thread: it runs its own event loop). On
    PostgreSQL the test's schema is handed to ``HubStore.open``, which the CLI cannot name."""
    monkeypatch.setenv("MADOGUCHI_HUB_KEYS", "k1:" + base64.b64encode(RAW).decode())
    if db.schema is not None:
        schema = db.schema

        class InSchema:
            @staticmethod
            async def open(url: str) -> HubStore:
                return await HubStore.open(url, schema=schema)

        monkeypatch.setattr(commands, "HubStore", InSchema)
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["hub", "audit", *argv, "--db", db.url])
    out, err = capsys.readouterr()
    return code, out, err


# --- tampering in SQL ------------------------------------------------------------------------

TAMPERS: dict[str, tuple[Callable[[HubStore], Any], int, str]] = {
    "update a field": (lambda s: sql(s, "UPDATE audit_log SET target = 'account:x' WHERE id = 5"),
                       5, "altered"),
    "update the actor to NULL": (lambda s: sql(s, "UPDATE audit_log SET actor = NULL WHERE id = 3"),
                                 3, "altered"),
    "update the time": (lambda s: sql(s, "UPDATE audit_log SET at = at - INTERVAL '1 day' "
                                         "WHERE id = 4")
                        if s.dialect == "postgresql" else
                        sql(s, "UPDATE audit_log SET at = '2026-03-01 00:04:00.000000' "
                               "WHERE id = 4"),
                        4, "altered"),
    "delete a row": (lambda s: sql(s, "DELETE FROM audit_log WHERE id = 6"), 6, "removed"),
    "delete the first row": (lambda s: sql(s, "DELETE FROM audit_log WHERE id = 1"), 1,
                             "removed"),
    "delete and renumber": (lambda s: sql(s, "DELETE FROM audit_log WHERE id = 4",
                                          "UPDATE audit_log SET id = id - 1 WHERE id > 4"),
                            4, "reordered"),
    "swap contents": (lambda s: swap_contents(s, 3, 7), 3, "reordered"),
    "swap ids": (lambda s: sql(s, "UPDATE audit_log SET id = -1 WHERE id = 5",
                               "UPDATE audit_log SET id = 5 WHERE id = 6",
                               "UPDATE audit_log SET id = 6 WHERE id = -1"), 5, "reordered"),
    "copy another row's mac": (lambda s: sql(
        s, "UPDATE audit_log SET mac = (SELECT mac FROM audit_log WHERE id = 2) WHERE id = 8"),
        8, "altered"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
async def test_verify_names_the_first_broken_row(db: Db, tamper: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    await fill(db.store, 10)
    before = await verify(db.store, KEYS)
    assert (before.ok, before.rows, before.head_id) == (True, 10, 10)
    code, out, _ = await cli(db, monkeypatch, capsys, "verify")
    assert code == 0
    assert "ok: 10 rows" in out

    action, bad, kind = TAMPERS[tamper]
    await action(db.store)
    result = await verify(db.store, KEYS)
    assert (result.ok, result.bad_id, result.kind) == (False, bad, kind), result
    assert f"row {bad}" in result.message_en
    assert f"ID {bad}" in result.message_ja

    code, out, _ = await cli(db, monkeypatch, capsys, "verify")
    assert code == 1
    assert f"broken at row {bad} ({kind})" in out


async def test_a_later_tamper_does_not_hide_an_earlier_one(db: Db) -> None:
    await fill(db.store, 12)
    await sql(db.store, "DELETE FROM audit_log WHERE id = 9",
              "UPDATE audit_log SET ip = '192.0.2.1' WHERE id = 4")
    result = await verify(db.store, KEYS)
    assert (result.bad_id, result.kind) == (4, "altered")


async def test_a_row_forged_with_another_key_is_caught(db: Db) -> None:
    await fill(db.store, 4)
    forged_key = bytes(32)  # the attacker's: the real one is not in the database
    async with db.store.read() as tx:
        prev = (await tx.conn.execute(text("SELECT mac FROM audit_log WHERE id = 4"))).scalar()
    at = T0 + timedelta(hours=1)
    mac = mac_of(forged_key, 5, at, "intruder", "role_changed", "account:intruder", "{}", None,
                 KID, str(prev))
    async with db.store.begin() as tx:
        await tx.conn.execute(text(
            "INSERT INTO audit_log (id, at, actor, action, target, detail, ip, key_id, prev, mac)"
            " VALUES (5, :at, 'intruder', 'role_changed', 'account:intruder', '{}', NULL, :kid,"
            " :prev, :mac)"),
            {"at": at if db.store.dialect == "postgresql" else at.replace(tzinfo=None),
             "kid": KID, "prev": prev, "mac": mac})
    result = await verify(db.store, KEYS)
    assert (result.bad_id, result.kind) == (5, "altered")
    assert not (await verify(db.store, {"other": KEY})).ok  # a key id it does not know


async def test_truncating_the_newest_rows_is_shown_by_the_head(db: Db) -> None:
    """The documented limit: cutting the end leaves a valid chain, but the head moves."""
    await fill(db.store, 6)
    head = (await verify(db.store, KEYS)).head_mac
    await sql(db.store, "DELETE FROM audit_log WHERE id = 6")
    after = await verify(db.store, KEYS)
    assert after.ok
    assert after.head_id == 5
    assert after.head_mac != head


# --- appends ---------------------------------------------------------------------------------

async def test_concurrent_appenders_never_fork_the_chain(db: Db) -> None:
    """Two stores (as two hub processes) appending at once: one chain, ids 1..n."""
    other = await HubStore.open(db.url, schema=db.schema) if db.schema else \
        await HubStore.open(db.url)
    try:
        await asyncio.gather(*(record(s, actor=f"staff{i}", action="login", ip="10.0.0.1",
                                      key=KEY, key_id=KID)
                               for i in range(20) for s in (db.store, other)))
    finally:
        await other.close()
    result = await verify(db.store, KEYS)
    assert (result.ok, result.rows, result.head_id) == (True, 40, 40), result


async def test_nothing_secret_is_stored_in_detail(db: Db) -> None:
    secrets = {"password": "hunter2-pass", "totp_secret": "JBSWY3DPEHPK3PXP",
               "sessionId": "sess-0123456789", "csrf_token": "csrf-abcdef",
               "phone": "090-1234-5678", "email": "taro@example.jp",
               "recovery_codes": ["rc-1111", "rc-2222"], "PIN": "4321",
               "nested": {"newPassword": "hunter3-pass", "role": "ward_staff"}}
    await record(db.store, actor="admin1", action="account_created", target="account:taro",
                 detail={"role": "ward_staff", "sites": ["oizumi"], **secrets}, ip="10.0.0.9",
                 key=KEY, key_id=KID)
    async with db.store.read() as tx:
        stored = " ".join(str(v) for r in (await tx.conn.execute(
            text(f"SELECT {COLS} FROM audit_log"))).all() for v in r)
    for value in ("hunter2-pass", "hunter3-pass", "JBSWY3DPEHPK3PXP", "sess-0123456789",
                  "csrf-abcdef", "090-1234-5678", "taro@example.jp", "rc-1111", "4321"):
        assert value not in stored
    [row] = await search(db.store, Query(action="account_created"))
    detail = json.loads(row.detail)
    assert detail["role"] == "ward_staff"
    assert detail["sites"] == ["oizumi"]
    assert detail["nested"] == {"role": "ward_staff"}
    assert set(detail["_dropped"]) >= {"password", "totp_secret", "sessionId", "phone", "PIN",
                                       "email", "newPassword", "csrf_token", "recovery_codes"}
    assert (await verify(db.store, KEYS)).ok


async def test_bad_action_codes_are_refused(db: Db) -> None:
    for action in ("", "Login", "drop table", "x" * 65):
        with pytest.raises(AuditError):
            await record(db.store, actor=None, action=action, key=KEY, key_id=KID)


# --- retention -------------------------------------------------------------------------------

async def test_prune_keeps_the_chain_verifiable(db: Db, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    await fill(db.store, 10, step=timedelta(days=100))  # rows 1..10 over ~2.5 years
    now = T0 + timedelta(days=1000)
    deleted = await prune(db.store, KEYS, T0 + timedelta(days=450), key_id=KID, now=now,
                          enforce_minimum=False)
    assert deleted == 5  # rows at days 0..400
    result = await verify(db.store, KEYS)
    assert (result.ok, result.rows, result.pruned_through, result.head_id) == (True, 6, 5, 11)
    await fill(db.store, 3, start=now)
    assert (await prune(db.store, KEYS, T0 + timedelta(days=750), key_id=KID, now=now,
                        enforce_minimum=False)) == 3  # rows 6..8
    result = await verify(db.store, KEYS)
    assert (result.ok, result.pruned_through, result.head_id) == (True, 8, 15)
    code, out, _ = await cli(db, monkeypatch, capsys, "verify")
    assert code == 0
    assert f"ok: {result.rows} rows" in out

    # pruning is no cover for removing more: the oldest surviving row, then the checkpoint
    await sql(db.store, "DELETE FROM audit_log WHERE id = 9")
    broken = await verify(db.store, KEYS)
    assert (broken.ok, broken.bad_id, broken.kind) == (False, 9, "removed")
    with pytest.raises(AuditError) as refused:
        await prune(db.store, KEYS, now, key_id=KID, now=now, enforce_minimum=False)
    assert refused.value.code == "chain_broken"  # evidence is not deleted


async def test_a_removed_checkpoint_is_caught(db: Db) -> None:
    await fill(db.store, 6, step=timedelta(days=100))
    await prune(db.store, KEYS, T0 + timedelta(days=250), key_id=KID,
                now=T0 + timedelta(days=900), enforce_minimum=False)
    assert (await verify(db.store, KEYS)).ok
    await sql(db.store, "DELETE FROM audit_log WHERE action = 'checkpoint'")
    result = await verify(db.store, KEYS)
    assert (result.ok, result.bad_id, result.kind) == (False, 3, "removed")


async def test_retention_is_at_least_three_years(db: Db, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert await retention_days(db.store) == 1096
    with pytest.raises(AuditError):
        await set_retention_days(db.store, 365, actor="admin1", ip=None, key=KEY, key_id=KID)
    await set_retention_days(db.store, 2000, actor="admin1", ip="10.0.0.2", key=KEY, key_id=KID)
    assert await retention_days(db.store) == 2000
    [row] = await search(db.store, Query(action="setting_changed"))
    assert json.loads(row.detail) == {"setting": "audit.retention_days", "old": 1096,
                                      "new": 2000}
    now = datetime.now(UTC)
    with pytest.raises(AuditError):  # younger than 3 years: refused
        await prune(db.store, KEYS, now - timedelta(days=30), key_id=KID, now=now)
    code, _, err = await cli(db, monkeypatch, capsys, "prune", "--older-than-days", "30")
    assert code == 2
    assert "3年" in err
    code, out, _ = await cli(db, monkeypatch, capsys, "prune")
    assert code == 0
    assert "0 rows older than 2000 days" in out


async def test_the_daily_prune_follows_the_retention_setting(db: Db) -> None:
    now = datetime(2030, 6, 1, tzinfo=UTC)
    for age in (2000, 1500, 1100, 1000, 10):  # days old
        async with db.store.begin() as tx:
            await append(tx, actor="staff1", action="login", key=KEY, key_id=KID,
                         at=now - timedelta(days=age))
    assert await prune_expired(db.store, SETTINGS, now=now) == 3  # older than 1096 days
    await set_retention_days(db.store, 1800, actor="admin1", ip=None, key=KEY, key_id=KID)
    await fill(db.store, 1, start=now)
    assert await prune_expired(db.store, SETTINGS, now=now) == 0  # nothing past 1800 days left
    result = await verify(db.store, KEYS)
    assert (result.ok, result.pruned_through) == (True, 3)
    assert [r.action for r in await search(db.store, Query(), limit=9)][-1] == "login"


# --- search and export -----------------------------------------------------------------------

async def test_search_and_csv_export(db: Db, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    await fill(db.store, 10)  # actors staff0..2, actions cycle through five
    await record(db.store, actor="staff1", action="personal_data_viewed", target="=HYPERLINK(1)",
                 detail={"reason": "窓口での本人確認"}, key=KEY, key_id=KID)
    assert [r.id for r in await search(db.store, Query(actor="staff1"))] == [11, 8, 5, 2]
    assert [r.id for r in await search(db.store, Query(action="login"))] == [6, 1]
    assert [r.id for r in await search(db.store, Query(target="account:3"))] == [4]
    window = Query(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
    assert [r.id for r in await search(db.store, window)] == [5, 4, 3]
    page = await search(db.store, Query(), limit=4)
    assert [r.id for r in page] == [11, 10, 9, 8]
    assert [r.id for r in await search(db.store, Query(), limit=4, before_id=8)] == [7, 6, 5, 4]

    chunks = [c async for c in export_csv(db.store, Query(actor="staff1"), actor="admin1",
                                          ip="10.0.0.3", key=KEY, key_id=KID)]
    body = "".join(chunks)
    assert body.startswith(BOM)
    table = list(csv.reader(io.StringIO(body[1:])))
    assert table[0][:4] == ["id", "at_utc", "actor", "action"]
    assert [r[0] for r in table[1:]] == ["2", "5", "8", "11"]
    assert table[-1][4] == "'=HYPERLINK(1)"  # not a formula in Excel
    assert "窓口での本人確認" in table[-1][5]
    [audited] = await search(db.store, Query(action="export"))
    assert audited.actor == "admin1"
    assert json.loads(audited.detail)["filters"] == {
        "actor": "staff1"}
    assert (await verify(db.store, KEYS)).ok

    code, out, _ = await cli(db, monkeypatch, capsys, "export", "--action", "login")
    assert code == 0
    assert out.startswith(BOM)
    exported = list(csv.reader(io.StringIO(out[1:])))
    assert [r[0] for r in exported[1:]] == ["1", "6"]
    assert len(await search(db.store, Query(action="export"))) == 2  # the CLI export too
    code, _, err = await cli(db, monkeypatch, capsys, "export", "--since", "yesterday")
    assert code == 2
    assert "not a date" in err


# --- the chain rules, on the pure walk -------------------------------------------------------

def build(n: int, seed_actor: list[str]) -> list[Row]:
    rows: list[Row] = []
    prev = GENESIS
    for i in range(1, n + 1):
        at = T0 + timedelta(seconds=i)
        actor = seed_actor[i % len(seed_actor)]
        detail = json.dumps({"n": i})
        mac = mac_of(KEY, i, at, actor, "login", None, detail, None, KID, prev)
        rows.append(Row(i, at, actor, "login", None, detail, None, KID, prev, mac))
        prev = mac
    return rows


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 40), actors=st.lists(st.text(max_size=8), min_size=1, max_size=4),
       tamper=st.sampled_from(["none", "alter", "delete", "swap", "shift"]),
       data=st.data())
def test_the_walk_finds_exactly_the_first_tampered_row(n: int, actors: list[str], tamper: str,
                                                       data: st.DataObject) -> None:
    rows = build(n, actors)
    assert walk(rows, KEYS).ok
    i = data.draw(st.integers(1, n - 1), label="row")  # 1-based; never the last (truncation)
    expected: tuple[int, str] | None = None
    if tamper == "alter":
        field = data.draw(st.sampled_from(["actor", "action", "target", "ip", "at", "detail"]))
        old = rows[i - 1]
        new_value: Any = {"actor": (old.actor or "") + "x", "action": "logout",
                          "target": "t", "ip": "192.0.2.1", "at": old.at + timedelta(seconds=1),
                          "detail": "{}"}[field]
        rows[i - 1] = replace(old, **{field: new_value})
        expected = (i, "altered")
    elif tamper == "delete":
        del rows[i - 1]
        expected = (i, "removed")
    elif tamper == "swap":
        j = data.draw(st.integers(i + 1, n), label="other")
        a, b = rows[i - 1], rows[j - 1]
        rows[i - 1], rows[j - 1] = replace(b, id=a.id), replace(a, id=b.id)
        expected = (i, "reordered")
    elif tamper == "shift":  # delete row i and renumber the rest to hide the gap
        rows = rows[:i - 1] + [replace(r, id=r.id - 1) for r in rows[i:]]
        expected = (i, "reordered")
    result = walk(rows, KEYS)
    if expected is None:
        assert result.ok
        assert result.rows == n
    else:
        assert (result.ok, result.bad_id, result.kind) == (False, *expected), result


SECRET_KEYS = ["password", "newPassword", "totp_secret", "session_id", "csrfToken", "phone",
               "e_mail", "email", "contactAddress", "recovery_codes", "pin", "api_key"]


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=6, max_size=20, alphabet="abcdefghijklmnopqrstuvwxyz0123456789"),
       name=st.sampled_from(SECRET_KEYS), depth=st.integers(0, 3),
       extra=st.dictionaries(st.sampled_from(["role", "site", "count", "reason"]),
                             st.integers(0, 9), max_size=3))
def test_secret_keys_are_dropped_at_any_depth(secret: str, name: str, depth: int,
                                              extra: dict[str, int]) -> None:
    detail: dict[str, Any] = {name: "S" + secret}
    for _ in range(depth):
        detail = {"inner": detail, **extra}
    stored = detail_json(clean_detail({**extra, "wrap": detail}))
    assert "S" + secret not in stored
    assert name in stored  # named under _dropped, so the caller's mistake shows
    assert all(f'"{k}":{v}' in stored for k, v in extra.items())
