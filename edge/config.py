"""Per-site TOML configuration: parse, validate, and map to the domain's SiteConfig.

Why this shape: sites are edited by hand by ward-office staff, so every problem is reported at
once, each with the file, line and key to fix (``ConfigError``). Parsing is stdlib ``tomllib``;
per-item validation is pydantic (unknown keys are errors, no silent type coercion); rules that
span items (duplicates, overlapping number ranges, counters naming known services) are checked
here. Locations use 0-based indices, e.g. ``counters[3]`` is the fourth ``[[counters]]`` table.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
import tomllib
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from edge.domain.calendar import Calendar
from edge.domain.model import (
    Counter,
    DeviceSpec,
    Menu,
    Monitor,
    Section,
    Service,
    SiteConfig,
    Text,
    VoiceSpec,
    VoiceZone,
    WebRules,
    Window,
)
from edge.toml_lines import Loc, key_lines, line_of

__all__ = ["ConfigError", "Problem", "load_site_config", "parse_site_config"]

NUMBER_MIN, NUMBER_MAX = 1, 9999  # ticket numbers print as at most four digits
REQUIRED_LANGS = ("ja", "en")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a config file, located as precisely as the text allows."""

    line: int | None
    key: str  # e.g. "counters[3].services[1]"; "" for whole-file problems
    message: str
    loc: Loc = ()

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """A site config that cannot be used; ``str()`` lists every problem, one per line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        first = self.problems[0] if self.problems else Problem(None, "", "invalid")
        self.line: int | None = first.line
        self.key: str = first.key
        super().__init__("\n".join(p.render(source) for p in self.problems))


# --- schema (pydantic) ---------------------------------------------------------------------------


def _names_complete(v: dict[str, str]) -> dict[str, str]:
    missing = [lang for lang in REQUIRED_LANGS if lang not in v]
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)} (need at least {', '.join(REQUIRED_LANGS)})"
        )
    return v


def _zone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (e.g. 'Asia/Tokyo')") from None
    return v


Lang = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Names = Annotated[dict[Lang, NonEmpty], AfterValidator(_names_complete)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_WEEKDAY = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPAN = Annotated[list[Annotated[str, StringConstraints(
    pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]], Field(min_length=2, max_length=2)]


def _network(v: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise ValueError(f"{v!r} is not an address or network, e.g. 192.168.10.0/24") from None
    return v


class _Site(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")]
    name: Names
    timezone: Annotated[str, AfterValidator(_zone)] = "Asia/Tokyo"
    status_url: Annotated[str, AfterValidator(_status_url)] | None = None
    guidance: Names | None = None
    lang_reset_seconds: Annotated[int, Field(ge=10, le=3600)] = 60
    hours: dict[_WEEKDAY, _SPAN] | None = None  # opening hours (W1); a day left out is closed
    # who may use the edge's routes (edge/web/access.py): "staff" (sign-in needed) or "open"
    access: Literal["staff", "open"] = "staff"
    kiosk_addresses: list[Annotated[str, AfterValidator(_network)]] = []

    @field_validator("hours")
    @classmethod
    def _hours_order(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for day, (start, end) in (v or {}).items():
            if start >= end:
                raise ValueError(f"{day}: opening {start} must be before closing {end}")
        return v


def _status_url(v: str) -> str:
    if not re.match(r"^https?://[^\s/]+/\S*$", v) or v.count("{token}") != 1:
        raise ValueError("must be an http(s) URL containing {token} once, "
                         "e.g. 'https://queue.example.jp/t/{token}'")
    return v


_HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class _Web(_Strict):
    """``web = { from = "08:30", to = "17:00", daily_cap = 40, notify_ahead = 3,
    checkin_grace_min = 30 }``; the grace is how long a web ticket whose turn came before its
    holder checked in keeps that turn (``edge/domain/web.py``)."""

    start: _HHMM = Field("08:30", alias="from")
    end: _HHMM = Field("17:00", alias="to")
    daily_cap: Annotated[int, Field(ge=0)] | None = None
    checkin_required: bool = True
    notify_ahead: Annotated[int, Field(ge=1, le=50)] = 3
    checkin_grace_min: Annotated[int, Field(ge=0, le=240)] = 30


class _Service(_Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{0,3}$")]
    name: Names
    range: Annotated[list[int], Field(min_length=2, max_length=2)]
    ticket: Literal["single", "two-part"] = "single"
    kiosk: bool = True
    wrap: bool = True
    handling_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 5.0
    daily_limit: Annotated[int, Field(ge=1)] | None = None
    web: _Web | None = None

    @field_validator("range")
    @classmethod
    def _ordered(cls, v: list[int]) -> list[int]:
        if _range(v) is None:
            raise ValueError(f"need {NUMBER_MIN} <= first <= last <= {NUMBER_MAX}, got {v}")
        return v


class _Counter(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,8}$")]
    name: Names
    services: Annotated[list[str], Field(min_length=1)]
    pin: Annotated[str, StringConstraints(
        pattern=r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")] | None = None
    section: str | None = None


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Window(_Strict):
    days: Annotated[list[Day], Field(min_length=1)] = list(_DAYS)
    start: _HHMM = Field(alias="from")
    end: _HHMM = Field(alias="to")


class _Menu(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    name: Names
    services: Annotated[list[str], Field(min_length=1)]
    guidance: Names | None = None
    schedule: list[_Window] = []
    default: bool = False  # shown outside every schedule (edge/domain/menus.py)
    kiosks: Annotated[list[str], Field(min_length=1)] | None = None  # default: every kiosk


class _Notice(_Strict):
    text: Names


DeviceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
_URL = r"^(usb://[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(\?.*)?|serial:.+|evdev:///.+|tcp://[^/:]+(:\d+)?|file:///.+|sim://.+)$"


def _heads(v: object) -> object:
    """A display's bus address for a counter, or a list of them (the counter on several
    heads)."""
    heads = v if isinstance(v, list) else [v]
    if not heads or any(type(a) is not int or not 0 <= a <= 255 for a in heads):
        raise ValueError(f"give a bus address 0-255 or a list of them (e.g. 3 or [3, 4]), "
                         f"got {v!r} / アドレスは 0-255 の数またはそのリストです")
    return v


class _Device(_Strict):
    id: DeviceId
    kind: Literal["printer", "scanner", "keypad", "display"]
    profile: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]*$")]
    url: Annotated[str, StringConstraints(pattern=_URL)]
    kiosk: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,16}$")] | None = None
    counter: str | None = None
    counters: Annotated[list[str], Field(min_length=1)] | None = None
    addresses: dict[str, Annotated[Any, AfterValidator(_heads)]] | None = None
    section: str | None = None


SectionId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class _Section(_Strict):
    """``[[sections]]``: a 係・所 sharing the site (counters, devices, monitors name it)."""

    id: SectionId
    name: Names
    admin_pcs: Annotated[int, Field(ge=0, le=99)] = 0


class _Monitor(_Strict):
    """``[[monitors]]``: a guide (案内用) or backyard screen; what it shows may be limited."""

    id: DeviceId
    kind: Literal["guide", "backyard"]
    name: Names | None = None
    section: str | None = None
    services: list[str] = []
    counters: list[str] = []


def _output(v: str) -> str:
    if v.startswith("command:"):
        import shlex

        try:
            if not shlex.split(v.removeprefix("command:")):
                raise ValueError("empty command")
        except ValueError as exc:
            raise ValueError(f"bad command ({exc}); e.g. 'command:aplay -q {{file}}'") from None
    return v


class _Zone(_Strict):
    id: DeviceId
    output: Annotated[str, StringConstraints(pattern=r"^(null|file:///.+|command:.+)$"),
                      AfterValidator(_output)] = "null"
    counters: list[str] | None = None
    volume: Annotated[float, Field(ge=0, le=1)] | None = None  # default: [voice] volume


class _Voice(_Strict):
    engine: Literal["auto", "open-jtalk", "espeak-ng", "pyttsx3"] = "auto"
    gender: Literal["female", "male"] = "female"
    volume: Annotated[float, Field(ge=0, le=1)] = 0.8
    chime: bool = True
    languages: Annotated[list[Lang], Field(min_length=1)] = ["ja", "en"]
    recall_repeats: Annotated[int, Field(ge=1, le=5)] = 2
    templates: str | None = None
    zones: list[_Zone] = [_Zone(id="all")]


_MMDD = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


class _Special(_Strict):
    """``{ date = "2026-12-26", from = "09:00", to = "12:00" }``, or ``closed = true``."""

    date: _dt.date
    start: _HHMM | None = Field(None, alias="from")
    end: _HHMM | None = Field(None, alias="to")
    closed: bool = False

    @model_validator(mode="after")
    def _hours_or_closed(self) -> _Special:
        if self.closed == (self.start is not None or self.end is not None):
            raise ValueError("give either from and to, or closed = true")
        if not self.closed and (self.start is None or self.end is None
                                or self.start >= self.end):
            raise ValueError("from must be before to")
        return self


class _Calendar(_Strict):
    """The ward's calendar for this site (edge/domain/calendar.py): national holidays closed,
    the year-end closure (``year_end = ["12-29", "01-03"]``, or ``[]`` for none), the ward's
    closed days, and the site's special days."""

    national_holidays: bool = True
    year_end: Annotated[list[_MMDD], Field(max_length=2)] = ["12-29", "01-03"]
    closed: list[_dt.date] = []
    special: list[_Special] = []

    @field_validator("year_end")
    @classmethod
    def _pair(cls, v: list[str]) -> list[str]:
        if len(v) == 1:
            raise ValueError('give two dates ("12-29", "01-03") or none')
        return v


