"""The statistics page's form (pure): query parameters → a checked ``Scope`` and the export's
choices, or ``FieldError(field, code)`` naming the field at fault (the page shows the message
there, with status 400; never a 500).

Why apart from the routes: the page, the CSV export and the tests read the same parameters the
same way, and what a session may see (its sites) is applied here, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from hub.stats import periods
from hub.stats.columns import CATALOGUE, DEFAULT_COLUMNS, ColumnError, validate
from hub.stats.export import ENCODINGS, Encoding
from hub.stats.periods import PeriodError
from hub.stats.report import DIMS, Scope, ScopeError

GROUPS = DIMS
LIMITS = {"service": 8, "counter": 16, "staff": 64}


class FieldError(ValueError):
    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field, self.code = field, code


@dataclass
class Form:
    """The form as given (text), so a refused form is shown again as it was typed."""

    kind: str = "fy"
    value: str = ""
    start: str = ""
    end: str = ""
    sites: list[str] = field(default_factory=list)
    group: str = "month"
    by: str = ""
    service: str = ""
    counter: str = ""
    staff: str = ""
    set: str = "default"
    cols: str = ""
    encoding: str = "utf-8-sig"
    headers: str = "ja"

    def params(self) -> list[tuple[str, str]]:
        """The report's query parameters (for links that keep the report as it is)."""
        out = [("kind", self.kind), ("value", self.value), ("start", self.start),
               ("end", self.end), *(("site", s) for s in self.sites), ("group", self.group),
               ("by", self.by), ("service", self.service), ("counter", self.counter),
               ("staff", self.staff)]
        return [(k, v) for k, v in out if v]


def read(query: Mapping[str, str], sites: Sequence[str], today: date) -> Form:
    """The form from ``query`` (a MultiDict's ``getall`` for ``site`` is passed as ``sites``),
    with today's fiscal year and a grouping by month where nothing is chosen."""
    def get(name: str, default: str = "", limit: int = 64) -> str:
        return str(query.get(name, default))[:limit].strip()

    form = Form(kind=get("kind", "fy"), value=get("value"), start=get("start"),
                end=get("end"), sites=[s[:64] for s in sites][:100],
                group=get("group", "month"), by=get("by"), service=get("service", "", 200),
                counter=get("counter", "", 200), staff=get("staff", "", 200),
                set=get("set", "default"), cols=get("cols", "", 4000),
                encoding=get("encoding", "utf-8-sig"), headers=get("headers", "ja"))
    if not form.value and form.kind == "fy":
        form.value = str(periods.fiscal_year(today))
    elif not form.value and form.kind in ("day", "week", "month"):
        form.value = {"day": today.isoformat(), "week": periods.week_key(today),
                      "month": periods.month_key(today)}[form.kind]
    return form


def scope(form: Form, allowed: set[str] | None, known: Sequence[str]) -> Scope:
    """The ``Scope`` the form asks for, within ``allowed`` sites (None: every site).
    No site chosen: every site the session may see."""
    try:
        period = periods.parse(form.kind, form.value, form.start, form.end)
    except PeriodError as exc:
        raise FieldError(exc.field, exc.code) from None
    for s in form.sites:
        if s not in known or (allowed is not None and s not in allowed):
            raise FieldError("site", "bad_site")
    chosen: frozenset[str] | None
    if form.sites:
        chosen = frozenset(form.sites)
    else:
        chosen = None if allowed is None else frozenset(allowed)
    if form.group not in GROUPS:
        raise FieldError("group", "bad_group")
    if form.by and (form.by not in GROUPS or form.by == form.group):
        raise FieldError("by", "bad_group")
    filters: dict[str, str | None] = {}
    for name, limit in LIMITS.items():
        text = getattr(form, name)
        if len(text) > limit or not text.isprintable():
            raise FieldError(name, "bad_filter")
        filters[name] = text or None
    group = tuple(g for g in (form.group, form.by) if g)
    try:
        return Scope(period, chosen, group, filters["service"], filters["counter"],
                     filters["staff"])
    except ScopeError as exc:
        raise FieldError("by", exc.code) from None


def draft(form: Form, saved: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The columns being edited: ``cols`` (comma-separated keys) if given, else the chosen
    set's, else the default ones."""
    if form.cols:
        try:
            return validate([c for c in form.cols.split(",") if c])
        except ColumnError as exc:
            raise FieldError("cols", exc.code) from None
    return tuple(saved.get(form.set, DEFAULT_COLUMNS))


def encoding(form: Form) -> Encoding:
    for e in ENCODINGS:
        if form.encoding == e:
            return e
    raise FieldError("encoding", "bad_encoding")


def moved(columns: Sequence[str], op: str) -> tuple[str, ...]:
    """The editor's no-script operations: ``up:KEY``, ``down:KEY``, ``remove:KEY``,
    ``add:KEY``; an operation that cannot apply leaves the list as it was."""
    cols = list(columns)
    verb, _, key = op.partition(":")
    if verb == "add" and key in CATALOGUE and key not in cols:
        cols.append(key)
    elif key in cols:
        i = cols.index(key)
        if verb == "remove" and len(cols) > 1:
            cols.pop(i)
        elif verb == "up" and i > 0:
            cols[i - 1], cols[i] = cols[i], cols[i - 1]
        elif verb == "down" and i < len(cols) - 1:
            cols[i + 1], cols[i] = cols[i], cols[i + 1]
    return tuple(cols)
