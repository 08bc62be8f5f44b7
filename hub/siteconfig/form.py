"""The settings editor's form: which parts of a site TOML staff edit, how each is shown as an
HTML field, and how a submitted form is written back into the TOML. Pure: no aiohttp, no store.

Why the field names are the config checker's keys (``services[2].range[0]``,
``site.guidance.ja``): ``madoguchi config check`` already locates every problem by that key
(``edge.config.Problem.key``), so the editor shows each problem at its field by matching names,
with the very same rules as the command line; there is no second validator to drift.

Why tomlkit edits the live text in place instead of writing a new file: the site TOML carries
the staff's comments and layout (and keys the editor does not show, such as PIN hashes and
device addresses); a publish from the editor changes the edited values and nothing else, so the
diff staff see is exactly their edit.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

import tomlkit
from tomlkit.items import AoT, InlineTable, Table

Kind = Literal["text", "int", "float", "select", "bool", "codes", "pair", "schedule", "dates",
               "toggle", "time"]
LANGS = ("ja", "en", "zh", "ko")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Spec:
    """One editable value of a row. ``key``: the dotted path inside the row (``name.ja``,
    ``web.from``); ``label``: a text key of the module's catalogue; ``under``: the toggle key
    (``web``) whose box must be ticked for this field to count."""

    key: str
    kind: Kind
    label: str
    options: tuple[str, ...] = ()
    under: str | None = None
    wide: bool = False


def _names(prefix: str, label: str) -> tuple[Spec, ...]:
    return tuple(Spec(f"{prefix}.{lang}", "text", f"{label}_{lang}", wide=True) for lang in LANGS)


SITE: tuple[Spec, ...] = (
    *_names("name", "site_name"),
    *_names("guidance", "guidance"),
    *(Spec(f"hours.{d}", "pair", f"day_{d}") for d in DAYS),
    Spec("lang_reset_seconds", "int", "lang_reset_seconds"),
)
SERVICE: tuple[Spec, ...] = (
    Spec("code", "text", "service_code"),
    *_names("name", "service_name"),
    Spec("range", "pair", "range"),
    Spec("ticket", "select", "ticket", ("single", "two-part")),
    Spec("kiosk", "bool", "on_kiosk"),
    Spec("handling_minutes", "float", "handling_minutes"),
    Spec("daily_limit", "int", "daily_limit"),
    Spec("web", "toggle", "web_on"),
    Spec("web.from", "time", "web_from", under="web"),
    Spec("web.to", "time", "web_to", under="web"),
    Spec("web.daily_cap", "int", "web_daily_cap", under="web"),
    Spec("web.checkin_required", "bool", "web_checkin_required", under="web"),
    Spec("web.notify_ahead", "int", "web_notify_ahead", under="web"),
)
COUNTER: tuple[Spec, ...] = (
    Spec("id", "text", "counter_id"),
    *_names("name", "counter_name"),
    Spec("services", "codes", "counter_services"),
)
MENU: tuple[Spec, ...] = (
    Spec("id", "text", "menu_id"),
    *_names("name", "menu_name"),
    Spec("services", "codes", "menu_services"),
    *_names("guidance", "menu_guidance"),
    Spec("schedule", "schedule", "menu_schedule", wide=True),
    Spec("default", "bool", "menu_default"),
)
NOTICE: tuple[Spec, ...] = _names("text", "notice_text")
DEVICE: tuple[Spec, ...] = (
    Spec("profile", "text", "device_profile"),
    Spec("url", "text", "device_url", wide=True),
)
VOICE: tuple[Spec, ...] = (
    Spec("engine", "select", "voice_engine", ("auto", "open-jtalk", "espeak-ng", "pyttsx3")),
    Spec("gender", "select", "voice_gender", ("female", "male")),
    Spec("volume", "float", "voice_volume"),
    Spec("chime", "bool", "voice_chime"),
    Spec("languages", "codes", "voice_languages"),
    Spec("recall_repeats", "int", "voice_recall_repeats"),
)
CALENDAR: tuple[Spec, ...] = (
    Spec("national_holidays", "bool", "national_holidays"),
    Spec("closed", "dates", "closed_days", wide=True),
)


@dataclass(frozen=True)
class Part:
    """One part of the TOML: a table (``site``) or an array of tables (``services``).
    ``rows``: staff may add and remove rows; ``optional``: a table shown only if present."""

    name: str
    specs: tuple[Spec, ...]
    array: bool = False
    rows: bool = False
    optional: bool = False


PARTS: tuple[Part, ...] = (
    Part("site", SITE),
    Part("services", SERVICE, array=True, rows=True),
    Part("counters", COUNTER, array=True, rows=True),
    Part("menus", MENU, array=True, rows=True),
    Part("notices", NOTICE, array=True, rows=True),
    Part("voice", VOICE, optional=True),
    Part("calendar", CALENDAR),
    Part("devices", DEVICE, array=True),
)
PART = {p.name: p for p in PARTS}


# --- paths ------------------------------------------------------------------------------------

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split(key: str) -> Path:
    """``services[2].name.ja`` -> ``("services", 2, "name", "ja")``."""
    return tuple(int(i) if i else str(k) for k, i in _STEP.findall(key))


def join(path: Path) -> str:
    """The checker's key syntax (``edge.config._key``): ``services[2].name.ja``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def get(node: Any, path: Path) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