class _Top(_Strict):
    """Top level only; the items are validated one by one so that one bad item hides nothing."""

    version: Annotated[int, Field(ge=0)] = 0
    site: dict[str, Any]
    services: Annotated[list[Any], Field(min_length=1)]
    counters: Annotated[list[Any], Field(min_length=1)]
    devices: list[Any] = []
    voice: dict[str, Any] | None = None
    menus: list[Any] = []
    notices: list[Any] = []
    calendar: dict[str, Any] | None = None
    sections: list[Any] = []
    monitors: list[Any] = []


# --- validation ----------------------------------------------------------------------------------

M = TypeVar("M", bound=_Strict)


def _key(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pydantic_message(err: ErrorDetails) -> str:
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind == "extra_forbidden":
        return f"unknown key {err['loc'][-1]!r}"
    if kind == "missing":
        return "missing required key"
    if kind in ("model_type", "dict_type"):
        return f"expected a table, got {type(value).__name__}"
    msg = msg.removeprefix("Value error, ")
    if kind != "value_error" and isinstance(value, str | int | float):
        msg += f", got {value!r}"
    return msg


class _Checker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[Loc, int] | None = None  # computed lazily: valid files never need it
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str) -> None:
        if self.lines is None:
            self.lines = key_lines(self.text)
        self.problems.append(Problem(line_of(self.lines, loc), _key(loc), message, loc))

    def model(self, cls: type[M], raw: object, at: Loc) -> M | None:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = (*at, *(p for p in err["loc"] if p != "[key]"))
                self.add(loc, _pydantic_message(err))
            return None


