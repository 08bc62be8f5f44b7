"""'Your turn is near' notices (W5-W7): AES-GCM contacts, texts, validation, and end to end.

End to end: a real hub (SQLite and PostgreSQL) and a real edge (Writer + SyncClient) over the
real mosquitto, a real SMTP server (aiosmtpd) and a local HTTP SMS gateway. Each notice must
arrive exactly once, at N ahead and when called, in the registered language; after the call the
database files (SQLite file and WAL, a pg_dump) and every log record hold no trace of the
address, the number or even their ciphertext.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from mail_support import SmsGateway, SmtpSink
from sqlalchemy import select, text

from edge.config import parse_site_config
from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.store.store import EventStore
from edge.store.writer import Writer
from edge.sync import SyncClient, SyncSettings
from hub.app import Hub, start_hub
from hub.ingest.projection import SiteFold
from hub.ingest.service import Change
from hub.notify import contacts, crypto, subscriptions, texts
from hub.notify.api import NOTIFIER
from hub.notify.senders import Notice
from hub.notify.service import Notifier, text_kind
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.schema import notify_subscriptions
from hub.web import create_app

TZ = ZoneInfo("Asia/Tokyo")
WAIT_S = 20.0
FAST = SyncSettings(resend_s=5.0, reconnect_min_s=1, reconnect_max_s=2,
                    status_min_interval_s=0.2, session_expiry_s=60)
ADDRESS = "hanako.yamada+queue@mail.example.jp"
PHONE_TYPED = "０９０－１２３４－５６７８"  # full-width, as typed on a Japanese phone
PHONE = "+819012345678"
PHONE_TRACES = ("09012345678", "9012345678", "090-1234-5678", PHONE)


def site_toml(site: str) -> str:
    return f"""version = 1

[site]
id = "{site}"
name = {{ ja = "練馬区役所", en = "Nerima City Office" }}
timezone = "Asia/Tokyo"