# --- showing values ---------------------------------------------------------------------------

def _day_span(days: list[Any]) -> str:
    if days == list(DAYS):
        return ""
    idx = [DAYS.index(d) for d in days if d in DAYS]
    if len(idx) == len(days) and len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{DAYS[idx[0]]}-{DAYS[idx[-1]]} "
    return ",".join(str(d) for d in days) + " "


def show(spec: Spec, value: Any) -> str | list[str] | bool:
    """The value as the field shows it (a pair as two strings, a box as a bool)."""
    if spec.kind in ("bool", "toggle"):
        return value is not None and value is not False if spec.kind == "toggle" \
            else value is True
    if spec.kind == "pair":
        pair = list(value) if isinstance(value, list) else []
        return [str(pair[0]) if len(pair) > 0 else "", str(pair[1]) if len(pair) > 1 else ""]
    if value is None:
        return spec.options[0] if spec.kind == "select" else ""
    if spec.kind == "codes":
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if spec.kind == "dates":
        return "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if spec.kind == "schedule":
        lines = []
        for w in value if isinstance(value, list) else [value]:
            if isinstance(w, Mapping):
                days = w.get("days", list(DAYS))
                days = days if isinstance(days, list) else [days]
                lines.append(f"{_day_span(days)}{w.get('from', '')}-{w.get('to', '')}")
            else:
                lines.append(str(w))
        return "\n".join(lines)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- reading a submitted value ----------------------------------------------------------------

_INT = re.compile(r"^[+-]?\d{1,9}$")
_FLOAT = re.compile(r"^[+-]?(\d{1,9}(\.\d*)?|\.\d+)$")
_WINDOW = re.compile(r"^(?:(?P<days>[a-z,\-\s]+?)\s+)?(?P<from>\d{1,2}:\d{2})\s*[-~〜～]\s*"
                     r"(?P<to>\d{1,2}:\d{2})$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９：，、－　", "0123456789:,,- ")
_MISSING = object()  # "leave the key out"


def _days(text: str) -> list[str] | str:
    out: list[str] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        if "-" in part:
            a, _, b = part.partition("-")
            if a not in DAYS or b not in DAYS or DAYS.index(a) > DAYS.index(b):
                return text
            out.extend(DAYS[DAYS.index(a):DAYS.index(b) + 1])
        elif part in DAYS:
            out.append(part)
        else:
            return text
    return out