def _each(doc: dict[str, Any], name: str) -> list[tuple[int, object]]:
    raw = doc.get(name)
    return list(enumerate(raw)) if isinstance(raw, list) else []


def _items(doc: dict[str, Any], name: str) -> list[tuple[int, dict[str, Any]]]:
    return [(i, x) for i, x in _each(doc, name) if isinstance(x, dict)]


def _strings(doc: dict[str, Any], name: str, key: str) -> list[tuple[int, str]]:
    return [(i, x[key]) for i, x in _items(doc, name) if isinstance(x.get(key), str)]


def _range(raw: object) -> tuple[int, int] | None:
    if isinstance(raw, list) and len(raw) == 2:
        first, last = raw
        if type(first) is int and type(last) is int and NUMBER_MIN <= first <= last <= NUMBER_MAX:
            return first, last
    return None


def _duplicates(
    c: _Checker, items: Iterable[tuple[int, str]], what: str, at: Loc, leaf: Loc = ()
) -> None:
    seen: dict[str, int] = {}
    for i, value in items:
        if value in seen:
            c.add((*at, i, *leaf), f"duplicate {what} {value!r} (also {_key((*at, seen[value]))})")
        else:
            seen[value] = i


def _cross_check(c: _Checker, doc: dict[str, Any]) -> None:
    """Rules spanning items. They read the raw document, using each field that is well-formed
    even where its item has other problems, so one mistake does not hide another."""
    codes = _strings(doc, "services", "code")
    _duplicates(c, codes, "service code", ("services",), ("code",))
    ranges = [
        (i, x.get("code"), r) for i, x in _items(doc, "services") if (r := _range(x.get("range")))
    ]
    for k, (i, _, (first, last)) in enumerate(ranges):
        for j, other, (o_first, o_last) in ranges[:k]:
            if first <= o_last and o_first <= last:
                c.add(
                    ("services", i, "range"),
                    f"{first}-{last} overlaps services[{j}] {other!r} ({o_first}-{o_last}); "
                    "a number must identify one ticket site-wide",
                )
    _duplicates(c, _strings(doc, "counters", "id"), "counter id", ("counters",), ("id",))
    known = list(dict.fromkeys(code for _, code in codes))
    served: set[str] = set()
    counters, raw_counters = _items(doc, "counters"), doc.get("counters")
    complete = isinstance(raw_counters, list) and len(counters) == len(raw_counters)
    for i, counter in counters:
        lst = counter.get("services")
        complete = complete and isinstance(lst, list)
        refs = [
            (j, x) for j, x in enumerate(lst if isinstance(lst, list) else []) if isinstance(x, str)
        ]
        for j, code in refs:
            if code not in known:
                c.add(
                    ("counters", i, "services", j),
                    f"unknown service {code!r} (known: {', '.join(known)})",
                )
        _duplicates(c, refs, "service", ("counters", i, "services"))
        served.update(code for _, code in refs)
    if complete:  # else an unreadable counter may be the one serving it
        services = dict(_items(doc, "services"))
        for i, code in codes:
            if code not in served:
                transfer_only = services[i].get("kiosk") is False
                how = "reached only by transfer (kiosk = false)" if transfer_only else "issued"
                c.add(("services", i), f"no counter serves {code!r}, yet its tickets are {how}")


