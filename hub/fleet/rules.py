"""Alert rules and what they find in a site's observed state (pure: no I/O, no clock).

Why pure: which faults count, with which thresholds, is the part staff argue about and tests
must pin down; the job (``job.py``) only gathers observations and passes ``now``.

Rules (issue 13 item 4, O2): a site offline during its opening hours for N minutes; a printer
out of paper, near its end, or with its cover open; a display or scanner offline (during
opening hours: a display switched off at night is not a fault); disk use over N %; the outbox
growing for N minutes; the clock off by more than N seconds. Device rules are not applied to a
site that is offline: its device rows are what it said last, and the offline rule covers it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

RULES: tuple[str, ...] = ("site_offline", "paper_out", "paper_near_end", "cover_open",
                          "display_offline", "scanner_offline", "disk_full", "outbox_growing",
                          "clock_off")
DEVICE_DOWN = frozenset({"offline", "error"})

# numeric thresholds: field -> (minimum, maximum)
LIMITS: dict[str, tuple[int, int]] = {
    "offline_minutes": (1, 240),
    "disk_pct": (50, 99),
    "outbox_minutes": (1, 240),
    "clock_s": (1, 3600),
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One site's rule settings; ``enabled`` lists the rules that alert."""

    enabled: frozenset[str] = frozenset(RULES)
    offline_minutes: int = 5
    disk_pct: int = 90
    outbox_minutes: int = 10
    clock_s: int = 30

    def to_json(self) -> str:
        out = asdict(self)
        out["enabled"] = sorted(self.enabled)
        return json.dumps(out, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Thresholds:
        """A stored row; what cannot be read falls back to the default (never raises)."""
        try:
            raw = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(raw, dict):
            return cls()
        values: dict[str, Any] = {}
        enabled = raw.get("enabled")
        if isinstance(enabled, list):
            values["enabled"] = frozenset(r for r in enabled if r in RULES)
        for name, (low, high) in LIMITS.items():
            v = raw.get(name)
            if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high:
                values[name] = v
        return cls(**values)

    def changes(self, other: Thresholds) -> dict[str, Any]:
        """Field -> [old, new] for the audit trail."""
        out: dict[str, Any] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                out[f.name] = [sorted(a), sorted(b)] if f.name == "enabled" else [a, b]
        return out


class RuleError(ValueError):
    """A form value out of range: ``field`` and a stable ``code`` (texts in i18n)."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field, self.code = field, code


def parse_form(form: Mapping[str, str]) -> Thresholds:
    """The rules form: a checkbox ``rule_<name>`` per rule, and the numbers as whole numbers
    within ``LIMITS``. Raises ``RuleError`` at the first bad field."""
    enabled = frozenset(r for r in RULES if form.get(f"rule_{r}") in ("on", "1", "true"))
    values: dict[str, int] = {}
    for name, (low, high) in LIMITS.items():
        raw = str(form.get(name, "")).strip()
        if not raw:
            raise RuleError(name, "required")
        if not raw.isascii() or not raw.isdigit():
            raise RuleError(name, "not_a_number")
        value = int(raw)
        if not low <= value <= high:
            raise RuleError(name, "out_of_range")
        values[name] = value
    return Thresholds(enabled=enabled, **values)


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: str
    state: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One site as the hub sees it now. ``open_now``: within opening hours by its calendar;
    ``outbox_growing_s``: for how long the outbox has grown without draining (``trends``);
    ``clock_offset_s``: hub time less edge time (``trends``), None until estimated."""

    site: str
    online: bool
    open_now: bool
    devices: tuple[Device, ...] = ()
    disk_pct: float | None = None
    outbox: int | None = None
    outbox_growing_s: float = 0.0
    clock_offset_s: float | None = None


Key = tuple[str, str, str]  # site, rule, subject (a device id, or "")


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that holds now; ``hold_s``: how long it must hold before an incident opens."""

    key: Key
    hold_s: float
    detail: dict[str, Any]


_PRINTER_REASONS = {"paper_out": "paper_out", "paper_near_end": "paper_near_end",
                    "cover_open": "cover_open"}


def findings(obs: Observation, th: Thresholds, *, hold_s: float,
             minute_s: float = 60.0) -> list[Finding]:
    """The enabled rules that hold for ``obs``. ``hold_s``: the default hold before an
    incident opens; the offline rule holds for its own N minutes (``minute_s``: the length of
    a minute, shortened only by tests)."""
    out: list[Finding] = []
    on = th.enabled

    def add(rule: str, subject: str = "", hold: float = hold_s, **detail: Any) -> None:
        if rule in on:
            out.append(Finding((obs.site, rule, subject), hold, detail))

    if not obs.online:
        if obs.open_now:
            add("site_offline", hold=th.offline_minutes * minute_s,
                minutes=th.offline_minutes)
        return out
    for d in obs.devices:
        if d.kind == "printer" and d.reason in _PRINTER_REASONS:
            add(_PRINTER_REASONS[d.reason], d.id, kind=d.kind)
        elif d.kind == "display" and d.state in DEVICE_DOWN and obs.open_now:
            add("display_offline", d.id, kind=d.kind, reason=d.reason)
        elif d.kind == "scanner" and d.state in DEVICE_DOWN and obs.open_now:
            add("scanner_offline", d.id, kind=d.kind, reason=d.reason)
    if obs.disk_pct is not None and obs.disk_pct > th.disk_pct:
        add("disk_full", disk_pct=round(obs.disk_pct, 1), limit=th.disk_pct)
    if obs.outbox_growing_s >= th.outbox_minutes * minute_s:
        add("outbox_growing", hold=0.0, outbox=obs.outbox, minutes=th.outbox_minutes)
    if obs.clock_offset_s is not None and abs(obs.clock_offset_s) > th.clock_s:
        add("clock_off", offset_s=round(obs.clock_offset_s, 1), limit=th.clock_s)
    return out
