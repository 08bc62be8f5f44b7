"""Wire types shared by edge and hub: the event envelope, the sync topics and every payload.

Events are born at the edge, so this module lives here and the hub imports it. Each topic's
payload is a pydantic model below (DESIGN.md "Sync"): the edge builds what it publishes with
them and the hub validates what sites publish with them, so the two sides cannot drift. What
several places check is defined here once: the site id and ticket token patterns, and (taken
from ``edge/devices/health.py``) the device health states and reason codes.

Why strict models: a payload is stored for good and acked back, so ``"1"`` is not 1, ``true`` is
not 1 and ``1.0`` is not a seq. Why ``WireError``: a payload that does not fit is refused with
a reason that names the field and the rule, never the payload's content (it may hold personal
data or be hostile), so the reason is safe to log and to send back.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edge.devices.health import REASONS, STATES, DeviceState

ENVELOPE_VERSION = 1
SYNC_VERSION = 1
DEFAULT_PREFIX = "madoguchi/v1"
MAX_PAYLOAD = 1_000_000  # bytes; larger messages are dropped and logged by either side
MAX_SEQ = 2**53  # seqs stay exact as JSON numbers in every client (JavaScript too)
MAX_DEVICES = 256  # devices in one status message
MAX_STAFF = 5000  # accounts in one staff message


def _full(pattern: str) -> re.Pattern[str]:
    """The pattern for Python's ``re``: ``$`` there also matches before a final newline
    (pydantic's regex engine does not), so it ends in ``\\Z`` instead."""
    return re.compile(pattern.removesuffix("$") + r"\Z")


# --- patterns checked in several places: one definition each ---------------------------------

SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,40}$"  # [site] id in the site TOML, topic segment
SITE_ID = _full(SITE_ID_PATTERN)
# the token printed in a ticket's QR code and used in its URLs (secrets.token_urlsafe(16) today)
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"  # noqa: S105 - a pattern, not a secret
TOKEN = _full(TOKEN_PATTERN)
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"  # event and command ids (uuid7)
WIRE_ID = _full(ID_PATTERN)
EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
REASON_CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# device health (edge/devices/health.py owns them with their texts; the wire refers to them)
DEVICE_STATES: tuple[DeviceState, ...] = STATES
# the codes this version knows; a newer edge may send others of the same shape (screens show
# unknown codes as they are), so the wire checks the shape, not membership
REASON_CODES: frozenset[str] = frozenset(REASONS)

_RULE = "wire_rule"  # error type of this module's own checks; their message is a fixed text