_NEEDS = {"printer": "kiosk", "scanner": "counter", "keypad": "counter", "display": "addresses"}


def _check_devices(c: _Checker, doc: dict[str, Any], profiles: Mapping[str, Any] | None,
                   base: Path | None) -> None:
    """Each device names a known profile of its kind, a URL that suits it, and what it serves;
    display addresses fit the profile's range; a voice template file exists."""
    from edge.devices.transport import check_url
    devices = _items(doc, "devices")
    _duplicates(c, _strings(doc, "devices", "id"), "device id", ("devices",), ("id",))
    counters = {x for _, x in _strings(doc, "counters", "id")}
    printers: dict[str, int] = {}
    bus: dict[tuple[str, int], int] = {}
    for i, d in devices:
        kind, at = d.get("kind"), ("devices", i)
        need = _NEEDS.get(kind) if isinstance(kind, str) else None
        allowed: set[str] = set() if need is None else \
            {need, "counters"} if need == "counter" else {need}
        if need == "counter" and "counter" in d and "counters" in d:
            c.add((*at, "counters"), "give either 'counter' or 'counters', not both / "
                  "counter と counters のどちらか一方を指定してください")
        elif need is not None and not any(d.get(k) is not None for k in allowed):
            c.add(at, f"a {kind} needs '{need}' (what it serves)")
        for key in ("kiosk", "counter", "counters", "addresses"):
            if key in d and need is not None and key not in allowed:
                c.add((*at, key), f"'{key}' does not apply to a {kind}")
        if isinstance(d.get("counter"), str) and d["counter"] not in counters:
            c.add((*at, "counter"), f"unknown counter {d['counter']!r}")
        several = d.get("counters")
        ops = [(j, x) for j, x in enumerate(several if isinstance(several, list) else [])
               if isinstance(x, str)]
        for j, cid in ops:
            if cid not in counters:
                c.add((*at, "counters", j), f"unknown counter {cid!r}")
        _duplicates(c, ops, "counter", (*at, "counters"))
        addrs = d.get("addresses")
        for cid, raw in (addrs.items() if isinstance(addrs, dict) else ()):
            if cid not in counters:
                c.add((*at, "addresses", cid), f"unknown counter {cid!r}")
            heads = [raw] if isinstance(raw, int) else raw if isinstance(raw, list) else []
            ints = [a for a in heads if type(a) is int]
            for addr in sorted({a for a in ints if ints.count(a) > 1}):
                c.add((*at, "addresses", cid), f"address {addr} is listed twice / "
                      f"アドレス {addr} が重複しています")
            for addr in dict.fromkeys(ints):
                # the same address twice on one device is one head shared by several counters
                # (it shows the latest call); on another device of the same line it is a clash
                slot = (str(d.get("url")), addr)
                if slot in bus and bus[slot] != i:
                    c.add((*at, "addresses", cid), f"address {addr} on {slot[0]} is already "
                          f"used by devices[{bus[slot]}]")
                else:
                    bus.setdefault(slot, i)
        if kind == "printer" and isinstance(d.get("kiosk"), str):
            if d["kiosk"] in printers:
                c.add((*at, "kiosk"), f"kiosk {d['kiosk']!r} already has a printer "
                      f"(devices[{printers[d['kiosk']]}])")
            printers.setdefault(d["kiosk"], i)
        url = d.get("url")
        if isinstance(url, str) and isinstance(kind, str) and kind in _NEEDS:
            problem = check_url(url, kind)
            if problem:
                c.add((*at, "url"), problem)
        prof = d.get("profile")
        if profiles is not None and isinstance(prof, str):
            p = profiles.get(prof)
            if p is None:
                c.add((*at, "profile"), f"unknown profile {prof!r} "
                      "(see `madoguchi profiles check` for the list)")
            elif isinstance(kind, str) and p.kind != kind:
                c.add((*at, "profile"), f"{prof!r} is a {p.kind} profile, not a {kind}")
            elif kind == "display" and isinstance(addrs, dict):
                for cid, raw in addrs.items():
                    for addr in [raw] if isinstance(raw, int) else \
                            raw if isinstance(raw, list) else []:
                        if type(addr) is int and not p.address_min <= addr <= p.address_max:
                            c.add((*at, "addresses", cid), f"address {addr} is outside "
                                  f"{p.address_min}-{p.address_max} of {prof!r}")
    voice = doc.get("voice")
    templates = voice.get("templates") if isinstance(voice, dict) else None
    if isinstance(templates, str) and base is not None:
        path = Path(templates) if Path(templates).is_absolute() else base / templates
        if not path.is_file():
            c.add(("voice", "templates"), f"no such file: {path}")
    zones = voice.get("zones") if isinstance(voice, dict) else None
    for i, z in enumerate(zones if isinstance(zones, list) else []):
        refs = z.get("counters") if isinstance(z, dict) else None
        for j, cid in enumerate(refs if isinstance(refs, list) else []):
            if isinstance(cid, str) and cid not in counters:
                c.add(("voice", "zones", i, "counters", j), f"unknown counter {cid!r}")