def parse(spec: Spec, raw: str | list[str]) -> Any:
    """A submitted value as the TOML value to write, ``_MISSING`` for "no value". What cannot be
    read is written as the text typed (a string), so the checker reports it at its key with the
    checker's rule, and the form shows the text back as typed."""
    if spec.kind == "pair":
        a, b = [*raw, "", ""][:2] if isinstance(raw, list) else (raw, "")
        a, b = a.translate(_FULLWIDTH).strip(), b.translate(_FULLWIDTH).strip()
        if not a and not b:
            return _MISSING
        if spec.key == "range":
            return [int(x) if _INT.match(x) else x for x in (a, b)]
        return [a, b]
    text = (raw if isinstance(raw, str) else "").strip()
    if spec.kind in ("int", "float"):
        text = text.translate(_FULLWIDTH).strip()
        if not text:
            return _MISSING
        if spec.kind == "int":
            return int(text) if _INT.match(text) else text
        if _INT.match(text):  # "8" stays the integer the file had, not 8.0
            return int(text)
        return float(text) if _FLOAT.match(text) else text
    if spec.kind == "time":
        text = text.translate(_FULLWIDTH).strip()
        return text or _MISSING
    if spec.kind == "codes":
        items = [x for x in re.split(r"[,、\s]+", text.translate(_FULLWIDTH)) if x]
        return items or _MISSING
    if spec.kind == "dates":
        out: list[Any] = []
        for line in re.split(r"[\n,]+", text.translate(_FULLWIDTH)):
            line = line.strip().replace("/", "-")
            if not line:
                continue
            try:
                out.append(_dt.date.fromisoformat(line))
            except ValueError:
                out.append(line)
        return out or _MISSING
    if spec.kind == "schedule":
        windows: list[Any] = []
        for line in text.translate(_FULLWIDTH).splitlines():
            line = line.strip().lower()
            if not line:
                continue
            m = _WINDOW.match(line)
            if m is None:
                windows.append(line)
                continue
            win: dict[str, Any] = {}
            if m.group("days"):
                win["days"] = _days(m.group("days"))
            win["from"] = m.group("from").zfill(5)
            win["to"] = m.group("to").zfill(5)
            windows.append(win)
        return windows or _MISSING
    return text or _MISSING


# --- writing into the document ------------------------------------------------------------------

def _tomlish(value: Any) -> Any:
    """Dicts as inline tables (``name = { ja = "…" }``), as the sample files write them."""
    if isinstance(value, dict):
        t = tomlkit.inline_table()
        for k, v in value.items():
            t[k] = _tomlish(v)
        return t
    if isinstance(value, list):
        arr = tomlkit.array()
        arr.extend(_tomlish(v) for v in value)
        return arr
    return value


def put(node: Any, path: Path, value: Any) -> None:
    """Set (or, for ``_MISSING``, remove) ``path`` under a table, making inline tables on the
    way; an emptied inline table is removed too."""
    *head, last = path
    parents: list[tuple[Any, str | int]] = []
    for step in head:
        nxt = node.get(step) if isinstance(node, Mapping) else None
        if not isinstance(nxt, Mapping):
            if value is _MISSING:
                return
            nxt = tomlkit.inline_table()
            node[step] = nxt
            nxt = node[step]
        parents.append((node, step))
        node = nxt
    if value is _MISSING:
        if isinstance(node, MutableMapping) and last in node:
            del node[last]
        for parent, step in reversed(parents):
            child = parent[step]
            if isinstance(child, InlineTable) and not child:
                del parent[step]
        return
    old = node.get(last) if isinstance(node, Mapping) else None
    if _same(old, value):
        return  # untouched: keep the text exactly as written (inline layout, comments)
    node[last] = _tomlish(value)


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _same(old: Any, new: Any) -> bool:
    return old is not None and _plain(old) == new and type(_plain(old)) is type(new)


@dataclass
class Submitted:
    """A parsed form: per part, its rows (each: the row's index in the live document or None
    for a new row, and the raw field values by spec key); the rows asked to be removed."""

    rows: dict[str, list[tuple[int | None, dict[str, str | list[str]]]]] = \
        field(default_factory=dict)
    removed: dict[str, set[int]] = field(default_factory=dict)