def _iso_time(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(_RULE, "is not an ISO time") from None
    if parsed.tzinfo is None:
        raise PydanticCustomError(_RULE, "has no UTC offset")
    return value


def _day(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(_RULE, "is not a date") from None
    return value


def _text(low: int, high: int) -> Any:
    return StringConstraints(min_length=low, max_length=high)


SiteId = Annotated[str, Strict(), StringConstraints(pattern=SITE_ID_PATTERN)]
Token = Annotated[str, Strict(), StringConstraints(pattern=TOKEN_PATTERN)]
WireId = Annotated[str, Strict(), StringConstraints(pattern=ID_PATTERN)]
EventType = Annotated[str, Strict(), StringConstraints(pattern=EVENT_TYPE_PATTERN)]
ReasonCode = Annotated[str, Strict(), StringConstraints(pattern=REASON_CODE_PATTERN)]
IsoTime = Annotated[str, Strict(), _text(1, 40), AfterValidator(_iso_time)]  # with an offset
Day = Annotated[str, Strict(), StringConstraints(pattern=DAY_PATTERN), AfterValidator(_day)]
Seq = Annotated[int, Strict(), Field(ge=1, lt=MAX_SEQ)]
Count = Annotated[int, Strict(), Field(ge=0, lt=MAX_SEQ)]
EnvelopeVersion = Annotated[int, Strict(), Field(ge=ENVELOPE_VERSION, le=ENVELOPE_VERSION)]
SyncVersion = Annotated[int, Strict(), Field(ge=SYNC_VERSION, le=SYNC_VERSION)]


class WireError(ValueError):
    """A payload does not fit its model; ``str()`` names the field and rule, never content."""


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7): sortable ids without a central counter."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as stored, synced and replayed: ``{v, site, seq, id, at, day, type, data}``.

    ``seq`` is gap-free per site, ``at`` is the edge's local time with its offset and ``day`` the
    business day the event belongs to. A plain dataclass (built cheaply wherever events are
    made); the annotations are the wire rules, applied where events arrive (``EventsBatch``).
    """

    v: EnvelopeVersion
    site: SiteId
    seq: Seq
    id: WireId
    at: IsoTime
    day: Day
    type: EventType
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def data_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Envelope:
        return cls(
            v=int(raw["v"]),
            site=str(raw["site"]),
            seq=int(raw["seq"]),
            id=str(raw["id"]),
            at=str(raw["at"]),
            day=str(raw["day"]),
            type=str(raw["type"]),
            data=dict(raw["data"]),
        )


# --- MQTT sync (DESIGN.md "Sync"): topics and payloads, the contract between edge and hub ---

# topic kinds under {prefix}/sites/{site}/: who publishes, QoS 1 everywhere
EDGE_TOPICS = ("events", "status", "replies")  # edge -> hub (a site may publish only these)
# staff: the accounts that may sign in at the site's counters (edge/sync/staff.py)
# reservations: the bookings the site may check in (edge/sync/reservations.py)
HUB_TOPICS = ("ack", "config", "commands", "staff", "reservations")  # hub -> edge
RETAINED = frozenset({"ack", "status", "config", "staff", "reservations"})


def site_topic(prefix: str, site: str, kind: str) -> str:
    """``{prefix}/sites/{site}/{kind}``; kind in EDGE_TOPICS + HUB_TOPICS."""
    return f"{prefix}/sites/{site}/{kind}"


def hub_status_topic(prefix: str) -> str:
    return f"{prefix}/hub/status"


def parse_site_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(site, kind)`` of a site topic, or None for anything else."""
    head = f"{prefix}/sites/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in EDGE_TOPICS + HUB_TOPICS:
        return None
    return parts[0], parts[1]


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# --- payload models ------------------------------------------------------------------------
# Every payload is a JSON object with "v": SYNC_VERSION and (except hub/status) "site", which
# the receiver compares with the topic's site. Unknown fields are ignored (an older receiver
# meets a newer sender), except in status, which the hub keeps as the edge sent it.

_GENERIC: Mapping[str, str] = {
    "missing": "is required",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dataclass_type": "must be an object",
    "dataclass_exact_type": "must be an object",
    "list_type": "must be a list",
    "literal_error": "is not one of the allowed values",
    "string_too_short": "is too short",
    "string_too_long": "is too long",
    "too_long": "has too many items",
    "string_pattern_mismatch": "has the wrong form",
    "greater_than_equal": "is out of range",
    "less_than": "is out of range",
    "less_than_equal": "is out of range",
}


def problem(exc: ValidationError, rules: Mapping[str, str] | None = None) -> str:
    """A safe reason for the first error: ``"<where> <rule>"``, e.g. ``events[3].seq must be a
    positive integer``. ``rules`` maps a path (``events[].seq``) to its rule text; pydantic's
    own messages are not used (some quote the input)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if not errors:  # pragma: no cover - pydantic raises with at least one error
        return "not valid"
    err = errors[0]
    kind, loc = err["type"], err["loc"]
    own = err["msg"] if kind == _RULE else None  # our fixed texts (no placeholders)
    if not loc:
        if kind == "json_invalid":
            return "not JSON (UTF-8)"
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return "not a JSON object"
        return own or "not valid"
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    key = "".join("[]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    rule = own or (rules or {}).get(key) or _GENERIC.get(kind, "is not valid")
    return f"{where} {rule}"


class Wire(BaseModel):
    """Base of the payload models: strict, frozen, unknown fields ignored."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")
    RULES: ClassVar[Mapping[str, str]] = {}  # path -> rule text for ``problem``
    ALWAYS: ClassVar[tuple[str, ...]] = ()  # fields written even when left at their default

    @classmethod
    def from_json(cls, payload: bytes | str) -> Self:
        """Parse and check a payload (one pass in pydantic-core); ``WireError`` if it does not
        fit. The caller checks the size first (``MAX_PAYLOAD``)."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            raise WireError(problem(exc, cls.RULES)) from None

    @classmethod
    def from_raw(cls, raw: object) -> Self:
        """Check an already decoded JSON object."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise WireError(problem(exc, cls.RULES)) from None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object to publish: the fields given when built (optional fields left out
        stay out, as the receivers expect) plus ``ALWAYS``."""
        out = self.model_dump(mode="json", exclude_unset=True)
        return {name: getattr(self, name) for name in self.ALWAYS} | out

    def encode(self) -> bytes:
        return dumps(self.to_wire())


class SiteMessage(Wire):
    """``v`` and ``site``, which every site topic's payload carries."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("v",)
    v: SyncVersion = SYNC_VERSION
    site: SiteId