def _check_sections(c: _Checker, doc: dict[str, Any]) -> None:
    """Sections (係・所): unique ids; once a file has any, every counter, device and monitor
    names one (so each piece of hardware is counted for exactly one section), and it names a
    known one. A keypad or scanner operates counters of its own section only. Monitors show
    known services and counters; their ids are unique."""
    sections = _strings(doc, "sections", "id")
    _duplicates(c, sections, "section id", ("sections",), ("id",))
    known = list(dict.fromkeys(sid for _, sid in sections))
    has_sections = bool(_each(doc, "sections"))
    counter_section = {x["id"]: x.get("section") for _, x in _items(doc, "counters")
                       if isinstance(x.get("id"), str)}
    for table in ("counters", "devices", "monitors"):
        for i, item in _items(doc, table):
            sid = item.get("section")
            if sid is None and has_sections:
                c.add((table, i), "missing 'section': this file has [[sections]], so every "
                      f"{table[:-1]} names its section / [[sections]] があるため section の指定が"
                      "必要です")
            elif isinstance(sid, str) and sid not in known:
                c.add((table, i, "section"), f"unknown section {sid!r} (known: "
                      f"{', '.join(known) or 'none, add [[sections]]'}) / 未定義の係・所です")
    for i, d in _items(doc, "devices"):
        if d.get("kind") not in ("keypad", "scanner") or not isinstance(d.get("section"), str):
            continue
        raw = d.get("counters")
        ops: list[object] = raw if isinstance(raw, list) else [d.get("counter")]
        for j, cid in enumerate(ops):
            other = counter_section.get(cid) if isinstance(cid, str) else None
            if other is not None and other != d["section"]:
                where: Loc = ("devices", i, "counters", j) if isinstance(raw, list) \
                    else ("devices", i, "counter")
                c.add(where, f"counter {cid!r} belongs to section {other!r}, this device to "
                      f"{d['section']!r} / 別の係・所の窓口は操作できません")
    _duplicates(c, _strings(doc, "monitors", "id"), "monitor id", ("monitors",), ("id",))
    codes = {x for _, x in _strings(doc, "services", "code")}
    for i, m in _items(doc, "monitors"):
        for name, valid, what in (("services", codes, "service"),
                                  ("counters", set(counter_section), "counter")):
            lst = m.get(name)
            for j, ref in enumerate(lst if isinstance(lst, list) else []):
                if isinstance(ref, str) and ref not in valid:
                    c.add(("monitors", i, name, j), f"unknown {what} {ref!r}")