def read_form(form: Mapping[str, list[str]]) -> Submitted:
    """From the posted fields (name -> every value given, in order). Row ``i`` of part
    ``services`` posts ``services[i]._from`` (its live index, or ``new``), ``services[i]._remove``
    when ticked, and its fields as ``services[i].<key>`` (pairs as ``…[0]`` and ``…[1]``;
    boxes as a hidden ``0`` followed by ``1`` when ticked)."""
    out = Submitted()
    for part in PARTS:
        prefixes: list[tuple[str, int | None]] = []  # (row prefix, its index in the draft)
        if part.array:
            if f"{part.name}._count" not in form:
                continue  # a part not on the page: the draft keeps it as it is
            count = _count(form, f"{part.name}._count")
            for i in range(count):
                given = _last(form, f"{part.name}[{i}]._from")
                if given is None:
                    continue
                prefixes.append((f"{part.name}[{i}]", int(given) if given.isdigit() else None))
                if _last(form, f"{part.name}[{i}]._remove") == "1":
                    out.removed.setdefault(part.name, set()).add(i)
        elif _last(form, f"{part.name}._shown") == "1":
            prefixes.append((part.name, 0))
        else:
            continue
        rows = out.rows.setdefault(part.name, [])
        for prefix, origin in prefixes:
            values: dict[str, str | list[str]] = {}
            for spec in part.specs:
                name = f"{prefix}.{spec.key}"
                if spec.kind == "pair":
                    values[spec.key] = [_last(form, f"{name}[0]") or "",
                                        _last(form, f"{name}[1]") or ""]
                elif spec.kind in ("bool", "toggle"):
                    values[spec.key] = "1" if "1" in form.get(name, []) else ""
                else:
                    values[spec.key] = _last(form, name) or ""
            rows.append((origin, values))
    return out


def _last(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[-1] if values else None


def _count(form: Mapping[str, list[str]], name: str) -> int:
    raw = _last(form, name) or "0"
    return min(int(raw), 500) if raw.isdigit() else 0


def _apply_row(table: Any, part: Part, values: Mapping[str, str | list[str]]) -> None:
    toggles = {s.key: values.get(s.key) == "1" for s in part.specs if s.kind == "toggle"}
    for spec in part.specs:
        if spec.key not in values:
            continue
        path = split(spec.key)
        if spec.kind == "toggle":
            if not toggles[spec.key]:
                put(table, path, _MISSING)
            elif not isinstance(table.get(spec.key), Mapping):
                table[spec.key] = tomlkit.inline_table()
            continue
        if spec.under is not None and not toggles.get(spec.under, False):
            continue
        if spec.kind == "bool":
            old = get(table, path)
            ticked = values[spec.key] == "1"
            # an unticked box whose key is absent stays absent (the default applies)
            put(table, path, ticked if ticked or old is not None else _MISSING)
            continue
        value = parse(spec, values[spec.key])
        if spec.kind == "select" and value == spec.options[0] and get(table, path) is None:
            continue  # the default shown as chosen stays implicit: an untouched form is a no-op
        put(table, path, value)


def apply(text: str, submitted: Submitted) -> str:
    """The live TOML ``text`` with the submitted values written in (tomlkit keeps everything
    else: comments, order, keys the editor does not show). Rows: kept rows in the submitted
    order, removed rows dropped, new rows appended."""
    doc = tomlkit.parse(text)
    for part in PARTS:
        rows = submitted.rows.get(part.name)
        if rows is None or (not rows and not part.array):
            continue  # not on the page that was posted
        if not part.array:
            if part.name in doc:
                _apply_row(doc[part.name], part, rows[0][1])
            elif not part.optional:
                table = tomlkit.table()
                _apply_row(table, part, rows[0][1])
                if table:  # only when something was entered: defaults stay implicit
                    doc[part.name] = table
            continue
        live = doc.get(part.name)
        old = list(live) if isinstance(live, (AoT, list)) else []
        removed = submitted.removed.get(part.name, set())
        kept: list[Any] = []
        for i, (origin, values) in enumerate(rows):
            if i in removed:
                continue
            table = old[origin] if origin is not None and origin < len(old) else tomlkit.table()
            _apply_row(table, part, values)
            kept.append(table)
        if [id(t) for t in kept] == [id(t) for t in old]:
            continue  # same rows in the same order: edited in place
        if part.name in doc:
            del doc[part.name]
        if kept:
            aot = tomlkit.aot()
            for table in kept:
                aot.append(table if isinstance(table, Table) else tomlkit.item(table))
            doc.append(part.name, aot)
    return tomlkit.dumps(doc)


def blank_row(part: Part) -> dict[str, Any]:
    """A new row's starting values (shown; written only when published)."""
    return {"name": {}} if part.name in ("services", "counters", "menus") else {}