_HEAD_RULES: Mapping[str, str] = {"v": f"must be {SYNC_VERSION}",
                                  "site": "in the payload differs from the topic"}
_COUNT = "must be a non-negative integer"


class EventsBatch(SiteMessage):
    """``events`` (edge -> hub): seq ascending without gaps inside one batch; ``replay`` marks
    history re-sent on request (never re-announced). The edge's relay writes it as text from
    the stored rows (``edge/sync/outbox.py``: decoding every event costs too much); the hub
    reads it with this model."""

    RULES: ClassVar[Mapping[str, str]] = {
        **_HEAD_RULES,
        "replay": "must be true or false",
        "events": "must be a list",
        "events[]": "is not an object",
        "events[].v": f"must be {ENVELOPE_VERSION}",
        "events[].site": "differs from the topic",
        "events[].seq": "must be a positive integer",
        "events[].id": "must be an id string",
        "events[].at": "must be an ISO time string",
        "events[].day": "must be YYYY-MM-DD",
        "events[].type": "must be an event type name",
        "events[].data": "must be an object",
    }
    replay: bool = False
    events: list[Envelope]


class Ack(SiteMessage):
    """``ack`` (hub -> edge, retained): the highest contiguous seq the hub has stored."""

    RULES: ClassVar[Mapping[str, str]] = {**_HEAD_RULES, "seq": _COUNT,
                                          "at": "must be an ISO time string"}
    seq: Count
    at: IsoTime


class DeviceMessage(Wire):
    """A health reason as a sentence, for screens that do not know the code."""

    en: str
    ja: str


class DeviceHealth(Wire):
    """One device in ``status.devices``: ``edge.devices.health.Health.view()``."""

    id: Annotated[str, _text(1, 64)]
    kind: Annotated[str, _text(1, 16)]  # printer | scanner | keypad | display | voice
    state: DeviceState
    reason: ReasonCode | None = None
    since: Annotated[str, _text(1, 40)] | None = None
    detail: str = ""  # free text for staff (an OS error); the hub does not keep it
    bound_to: Annotated[str, _text(1, 64)] | None = None
    message: DeviceMessage | None = None


class Versions(Wire):
    """``status.versions``; other keys are kept as sent."""

    model_config = ConfigDict(extra="allow", serialize_by_alias=True)
    software: Annotated[str, _text(1, 64)] | None = None
    config: Count | None = None  # the site configuration version applied
    schema_: Count | None = Field(default=None, alias="schema")  # the edge database schema