def _kiosk_ids(doc: dict[str, Any]) -> list[str]:
    """The site's kiosks: the ``kiosk`` of its printers, in file order."""
    return list(dict.fromkeys(
        d["kiosk"] for _, d in _items(doc, "devices")
        if d.get("kind") == "printer" and isinstance(d.get("kiosk"), str)))


def _window(raw: object) -> Window | None:
    """A schedule window from the raw document, or None if it is not well-formed (the
    schema reports that)."""
    if not isinstance(raw, dict):
        return None
    days, start, end = raw.get("days", list(_DAYS)), raw.get("from"), raw.get("to")
    hhmm = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
    if not (isinstance(start, str) and isinstance(end, str) and hhmm.match(start)
            and hhmm.match(end) and start < end and isinstance(days, list) and days
            and all(d in _DAYS for d in days)):
        return None
    return Window(tuple(_DAYS.index(d) for d in days), start, end)


def _check_menu_choice(c: _Checker, doc: dict[str, Any]) -> None:
    """At any moment exactly one menu applies: one default when there are several menus
    (shown outside every schedule), and no minute scheduled for two menus."""
    from edge.domain.menus import overlap

    everything = _items(doc, "menus")
    kiosks = _kiosk_ids(doc)
    per_kiosk = any(isinstance(m.get("kiosks"), list) for _, m in everything)
    groups: list[tuple[str | None, list[tuple[int, dict[str, Any]]]]] = [(None, everything)]
    if per_kiosk:  # the rules hold for each kiosk's own menus (a menu without kiosks: all)
        groups = [(k, [(i, m) for i, m in everything
                       if not isinstance(m.get("kiosks"), list) or k in m["kiosks"]])
                  for k in kiosks]
    reported: set[Loc] = set()

    def add(loc: Loc, message: str) -> None:
        if loc not in reported:  # a menu shared by several kiosks is reported once
            reported.add(loc)
            c.add(loc, message)

    for kiosk, menus in groups:
        at = "" if kiosk is None else f" at kiosk {kiosk!r}"
        marked = [i for i, m in menus if m.get("default") is True]
        for i in marked[1:]:
            add(("menus", i, "default"), f"menus[{marked[0]}] is already the default menu{at}; "
                "only one menu can be shown outside the schedules")
        if not marked and len(menus) > 1:
            add(("menus", menus[0][0]), f"{len(menus)} menus{at} and none is the default: add "
                "default = true to the one shown outside every schedule (nights, closed days)")
        if kiosk is not None and not menus:
            add(("menus",), f"kiosk {kiosk!r} has no menu: list it in some menu's kiosks, or "
                "leave kiosks out of one menu / この発券機のメニューがありません")
        windows = [(i, j, w, m.get("id")) for i, m in menus
                   for j, raw in enumerate(m.get("schedule") or [])
                   if isinstance(m.get("schedule"), list) and (w := _window(raw)) is not None]
        for k, (i, j, w, _) in enumerate(windows):
            for oi, oj, ow, oid in windows[:k]:
                if oi != i and overlap(w, ow):
                    days = ", ".join(_DAYS[d] for d in sorted(set(w.days) & set(ow.days)))
                    add(("menus", i, "schedule", j),
                        f"{w.start}-{w.end} overlaps menus[{oi}].schedule[{oj}] {oid!r} "
                        f"({ow.start}-{ow.end}) on {days}{at}: a moment can show only one menu")


