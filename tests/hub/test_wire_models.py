"""Wire payloads (issue 12 item 1): what the edge builds, the hub accepts, and the other way.

Round trips go through the real builders (the outbox's batch text, presence, command replies,
the hub's command sender) and the real readers (``hub.ingest.validate``, the edge's
``parse`` functions). Malformed payloads carry a marker in every value they spoil; the reason
they are refused with must name the field and never contain the marker.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import protocol
from edge.devices.health import REASONS, STATES, DeviceState, HealthBoard
from edge.protocol import (
    MAX_SEQ,
    Envelope,
    StaffMessage,
    WireError,
    dumps,
    uuid7,
)
from edge.store.store import EventStore, Rows
from edge.sync import commands as edge_commands
from edge.sync import presence, site_config, staff
from edge.sync.outbox import Limits, read_batch
from hub.ingest import validate
from hub.ingest.commands import Commands

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
MARK = "PAYLOAD-TEXT"  # put in every spoilt value; a reason must never repeat it

site_ids = st.from_regex(protocol.SITE_ID_PATTERN.removesuffix("$") + r"\Z", fullmatch=True)
json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=9)),
                           timezone(timedelta(hours=-5, minutes=-30))])
aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                     timezones=offsets)
event_types = st.from_regex(protocol.EVENT_TYPE_PATTERN.removesuffix("$") + r"\Z",
                            fullmatch=True)


@st.composite
def envelopes(draw: st.DrawFn, site: str, seq: int) -> Envelope:
    at = draw(aware)
    return Envelope(1, site, seq, uuid7(), at.isoformat(timespec="milliseconds"),
                    at.date().isoformat(), draw(event_types), draw(json_objects))


@st.composite
def stored_logs(draw: st.DrawFn) -> tuple[str, list[Envelope]]:
    site = draw(site_ids)
    start = draw(st.sampled_from([1, 1000, MAX_SEQ - 50]))
    n = draw(st.integers(1, 12))
    return site, [draw(envelopes(site, start + i)) for i in range(n)]


# --- edge -> hub ------------------------------------------------------------------------------

@SETTINGS
@given(stored_logs(), st.booleans())
def test_the_outbox_batch_is_what_the_hub_accepts(log: tuple[str, list[Envelope]],
                                                  replay: bool) -> None:
    site, events = log
    store = EventStore(":memory:", site)
    try:
        store.commit(events, Rows())
        batch = read_batch(store, events[0].seq - 1, Limits(events=100, bytes=10**6),
                           replay=replay, upto=events[-1].seq)
    finally:
        store.close()
    assert batch is not None
    got = validate.events_batch(batch.payload, site)
    assert got.replay is replay
    assert got.events == events
    assert protocol.EventsBatch.from_json(batch.payload).events == events


devices = st.lists(
    st.tuples(st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}\Z", fullmatch=True),
              st.sampled_from(["printer", "scanner", "keypad", "display", "voice"]),
              st.sampled_from(STATES),
              st.none() | st.sampled_from(sorted(REASONS)),
              st.text(max_size=30)),
    max_size=8, unique_by=lambda d: d[0])


@SETTINGS
@given(site_ids, st.uuids(), aware, st.integers(0, 10**6), st.integers(0, 99),
       st.integers(0, MAX_SEQ - 1), st.integers(0, 10**6), devices,
       st.none() | st.fixed_dictionaries({"version": json_values, "message": st.text()}),
       st.none() | st.text(max_size=60))
def test_the_status_the_edge_builds_is_what_the_hub_accepts(
        site: str, session: Any, now: datetime, config_version: int, schema: int,
        last_seq: int, outbox: int, devs: list[tuple[str, str, DeviceState, str | None, str]],
        config_error: dict[str, Any] | None, sync_error: str | None) -> None:
    board = HealthBoard()
    for dev_id, kind, state, reason, detail in devs:
        board.register(dev_id, kind, bound_to="kiosk-1")
        board.report(dev_id, state, reason, detail)
    built = presence.online(site, str(session), now, config_version, schema, last_seq, outbox,
                            board.views, config_error=config_error, sync_error=sync_error)
    got = validate.status(dumps(built), site)
    assert (got.online, got.session, got.config_version, got.last_seq, got.outbox) == \
        (True, str(session), config_version, last_seq, outbox)
    assert got.devices == [{"device": h.id, "kind": h.kind, "state": h.state,
                            "reason": h.reason, "since": h.since} for h in board.all()]
    assert got.payload == {k: v for k, v in built.items() if k != "devices"}
    assert built["devices"] == board.views()  # the views go out as the board gives them

    will = presence.offline(site, str(session), None)
    assert will == {"v": 1, "site": site, "online": False, "session": str(session), "at": None}
    gone = validate.status(dumps(will), site)
    assert (gone.online, gone.devices, gone.payload) == (False, None, will)


@SETTINGS
@given(site_ids, st.uuids(), json_objects,
       st.none() | st.sampled_from(["expired", "bad_command", "store_error", "closed"]),
       st.none() | st.text(max_size=40))
def test_command_replies_are_what_the_hub_accepts(site: str, cid: Any, data: dict[str, Any],
                                                  code: str | None,
                                                  message: str | None) -> None:
    rep = edge_commands.reply(site, str(cid), data=data, code=code, message=message)
    got = validate.reply(dumps(rep), site)
    assert got.command_id == str(cid)
    assert got.payload == rep
    assert rep["ok"] is (code is None)


# --- hub -> edge ------------------------------------------------------------------------------

class _Link:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, **_kw: Any) -> None:
        self.sent.append((topic, payload))


@SETTINGS
@given(site_ids, st.sampled_from(["issue", "replay", "launch"]), json_objects,
       st.floats(1, 3600))
def test_hub_commands_are_what_the_edge_parses(site: str, kind: str, data: dict[str, Any],
                                               ttl: float) -> None:
    link = _Link()
    cid = Commands(link, "p").send(site, kind, data, ttl)  # type: ignore[arg-type]
    (topic, payload), = link.sent
    assert topic == f"p/sites/{site}/commands"
    cmd = edge_commands.parse(json.loads(payload))
    assert isinstance(cmd, edge_commands.Command)
    assert (cmd.id, cmd.type, cmd.data) == (cid, kind, data)
    assert cmd.expires_at is not None
    assert cmd.expires_at > datetime.now(UTC)


logins = st.text(min_size=1, max_size=64)
hashes = st.text(alphabet=string.ascii_letters + string.digits + "$=,+/", max_size=80).map(
    lambda tail: "$argon2id$v=19$m=65536,t=3,p=4$" + tail)


@SETTINGS
@given(site_ids, st.lists(st.tuples(logins, hashes,
                                    st.lists(st.sampled_from(sorted(staff.OPERATOR_ROLES)))),
                          max_size=20))
def test_staff_lists_are_what_the_edge_parses(site: str,
                                              entries: list[tuple[str, str, list[str]]]) -> None:
    message = StaffMessage.from_raw({"site": site, "version": "d1", "staff": [
        {"login": login, "hash": h, "roles": roles} for login, h, roles in entries]}).to_wire()
    assert message["v"] == 1
    parsed = staff.parse_message(json.loads(dumps(message)))
    assert not isinstance(parsed, str)
    assert parsed == ("d1", [staff.Credential(login, h, frozenset(roles))
                             for login, h, roles in entries])
    # the copy kept in meta (no v, no site) parses too
    kept = {"version": "d1", "staff": message["staff"]}
    assert staff.parse_message(kept) == parsed


@SETTINGS
@given(site_ids, st.integers(1, 2**40), st.text())
def test_config_messages_round_trip(site: str, version: int, toml: str) -> None:
    payload = protocol.ConfigMessage(site=site, version=version, toml=toml).encode()
    assert site_config.parse_message(json.loads(payload)) == site_config.Pushed(version, toml)
    assert validate.config_version(payload, site) == version


@SETTINGS
@given(site_ids, st.integers(0, MAX_SEQ - 1), aware)
def test_acks_round_trip(site: str, seq: int, at: datetime) -> None:
    ack = protocol.Ack(site=site, seq=seq, at=at.isoformat())
    assert protocol.Ack.from_json(ack.encode()) == ack
    assert ack.to_wire() == {"v": 1, "site": site, "seq": seq, "at": at.isoformat()}


# --- malformed payloads: refused, and the reason never quotes them ----------------------------

def _spoilt(draw: st.DrawFn) -> Any:
    """A value that carries the marker (or is otherwise wrong) in some JSON shape."""
    return draw(st.sampled_from([
        MARK, f"{MARK}\n{MARK}", [MARK], {MARK: MARK}, {"x": [MARK]}, -1, 2**62, 1.5, True,
        None, f"2026-11-21T09:00:00{MARK}", f"{MARK}-01-01",
    ]))


def _good_batch(site: str) -> dict[str, Any]:
    env = Envelope(1, site, 7, uuid7(), "2026-11-21T09:00:00.000+09:00", "2026-11-21",
                   "TicketIssued", {"n": 1})
    return {"v": 1, "site": site, "replay": False, "events": [env.to_dict()]}


def _good_status(site: str) -> dict[str, Any]:
    board = HealthBoard()
    board.register("printer-1", "printer")
    board.report("printer-1", "error", "paper_out", "no paper")
    return presence.online(site, "s-1", datetime(2026, 11, 21, tzinfo=UTC), 3, 2, 10, 0,
                           board.views, config_error=None, sync_error=None)


def _good_reply(site: str) -> dict[str, Any]:
    return edge_commands.reply(site, "c-1", code="expired")


GOOD: dict[str, Callable[[str], dict[str, Any]]] = {
    "events": _good_batch, "status": _good_status, "replies": _good_reply}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@st.composite
def spoilt_payloads(draw: st.DrawFn) -> tuple[str, str, bytes, tuple[Any, ...]]:
    site = draw(site_ids)
    kind = draw(st.sampled_from(["events", "status", "replies"]))
    doc = GOOD[kind](site)
    path = draw(st.sampled_from(_paths(doc)))
    _put(doc, path, _spoilt(draw))
    return site, kind, json.dumps(doc).encode(), path


READERS = {"events": validate.events_batch, "status": validate.status,
           "replies": validate.reply}


@settings(max_examples=300, deadline=None)
@given(spoilt_payloads())
def test_spoilt_payloads_are_refused_without_quoting_them(
        case: tuple[str, str, bytes, tuple[Any, ...]]) -> None:
    site, kind, payload, path = case
    try:
        READERS[kind](payload, site)
    except validate.Invalid as exc:
        reason = str(exc)
        assert MARK not in reason
        assert "input" not in reason.lower()  # pydantic's texts quote the input: never used
        if path[0] not in ("v", "site"):  # those two: "v must be 1", "site in the payload..."
            # names the spoilt field (or its parent), or a rule on the whole message
            assert reason.startswith((str(path[0]), "a reply has data"))
    # accepted: some spots take any JSON (event data) or any text (details, messages)


@pytest.mark.parametrize("payload", [
    MARK.encode(), b"\xff" + MARK.encode(), json.dumps([MARK]).encode(),
    json.dumps({"v": 1, "site": "nerima-main", "events": MARK}).encode(),
    json.dumps({"v": 1, "site": "nerima-main", "online": True,
                "devices": [{"id": "p", "kind": "printer", "state": MARK}]}).encode(),
    json.dumps({"v": MARK, "site": "nerima-main"}).encode(),
])
def test_readers_name_the_rule_not_the_content(payload: bytes) -> None:
    for read in READERS.values():
        with pytest.raises(validate.Invalid) as err:
            read(payload, "nerima-main")
        assert MARK not in str(err.value)


def test_reasons_name_the_field_and_rule() -> None:
    bad_state = {"v": 1, "site": "s1", "online": True,
                 "devices": [{"id": "p", "kind": "printer", "state": "broken"}]}
    with pytest.raises(validate.Invalid, match=re.escape(
            "devices[0].state must be one of degraded, error, offline, ok")):
        validate.status(json.dumps(bad_state).encode(), "s1")
    bad_reason = {**bad_state, "devices": [{"id": "p", "kind": "printer", "state": "error",
                                            "reason": "Paper Out"}]}
    with pytest.raises(validate.Invalid, match=re.escape("devices[0].reason must be a reason")):
        validate.status(json.dumps(bad_reason).encode(), "s1")
    with pytest.raises(validate.Invalid, match="a reply has data when ok"):
        validate.reply(b'{"v":1,"site":"s1","command_id":"c-1","ok":false}', "s1")
    with pytest.raises(validate.Invalid, match="version must be a positive integer"):
        validate.config_version(b'{"v":1,"site":"s1","version":0,"toml":""}', "s1")
    assert validate.MAX_SEQ == 2**53
    assert validate.MAX_DEVICES == 256
    assert validate.MAX_PAYLOAD == 1_000_000


def test_the_edge_refuses_malformed_hub_messages_with_a_reason() -> None:
    assert edge_commands.parse({"v": 1, "site": "s1", "type": "issue"}) is None  # no id
    assert edge_commands.parse({"v": 1, "site": "s1", "id": f"{MARK} x", "type": "x"}) is None
    got = edge_commands.parse({"v": 1, "site": "s1", "id": "c-1", "type": "issue",
                               "expires_at": f"{MARK}T00:00"})
    assert isinstance(got, str)
    assert got.startswith("expires_at ")
    assert MARK not in got
    assert site_config.parse_message({"v": 1, "site": "s1", "version": "x", "toml": 1}) == \
        "version must be a positive integer"
    refused = staff.parse_message({"version": "d", "staff": [
        {"login": "a", "hash": MARK, "roles": []}]})
    assert refused == "staff[0].hash must be an argon2 hash"


# --- one definition of the patterns and health vocabulary -------------------------------------

def test_health_states_and_reason_codes_are_defined_once() -> None:
    assert protocol.DEVICE_STATES is STATES
    assert set(get_args(DeviceState)) == set(STATES)
    assert frozenset(REASONS) == protocol.REASON_CODES
    code = re.compile(protocol.REASON_CODE_PATTERN)
    assert all(code.match(c) for c in REASONS)


@pytest.mark.parametrize(("value", "ok"), [
    ("nerima-main", True), ("ab", True), ("a", False), ("nerima-main\n", False),
    ("Nerima", False), ("-ab", False), ("a" * 41, True), ("a" * 42, False),
])
def test_site_id_pattern(value: str, ok: bool) -> None:
    assert bool(protocol.SITE_ID.match(value)) is ok
    assert bool(validate.SITE_ID.match(value)) is ok
    try:
        protocol.Ack(site=value, seq=0, at="2026-11-21T09:00:00+09:00")
        accepted = True
    except ValueError:  # pydantic's ValidationError is a ValueError
        accepted = False
    assert accepted is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("abcdEFGH_-12", True), ("short", False), ("x" * 64, True), ("x" * 65, False),
    ("abcdefgh\n", False), ("abc defgh", False),
])
def test_token_pattern(value: str, ok: bool) -> None:
    assert bool(protocol.TOKEN.match(value)) is ok


def test_wire_error_is_a_value_error() -> None:
    with pytest.raises(WireError, match=r"^not JSON"):
        protocol.Status.from_json(b"{")


def test_one_envelope_by_the_same_rules() -> None:
    good = _good_batch("s1")["events"][0]
    assert validate.envelope(good, "s1", "e") == Envelope.from_dict(good)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"seq": "7"}, "e.seq must be a positive integer"),
        ({"seq": True}, "e.seq must be a positive integer"),
        ({"v": 2}, "e.v must be 1"),
        ({"at": "2026-11-21T09:00:00"}, "e.at has no UTC offset"),
        ({"site": "s2"}, "e.site differs from the topic"),
    ]
    for spoil, reason in cases:
        with pytest.raises(validate.Invalid) as err:
            validate.envelope({**good, **spoil}, "s1", "e")
        assert str(err.value) == reason
    with pytest.raises(validate.Invalid, match=r"^e is not an object$"):
        validate.envelope([MARK], "s1", "e")