[[services]]
code = "A"
name = {{ ja = "住民異動", en = "Moving" }}
range = [1, 99]
web = {{ notify_ahead = 2 }}

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A"]
"""


def key() -> bytes:
    return os.urandom(32)


# --- crypto, texts, contacts (no services) -------------------------------------------------------

def test_seal_round_trip_and_tamper_detection() -> None:
    keys = {"k1": key()}
    sealed = crypto.seal(keys, "k1", "row-1", ADDRESS)
    assert ADDRESS not in sealed
    assert crypto.key_id_of(sealed) == "k1"
    assert crypto.open_sealed(keys, "row-1", sealed) == ADDRESS
    assert crypto.seal(keys, "k1", "row-1", ADDRESS) != sealed  # fresh nonce every time
    raw = bytearray(base64.b64decode(sealed))
    for pos in (len(raw) - 1, len(raw) - 20, 3 + 12):  # tag, ciphertext, nonce/ct boundary
        bad = raw.copy()
        bad[pos] ^= 1
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(keys, "row-1", base64.b64encode(bytes(bad)).decode())
    with pytest.raises(crypto.CryptoError, match="authentication"):
        crypto.open_sealed(keys, "row-2", sealed)  # copied onto another row
    relabelled = crypto.seal({"k2": keys["k1"]}, "k2", "row-1", ADDRESS)
    with pytest.raises(crypto.CryptoError):  # right bytes, wrong key id in the AAD
        crypto.open_sealed({"k1": keys["k1"]}, "row-1", relabelled)
    with pytest.raises(crypto.CryptoError, match="unknown key"):
        crypto.open_sealed({"k9": key()}, "row-1", sealed)
    for junk in ("", "!!", base64.b64encode(b"\x02\x02k1" + b"\0" * 40).decode()):
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(keys, "row-1", junk)


async def test_rotation_reseals_live_rows_with_the_current_key(tmp_path: Path) -> None:
    store = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    try:
        old = {"k1": key()}
        ids = [await subscriptions.register(
            store, old, "k1", site="s", ticket_id=f"t{i}", token=f"tok{i}", channel="email",
            contact=f"user{i}@example.jp", lang="ja", ahead_n=3) for i in range(3)]
        keys = {"k2": key(), **old}
        assert await subscriptions.rotate(store, keys, "k2", batch=2) == (3, 0)
        async with store.read() as tx:
            rows = {r.id: r for r in await subscriptions.live(tx)}
        only_new = {"k2": keys["k2"]}
        for i, sid in enumerate(ids):
            assert crypto.key_id_of(rows[sid].contact_ct) == "k2"
            assert crypto.open_sealed(only_new, sid, rows[sid].contact_ct) == f"user{i}@example.jp"
        # a row whose key is gone can never be read again: rotation erases it
        await subscriptions.register(store, {"k0": key()}, "k0", site="s", ticket_id="tx",
                                     token="tokx", channel="sms", contact=PHONE, lang="en",
                                     ahead_n=3)
        assert await subscriptions.rotate(store, only_new, "k2") == (0, 1)
        async with store.read() as tx:
            assert len(await subscriptions.live(tx)) == 3
    finally:
        await store.close()



def test_cli_keys_rotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from hub.cli import add_parsers

    db = f"sqlite:///{tmp_path}/hub.db"
    k1, k2 = key(), key()

    async def setup() -> str:
        store = await HubStore.open(db)
        try:
            return await subscriptions.register(
                store, {"k1": k1}, "k1", site="s", ticket_id="t", token="tok", channel="email",
                contact=ADDRESS, lang="ja", ahead_n=3)
        finally:
            await store.close()

    async def sealed() -> str:
        store = await HubStore.open(db)
        try:
            async with store.read() as tx:
                return (await subscriptions.live(tx))[0].contact_ct
        finally:
            await store.close()

    sid = asyncio.run(setup())
    parser = argparse.ArgumentParser(prog="madoguchi")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["hub", "keys", "rotate", "--db", db])
    monkeypatch.delenv("MADOGUCHI_HUB_KEYS", raising=False)
    assert args.func(args) == 2
    b64 = base64.b64encode
    monkeypatch.setenv("MADOGUCHI_HUB_KEYS", f"k2:{b64(k2).decode()},k1:{b64(k1).decode()}")
    assert args.func(args) == 0
    assert "1 contacts re-encrypted with key 'k2'" in capsys.readouterr().out
    assert crypto.open_sealed({"k2": k2}, sid, asyncio.run(sealed())) == ADDRESS

def test_shipped_texts_and_staff_overrides(tmp_path: Path) -> None:
    shipped = texts.load()
    for lang in ("ja", "en", "zh", "ko"):
        r = shipped.render("called", lang, number=12, service="S", site="X", counter="C9",
                           url="http://u/t/x")
        assert "12" in r.body
        assert "C9" in r.body
        assert "http://u/t/x" in r.body
        assert r.subject
    staff = tmp_path / "notices.toml"
    staff.write_text('[en]\nahead = "No. {number}: {ahead} ahead at {site}"\n')
    merged = texts.load(staff)
    assert merged.render("ahead", "en", number=7, ahead=2, site="X").body == "No. 7: 2 ahead at X"
    assert merged.render("ahead", "ja", number=7, ahead=2, site="X").body.startswith("X")
    bad = {
        '[en]\nahead = "{numbr} soon"\n': "[en] ahead: unknown placeholder {numbr}",
        '[en]\nahead = "{counter} soon"\n': "unknown placeholder {counter}",
        '[fr]\nahead = "x"\n': "unknown language [fr]",
        '[en]\nahed = "x"\n': "[en] ahed: unknown key",
        '[en]\ncalled = "{number"\n': "broken braces",
        '[en]\ncalled = "{number:>5}"\n': "must not have a format",
        '[en]\ncalled = ""\n': "non-empty",
        "[en\n": "not valid TOML",
    }
    for body, expected in bad.items():
        staff.write_text(body)
        with pytest.raises(texts.TextsError) as info:
            texts.load(staff)
        assert expected in str(info.value), body
        assert str(staff) in str(info.value)
    with pytest.raises(texts.TextsError, match="cannot read"):
        texts.load(tmp_path / "missing.toml")


def test_nobody_ahead_says_next_not_zero_ahead() -> None:
    shipped = texts.load()
    assert text_kind("ahead", 0) == "next"
    assert text_kind("ahead", 1) == "ahead"
    assert text_kind("called", 0) == "called"
    for lang in ("ja", "en", "zh", "ko"):
        body = shipped.render(text_kind("ahead", 0), lang, number=7, ahead=0, site="S",
                              service="B", url="u").body
        assert "7" in body, (lang, body)
        assert "0" not in body, (lang, body)


def test_contacts_are_normalised_or_refused() -> None:
    assert contacts.email(" Taro@Example.JP ") == "Taro@example.jp"
    assert contacts.phone(PHONE_TYPED) == PHONE
    assert contacts.phone("+81 90 1234 5678") == PHONE
    assert contacts.phone("080(1234)5678") == "+818012345678"
    for bad in ("a@b", "no-at.example.jp", "a b@example.jp", "a@example.jp\r\nBcc: x@y.jp",
                "a@-bad-.jp", "x" * 65 + "@example.jp", "a@" + "b" * 250 + ".jp", "",
                "a@example.123", "a..b@example.jp", "\u3042@example.jp"):
        with pytest.raises(contacts.InvalidContact):
            contacts.email(bad)
    for bad in ("12345", "0312345678", "+1 555 123 4567", "090-1234-567", "0901234567890",
                "090-1234-5678; drop", "5" * 400):
        with pytest.raises(contacts.InvalidContact):
            contacts.phone(bad)


# --- the HTTP endpoint against a live fold (no broker) -------------------------------------------

class Recorder:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


class FoldsOnly:
    """What the notifier needs from ingest: the folds and the listener list."""

    def __init__(self, folds: dict[str, SiteFold]) -> None:
        self.folds = folds
        self.listeners: list[Callable[[Change], Any]] = []


def local_site(site: str, issues: int) -> tuple[Writer, SiteFold]:
    config = parse_site_config(site_toml(site))
    writer = Writer(EventStore(":memory:", site, durable=False), config,
                    ManualClock(datetime(2026, 11, 24, 9, 0, tzinfo=TZ)))
    for _ in range(issues):
        assert writer.execute_sync(c.Issue("A")).refused is None
    fold = SiteFold(site, config, 1)
    fold.advance(writer.store.events())
    return writer, fold


async def test_endpoint_refuses_bad_input_and_stores_nothing(tmp_path: Path) -> None:
    site = "api-site"
    writer, fold = local_site(site, 6)
    tokens = sorted((t.number, t.token) for t in writer.state.tickets.values())
    settings = HubSettings(keys={"k1": key()}, key_id="k1", trust_proxy=True)
    store = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    notifier = Notifier(store, FoldsOnly({site: fold}), settings,  # type: ignore[arg-type]
                        senders={"email": Recorder("email")})
    app = create_app(store, None, settings)
    app[NOTIFIER] = notifier
    client = TestClient(TestServer(app))
    await client.start_server()
    ip = iter(range(1, 1000))

    async def post(token: str, body: Any, form: bool = False, **kw: Any) -> aiohttp.ClientResponse:
        headers = {"X-Forwarded-For": f"10.0.0.{next(ip)}"}
        if form:
            return await client.post(f"/t/{token}/notice", data=body, headers=headers,
                                     allow_redirects=False, **kw)
        return await client.post(f"/t/{token}/notice", json=body, headers=headers, **kw)

    async def refused(token: str, body: Any, status: int, code: str, **kw: Any) -> None:
        resp = await post(token, body, **kw)
        assert resp.status == status, (body, await resp.text())
        assert (await resp.json())["error"]["code"] == code, body

    try:
        tok = tokens[3][1]
        for contact in ("a@b", "a@example.jp\r\nBcc: x@y.jp", "x" * 300 + "@example.jp",
                        "", "<script>@example.jp"):
            await refused(tok, {"channel": "email", "contact": contact, "lang": "ja"}, 400,
                          "invalid_contact")
        await refused(tok, {"channel": "email", "contact": "y" * 5000, "lang": "ja"}, 413,
                      "too_large")
        await refused(tok, {"channel": "fax", "contact": ADDRESS}, 400, "invalid_request")
        await refused(tok, {"channel": "email", "contact": ADDRESS, "lang": "fr"}, 400,
                      "invalid_request")
        await refused(tok, ["not", "an", "object"], 400, "invalid_request")
        await refused(tok, {"channel": "sms", "contact": PHONE, "lang": "ja"}, 409,
                      "unavailable")
        await refused("A" * 22, {"channel": "email", "contact": ADDRESS}, 409, "closed")
        resp = await post(tok, {"channel": "email", "contact": "z" * 100_000})
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "too_large"
        resp = await post(tok, {"channel": "email", "contact": "bad", "lang": "en"}, form=True)
        assert resp.status == 303
        assert resp.headers["Location"] == f"/t/{tok}?notice=invalid_contact&lang=en"
        resp = await post("../../x", {"channel": "email", "contact": ADDRESS}, form=True)
        assert resp.status in (303, 404)
        async with store.read() as tx:
            assert (await tx.conn.execute(select(notify_subscriptions))).all() == []

        # a called ticket is closed; a waiting one registers (form: 303 registered)
        assert writer.execute_sync(c.OpenCounter("1")).refused is None
        called = writer.execute_sync(c.CallNext("1"))
        fold.advance(called.events)
        await refused(tokens[0][1], {"channel": "email", "contact": ADDRESS}, 409, "closed")
        resp = await post(tok, {"channel": "email", "contact": ADDRESS, "lang": "en"}, form=True)
        assert resp.headers["Location"] == f"/t/{tok}?notice=registered&lang=en"
        # one per ticket, the old one erased (no second "ahead"); then the per-ticket limit
        for _ in range(4):
            resp = await post(tok, {"channel": "email", "contact": ADDRESS, "lang": "ja"})
            assert resp.status == 201
        await refused(tok, {"channel": "email", "contact": ADDRESS, "lang": "ja"}, 429,
                      "rate_limited")
        async with store.read() as tx:
            rows = (await tx.conn.execute(select(notify_subscriptions))).all()
        assert len(rows) == 5
        assert sum(r.contact_ct is not None for r in rows) == 1
        # ticket 4 has 2 ahead now (N = 2): the ahead notice went out at registration, once
        await notifier.wait_sent()
        sent = notifier.senders["email"].sent  # type: ignore[attr-defined]
        assert [(n.to, n.lang) for n in sent] == [(ADDRESS, "en")]
        assert "2 visitor(s) ahead" in sent[0].body
        assert f"/t/{tok}" in sent[0].body
        # per client address
        same_ip = {"X-Forwarded-For": "10.9.9.9"}
        codes = []
        for _ in range(12):
            r = await client.post(f"/t/{tokens[5][1]}/notice", headers=same_ip,
                                  json={"channel": "email", "contact": "bad"})
            codes.append(r.status)
        assert codes[:10] == [400] * 10
        assert codes[10:] == [429, 429]
    finally:
        await client.close()
        await store.close()
        writer.close()


# --- end to end --------------------------------------------------------------------------------

async def until(probe: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest,
                   tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hub.db", None
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"notifytest_{uuid.uuid4().hex[:12]}"
    yield url, schema
    store = await HubStore.open(url, upgrade=False)
    async with store.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await store.close()


def stored_bytes(db_url: str, schema: str | None) -> bytes:
    """Everything the database holds: the SQLite file and its WAL, or a pg_dump of the schema."""
    if schema is None:
        path = Path(urlsplit(db_url).path[1:])
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    parts = urlsplit(db_url)
    out = subprocess.run(
        ["pg_dump", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
         "-U", parts.username or "postgres", "-n", schema, parts.path.lstrip("/")],
        capture_output=True, check=True, timeout=60)
    return out.stdout


async def test_notices_end_to_end(database: tuple[str, str | None], mqtt_broker_url: str,
                                  tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db_url, schema = database
    site, prefix = f"nt-{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex}"
    smtp, sms = SmtpSink(), SmsGateway()
    smtp.controller.start()
    await sms.start()
    settings = HubSettings(public_url="https://queue.example.jp", keys={"k1": key()},
                           key_id="k1", smtp_url=smtp.url, smtp_from="madoguchi@city.example.jp",
                           sms_url=sms.url, sms_token="gateway-secret")
    seen: dict[str, int] = {}

    async def started() -> Hub:
        hub = await start_hub(db_url, f"{mqtt_broker_url}?session_expiry=30", prefix, port=0,
                              schema=schema, settings=settings)
        assert hub.ingest is not None
        assert await hub.ingest.wait_connected(WAIT_S)

        async def record(change: Change) -> None:  # after the notifier's own listener
            for s, envs in change.events.items():
                seen[s] = envs[-1].seq
        hub.ingest.listeners.append(record)
        return hub

    hub = await started()
    toml = site_toml(site)
    await hub.set_config(site, toml)
    clock = ManualClock(datetime(2026, 11, 24, 9, 0, tzinfo=TZ))
    writer = Writer(EventStore(tmp_path / "edge.db", site), parse_site_config(toml), clock)
    sync = SyncClient(writer, writer.config, mqtt_broker_url, prefix=prefix, settings=FAST,
                      client_id=f"edge-{uuid.uuid4().hex[:8]}")
    await sync.start()

    async def run(cmd: c.Command) -> None:
        clock.advance(30)
        assert (await writer.execute(cmd)).refused is None
        target = writer.state.seq
        await until(lambda: seen.get(site, 0) >= target, f"the hub to handle seq {target}")
        assert hub.notifier is not None
        await hub.notifier.wait_sent()

    try:
        await run(c.OpenCounter("1"))
        for _ in range(5):
            await run(c.Issue("A"))
        by_number = {t.number: t for t in writer.state.tickets.values()}
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{hub.url}/t/{by_number[4].token}/notice", data={
                "channel": "email", "contact": ADDRESS, "lang": "ja"}, allow_redirects=False)
            assert resp.status == 303, await resp.text()
            assert resp.headers["Location"].endswith("?notice=registered&lang=ja")
            resp = await http.post(f"{hub.url}/t/{by_number[5].token}/notice", json={
                "channel": "sms", "contact": PHONE_TYPED, "lang": "en"})
            assert resp.status == 201, await resp.text()
        async with hub.store.read() as tx:
            sealed = [r.contact_ct for r in await subscriptions.live(tx)]
        assert len(sealed) == 2
        before = stored_bytes(db_url, schema)  # the search below can find what is there
        assert all(s.encode() in before for s in sealed)
        assert ADDRESS.encode() not in before
        assert not any(
            p.encode() in before for p in PHONE_TRACES)
        assert smtp.messages == []
        assert sms.received == []

        await run(c.CallNext("1"))  # calls 1: ticket 4 has 2 ahead
        assert len(smtp.messages) == 1
        assert sms.received == []
        rcpt, msg = smtp.messages[0]
        assert rcpt == [ADDRESS]
        assert msg["Content-Language"] == "ja"
        assert msg["Subject"] == "【練馬区役所】まもなく順番です（4番）"
        body = msg.get_body()
        assert body is not None
        assert "あと2人" in body.get_content()
        assert f"https://queue.example.jp/t/{by_number[4].token}" in body.get_content()

        await hub.stop()  # a restart re-sends nothing: the marks are in the database
        hub = await started()
        await run(c.CallNext("1"))  # calls 2: ticket 5 has 2 ahead
        assert len(smtp.messages) == 1
        assert len(sms.received) == 1
        auth, payload = sms.received[0]
        assert auth == "Bearer gateway-secret"
        assert payload["to"] == PHONE
        assert payload["lang"] == "en"
        assert "2 visitor(s) ahead" in payload["text"]
        assert "Nerima City Office" in payload["text"]

        await run(c.CallNext("1"))  # calls 3
        await run(c.CallNext("1"))  # calls 4: the e-mail's "called", then its erasure
        assert len(smtp.messages) == 2
        assert len(sms.received) == 1
        rcpt, msg = smtp.messages[1]
        assert rcpt == [ADDRESS]
        assert msg["Subject"] == "【練馬区役所】4番をお呼びしています"
        body = msg.get_body()
        assert body is not None
        assert "1番窓口へお越しください" in body.get_content()
        await run(c.CallNext("1"))  # calls 5
        assert len(sms.received) == 2
        assert sms.received[1][1]["lang"] == "en"
        assert "please go to Counter 1" in sms.received[1][1]["text"]
        await run(c.Finish("1"))
        await run(c.Issue("A"))
        await run(c.CallNext("1"))
        assert len(smtp.messages) == 2
        assert len(sms.received) == 2

        async with hub.store.read() as tx:
            rows = (await tx.conn.execute(select(notify_subscriptions))).all()
        assert len(rows) == 2
        for r in rows:
            assert r.contact_ct is None
            assert r.key_id is None
            assert r.erased_at is not None
            assert r.sent_ahead_at is not None
            assert r.sent_called_at is not None
        after = stored_bytes(db_url, schema)
        for trace in (ADDRESS, *PHONE_TRACES, *sealed):
            assert trace.encode() not in after, trace
    finally:
        await sync.stop()
        writer.close()
        await hub.stop()
        smtp.controller.stop()
        if sms.runner is not None:
            await sms.runner.cleanup()

    def text(records: list[logging.LogRecord]) -> str:
        return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)

    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # not the SMTP sink
    logged = text(ours)
    assert "contact erased" in logged
    assert "sent by email" in logged
    for trace in (ADDRESS, "hanako", *PHONE_TRACES, "1234-5678"):
        assert trace not in logged, trace
    # at DEBUG the database drivers log bound parameters: event data (tokens) and the sealed
    # contacts, never a plain one; the hub's own loggers log neither
    hub_logs = text([r for r in ours if r.name.split(".")[0] in ("hub", "edge")])
    assert "sent by email" in hub_logs
    for trace in (*sealed, by_number[4].token, by_number[5].token, "gateway-secret"):
        assert trace not in hub_logs, trace