def _check_menus(c: _Checker, doc: dict[str, Any]) -> None:
    """Menus name kiosk services; their windows are not empty."""
    _duplicates(c, _strings(doc, "menus", "id"), "menu id", ("menus",), ("id",))
    _check_menu_choice(c, doc)
    issuable = {x.get("code") for _, x in _items(doc, "services") if x.get("kiosk", True)}
    kiosks = _kiosk_ids(doc)
    for i, menu in _items(doc, "menus"):
        listed = menu.get("kiosks")
        refs = [(j, x) for j, x in enumerate(listed if isinstance(listed, list) else [])
                if isinstance(x, str)]
        for j, k in refs:
            if k not in kiosks:
                c.add(("menus", i, "kiosks", j), f"unknown kiosk {k!r} (known: "
                      f"{', '.join(kiosks) or 'none: no printer names a kiosk'}) / "
                      "未定義の発券機です")
        _duplicates(c, refs, "kiosk", ("menus", i, "kiosks"))
        lst = menu.get("services")
        for j, code in enumerate(lst if isinstance(lst, list) else []):
            if isinstance(code, str) and code not in issuable:
                c.add(("menus", i, "services", j),
                      f"{code!r} is not a service issued at the kiosk")
        sched = menu.get("schedule")
        for j, w in enumerate(sched if isinstance(sched, list) else []):
            if isinstance(w, dict) and isinstance(w.get("from"), str) \
                    and isinstance(w.get("to"), str) and w["from"] >= w["to"]:
                c.add(("menus", i, "schedule", j), f"'from' {w['from']} must be before "
                      f"'to' {w['to']}")


def _build_menus(menus: list[_Menu]) -> dict[str, Menu]:
    return {m.id: Menu(
        m.id, Text(dict(m.name)), tuple(m.services),
        None if m.guidance is None else Text(dict(m.guidance)),
        tuple(Window(tuple(_DAYS.index(d) for d in w.days), w.start, w.end) for w in m.schedule),
        default=m.default or len(menus) == 1,
        kiosks=None if m.kiosks is None else tuple(m.kiosks),
    ) for m in menus}


def _pairs(addresses: dict[str, int | list[int]] | None) -> tuple[tuple[str, int], ...]:
    """``{"1" = [1, 2], "2" = 2}`` -> ``(("1", 1), ("1", 2), ("2", 2))``, by address."""
    flat = [(cid, a) for cid, raw in (addresses or {}).items()
            for a in dict.fromkeys([raw] if isinstance(raw, int) else raw)]
    return tuple(sorted(flat, key=lambda kv: kv[1]))


def _build_devices(devices: list[_Device]) -> tuple[DeviceSpec, ...]:
    return tuple(
        DeviceSpec(d.id, d.kind, d.profile, d.url, kiosk=d.kiosk,
                   counter=d.counter if d.counters is None else d.counters[0],
                   addresses=_pairs(d.addresses), section=d.section,
                   counters=() if d.counters is None else tuple(d.counters))
        for d in devices
    )


def _build_voice(v: _Voice | None, base: Path | None) -> VoiceSpec | None:
    if v is None:
        return None
    templates = v.templates
    if templates is not None and base is not None and not Path(templates).is_absolute():
        templates = str(base / templates)
    return VoiceSpec(
        engine=v.engine, gender=v.gender, volume=v.volume, chime=v.chime,
        languages=tuple(v.languages), recall_repeats=v.recall_repeats, templates=templates,
        zones=tuple(VoiceZone(z.id, z.output, None if z.counters is None else tuple(z.counters),
                              z.volume) for z in v.zones),
    )


def _build(
    top: _Top, site: _Site, services: list[_Service], counters: list[_Counter],
    devices: list[_Device], voice: _Voice | None, base: Path | None,
    menus: list[_Menu], notices: list[_Notice], sections: list[_Section],
    monitors: list[_Monitor],
) -> SiteConfig:
    extra: dict[str, Any] = {}
    if site.status_url is not None:
        extra["status_url"] = site.status_url
    return SiteConfig(
        devices=_build_devices(devices),
        voice=_build_voice(voice, base),
        guidance=None if site.guidance is None else Text(dict(site.guidance)),
        lang_reset_s=site.lang_reset_seconds,
        hours=None if site.hours is None else {
            _DAYS.index(d): (span[0], span[1]) for d, span in site.hours.items()},
        menus=_build_menus(menus),
        notices=tuple(Text(dict(n.text)) for n in notices),
        **extra,
        site=site.id,
        name=Text(dict(site.name)),
        timezone=site.timezone,
        access=site.access,
        kiosk_networks=tuple(site.kiosk_addresses),
        services={
            s.code: Service(
                code=s.code,
                name=Text(dict(s.name)),
                first=s.range[0],
                last=s.range[1],
                ticket=s.ticket,
                kiosk=s.kiosk,
                wrap=s.wrap,
                handling_s=s.handling_minutes * 60.0,
                daily_limit=s.daily_limit,
                web=None if s.web is None else WebRules(
                    s.web.start, s.web.end, s.web.daily_cap, s.web.checkin_required,
                    s.web.notify_ahead, s.web.checkin_grace_min),
            )
            for s in services
        },
        counters={k.id: Counter(k.id, Text(dict(k.name)), tuple(k.services), k.pin, k.section)
                  for k in counters},
        sections={s.id: Section(s.id, Text(dict(s.name)), s.admin_pcs) for s in sections},
        monitors=tuple(Monitor(m.id, m.kind, m.section,
                               None if m.name is None else Text(dict(m.name)),
                               tuple(m.services), tuple(m.counters)) for m in monitors),
        version=top.version,
    )