class ConfigProblem(Wire):
    """``status.config_error``: the hub config version refused (as it came) and why."""

    model_config = ConfigDict(extra="allow")
    version: Any = None
    message: str


class HostStats(Wire):
    """``status.host``: the mini-PC itself (issue 13 item 4), measured when the status is built.
    ``disk_pct``: use of the file system holding the edge database; ``mem_pct``: memory in use
    (total less available); ``load1``: the 1-minute load average and ``cpus`` the logical CPUs
    (load per CPU above 1 means work waits). No clock offset: the edge cannot know its own; the
    hub compares ``at`` with the time it receives the status (hub/fleet/README.md). Other keys
    are kept as sent."""

    model_config = ConfigDict(extra="allow")
    disk_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    mem_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    load1: Annotated[float, Field(ge=0, lt=1e6)] | None = None
    cpus: Annotated[int, Strict(), Field(ge=1, lt=100_000)] | None = None


class Status(SiteMessage):
    """``status`` (edge -> hub, retained). Online: ``{v, site, online, session, at, versions,
    last_seq, outbox, devices, config_error, sync_error, host}``; the last will is ``{v, site,
    online: false, session, at: null}``. Unknown fields are kept: the hub stores the status
    (without ``devices``) as it came."""

    model_config = ConfigDict(extra="allow")
    RULES: ClassVar[Mapping[str, str]] = {
        **_HEAD_RULES,
        "online": "must be true or false",
        "session": "must be a string of at most 64 characters",
        "at": "must be an ISO time string",
        "versions": "must be an object",
        "versions.software": "must be a string of at most 64 characters",
        "versions.config": _COUNT,
        "versions.schema": _COUNT,
        "last_seq": _COUNT,
        "outbox": _COUNT,
        "devices": f"must be a list of at most {MAX_DEVICES}",
        "devices[]": "is not an object",
        "devices[].id": "must be a string of at most 64 characters",
        "devices[].kind": "must be a string of at most 16 characters",
        "devices[].state": f"must be one of {', '.join(sorted(STATES))}",
        "devices[].reason": "must be a reason code (a-z, 0-9, _)",
        "devices[].since": "must be a string of at most 40 characters",
        "devices[].bound_to": "must be a string of at most 64 characters",
        "config_error": "must be an object with a message",
        "sync_error": "must be a string",
        "host": "must be an object",
        "host.disk_pct": "must be a percentage (0-100)",
        "host.mem_pct": "must be a percentage (0-100)",
        "host.load1": "must be a non-negative number",
        "host.cpus": "must be a positive integer",
    }
    online: bool
    session: Annotated[str, _text(1, 64)] | None = None
    at: IsoTime | None = None  # None in the last will: the broker sends it, nobody knows when
    versions: Versions | None = None
    last_seq: Count | None = None
    outbox: Count | None = None  # events not yet acked
    devices: Annotated[list[DeviceHealth], Field(max_length=MAX_DEVICES)] | None = None
    config_error: ConfigProblem | None = None
    sync_error: str | None = None
    host: HostStats | None = None  # added in issue 13; older edges leave it out


class ConfigMessage(SiteMessage):
    """``config`` (hub -> edge, retained): the desired site configuration; higher wins."""

    RULES: ClassVar[Mapping[str, str]] = {**_HEAD_RULES, "version": "must be a positive integer",
                                          "toml": "must be a string"}
    version: Annotated[int, Strict(), Field(ge=1, lt=MAX_SEQ)]
    toml: str


class Command(SiteMessage):
    """``commands`` (hub -> edge, not retained): ``issue`` (a web ticket; ``data`` has the
    ``POST /api/tickets`` fields) or ``replay`` (``data`` is ``ReplayData``). The edge
    deduplicates by ``id`` and refuses it once ``expires_at`` has passed."""

    RULES: ClassVar[Mapping[str, str]] = {
        **_HEAD_RULES,
        "id": "must be an id string",
        "type": "must be a string",
        "expires_at": "must be an ISO 8601 time with an offset",
        "data": "must be an object",
    }
    id: WireId
    type: Annotated[str, _text(1, 64)]
    expires_at: IsoTime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ReplayData(Wire):
    """``data`` of a ``replay`` command: re-send the event log from this seq."""

    RULES: ClassVar[Mapping[str, str]] = {"from_seq": _COUNT}
    from_seq: Count