_TOML_POS = re.compile(r"\s*\(at line (\d+), column \d+\)$")


def parse_site_config(text: str, source: str = "<string>", *,
                      profiles: Mapping[str, Any] | None = None,
                      base: Path | None = None) -> SiteConfig:
    """Parse and validate one site's TOML text; raise ConfigError listing every problem.

    ``profiles`` (id -> hardware profile) lets devices be checked against them; ``base`` is
    the folder relative paths (voice templates) are resolved against.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        msg = f"invalid TOML: {_TOML_POS.sub('', str(exc))}"
        raise ConfigError(source, [Problem(int(m.group(1)) if m else None, "", msg)]) from None
    c = _Checker(text)
    top = c.model(_Top, doc, ())
    site = c.model(_Site, doc["site"], ("site",)) if isinstance(doc.get("site"), dict) else None
    services = [c.model(_Service, raw, ("services", i)) for i, raw in _each(doc, "services")]
    counters = [c.model(_Counter, raw, ("counters", i)) for i, raw in _each(doc, "counters")]
    devices = [c.model(_Device, raw, ("devices", i)) for i, raw in _each(doc, "devices")]
    voice = c.model(_Voice, doc["voice"], ("voice",)) if isinstance(doc.get("voice"), dict) \
        else None
    menus = [c.model(_Menu, raw, ("menus", i)) for i, raw in _each(doc, "menus")]
    notices = [c.model(_Notice, raw, ("notices", i)) for i, raw in _each(doc, "notices")]
    sections = [c.model(_Section, raw, ("sections", i)) for i, raw in _each(doc, "sections")]
    monitors = [c.model(_Monitor, raw, ("monitors", i)) for i, raw in _each(doc, "monitors")]
    cal = c.model(_Calendar, doc["calendar"], ("calendar",)) \
        if isinstance(doc.get("calendar"), dict) else _Calendar()
    _cross_check(c, doc)
    _check_devices(c, doc, profiles, base)
    _check_menus(c, doc)
    _check_sections(c, doc)
    if c.problems or top is None or site is None or cal is None:
        raise ConfigError(source, c.problems)
    config = _build(top, site, [s for s in services if s], [k for k in counters if k],
                    [d for d in devices if d], voice, base, [m for m in menus if m],
                    [n for n in notices if n], [s for s in sections if s],
                    [m for m in monitors if m])
    return dataclasses.replace(config, calendar=_build_calendar(cal))


def _build_calendar(cal: _Calendar) -> Calendar:
    def md(text: str) -> tuple[int, int]:
        month, day_ = text.split("-")
        return int(month), int(day_)

    return Calendar(
        national_holidays=cal.national_holidays,
        year_end=(md(cal.year_end[0]), md(cal.year_end[1])) if cal.year_end else None,
        closed=frozenset(cal.closed),
        special={s.date: None if s.closed else (str(s.start), str(s.end)) for s in cal.special},
    )


def load_site_config(path: str | os.PathLike[str]) -> SiteConfig:
    """Read and validate a site TOML file (UTF-8, a BOM from Windows editors is tolerated)."""
    source = os.fspath(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            source, [Problem(None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [Problem(None, "", f"not UTF-8: {exc.reason}")]) from None
    return parse_site_config(text, source, profiles=_profiles(),
                             base=Path(path).resolve().parent)


def _profiles() -> Mapping[str, Any]:
    """Known hardware profiles, so that a typo in a device's profile fails the config check."""
    from edge.devices.profile_store import ProfileError, load_collated, profiles_from_collated

    try:
        return profiles_from_collated(load_collated())
    except ProfileError as exc:  # broken profiles are `profiles check`'s business, not ours
        raise ConfigError("firmware-profiles", [Problem(None, "", str(exc))]) from None