class ReplyError(Wire):
    code: Annotated[str, _text(1, 64)]
    message: str
    message_ja: str


class Reply(SiteMessage):
    """``replies`` (edge -> hub): ``{command_id, ok, data}`` or ``{command_id, ok: false,
    error: {code, message, message_ja}}``."""

    RULES: ClassVar[Mapping[str, str]] = {
        **_HEAD_RULES,
        "command_id": "must be an id string",
        "ok": "must be true or false",
        "data": "must be an object",
        "error": "must be an object with code, message and message_ja",
    }
    command_id: WireId
    ok: bool
    data: dict[str, Any] | None = None
    error: ReplyError | None = None

    @model_validator(mode="after")
    def _data_or_error(self) -> Self:
        fits = (self.data is not None and self.error is None) if self.ok else \
            self.error is not None
        if not fits:
            raise PydanticCustomError(_RULE, "a reply has data when ok and an error when not")
        return self


class StaffEntry(Wire):
    """One account that may sign in at the site's counters: only the argon2id hash travels."""

    login: Annotated[str, _text(1, 64)]
    hash: Annotated[str, StringConstraints(pattern=r"^\$argon2", max_length=512)]
    roles: list[str]


class StaffList(Wire):
    """The content of a ``staff`` message (also how the edge keeps it in its database)."""

    RULES: ClassVar[Mapping[str, str]] = {
        **_HEAD_RULES,
        "version": "must be a short string",
        "staff": f"must be a list of at most {MAX_STAFF}",
        "staff[]": "must be an object",
        "staff[].login": "must be a string of 1-64 characters",
        "staff[].hash": "must be an argon2 hash",
        "staff[].roles": "must be a list of strings",
        "staff[].roles[]": "must be a list of strings",
    }
    version: Annotated[str, _text(1, 64)]  # a digest of the content: the same list, no push
    staff: Annotated[list[StaffEntry], Field(max_length=MAX_STAFF)]


class StaffMessage(StaffList, SiteMessage):
    """``staff`` (hub -> edge, retained): the accounts allowed at the site (replaced whole)."""


MAX_RESERVATIONS = 20000  # bookings in one reservations message (two days of one site)


class ReservationEntry(Wire):
    """One booking the site may check in: the SHA-256 of its QR token (never the token, which
    is the resident's capability), the service its ticket is for, the slot's time."""

    key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    service: Annotated[str, _text(1, 8)]
    starts: IsoTime
    ends: IsoTime


class ReservationList(Wire):
    """The content of a ``reservations`` message (also how the edge keeps it)."""

    RULES: ClassVar[Mapping[str, str]] = {
        **_HEAD_RULES,
        "version": "must be a short string",
        "items": f"must be a list of at most {MAX_RESERVATIONS}",
        "items[]": "must be an object",
        "items[].key": "must be 64 lower-case hex digits",
        "items[].service": "must be a service code",
        "items[].starts": "must be an ISO time string",
        "items[].ends": "must be an ISO time string",
    }
    version: Annotated[str, _text(1, 64)]
    items: Annotated[list[ReservationEntry], Field(max_length=MAX_RESERVATIONS)]


class ReservationsMessage(ReservationList, SiteMessage):
    """``reservations`` (hub -> edge, retained): today's and tomorrow's bookings at the site,
    replaced whole, so check-in works while the hub is unreachable."""


class HubStatus(Wire):
    """``hub/status`` (retained; also the hub's last will with ``online: false``)."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("v",)
    v: SyncVersion = SYNC_VERSION
    online: bool
    at: IsoTime | None = None
