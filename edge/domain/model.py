"""Site configuration as the domain sees it: validated, immutable, no file format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge.domain.calendar import Calendar

TicketKind = Literal["single", "two-part"]
Channel = Literal["kiosk", "web", "reservation"]
CHANNELS: tuple[Channel, ...] = ("kiosk", "web", "reservation")
LANGS: tuple[str, ...] = ("ja", "en", "zh", "ko")


@dataclass(frozen=True, slots=True)
class Text:
    """A user-facing text in several languages.

    Fallback: the language asked for, then English for anyone but a Japanese reader (a zh/ko
    visitor reads English more likely than Japanese), then Japanese, then whatever there is.
    """

    values: dict[str, str]

    def get(self, lang: str) -> str:
        order = (lang, "ja", "en") if lang == "ja" else (lang, "en", "ja")
        for code in order:
            if self.values.get(code):
                return self.values[code]
        return next(iter(self.values.values()))


@dataclass(frozen=True, slots=True)
class WebRules:
    """Web tickets for one service (W4) and its "your turn is near" notice (W5).

    Fairness towards people in the office: web tickets only between ``start`` and ``end`` (site
    time), at most ``daily_cap`` a day, at most one active per contact (the hub checks that: the
    site never sees contacts). With ``checkin_required``, "call next" passes over a web ticket
    not checked in at the kiosk without calling it; it keeps its turn for ``checkin_grace_min``
    minutes from the first time its turn came, and only then may be marked absent (the rule in
    ``edge/domain/web.py``).
    """

    start: str = "08:30"  # "HH:MM", site time
    end: str = "17:00"  # exclusive
    daily_cap: int | None = None
    checkin_required: bool = True
    notify_ahead: int = 3  # notice when this many visitors are ahead (N, set by staff)
    checkin_grace_min: int = 30  # minutes a deferred web ticket keeps its turn


@dataclass(frozen=True, slots=True)
class Service:
    """A queue with its own number range (Q1)."""

    code: str
    name: Text
    first: int
    last: int
    ticket: TicketKind = "single"
    kiosk: bool = True  # False: reached only by transfer (a second-stage queue)
    wrap: bool = True  # after `last`, continue at `first`, skipping numbers still in use
    handling_s: float = 300.0  # prior for the handling time until today's are observed
    daily_limit: int | None = None  # tickets per day; None = only the range limits it
    web: WebRules | None = None  # None: no web tickets for this service

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Counter:
    """A counter (窓口) serving services in priority order."""

    id: str
    name: Text
    services: tuple[str, ...]
    pin_hash: str | None = None  # staff open it with this PIN (scrypt hash, never the PIN)
    section: str | None = None  # the 係・所 it belongs to (``SiteConfig.sections``), if any


@dataclass(frozen=True, slots=True)
class Window:
    """When a menu is shown: weekdays (0 = Monday) and a time range, site time."""

    days: tuple[int, ...]
    start: str  # "HH:MM"
    end: str  # "HH:MM", exclusive


@dataclass(frozen=True, slots=True)
class Menu:
    """One kiosk screen (Q5): which services it offers, its guidance text, when it shows.

    ``name`` is for staff (operator, config); visitors never see it.
    """

    id: str
    name: Text
    services: tuple[str, ...]
    guidance: Text | None = None
    # when it shows by itself; a menu without a schedule shows only when chosen by staff or
    # when it is the default
    schedule: tuple[Window, ...] = ()
    default: bool = False  # shown outside every schedule (edge/domain/menus.py)
    # the kiosks (printer ``kiosk`` ids) that offer this menu; None: every kiosk of the site
    kiosks: tuple[str, ...] | None = None


DeviceKind = Literal["printer", "scanner", "keypad", "display"]
DEVICE_KINDS: tuple[DeviceKind, ...] = ("printer", "scanner", "keypad", "display")


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One piece of counter hardware: which profile, where it is plugged, what it serves."""

    id: str
    kind: DeviceKind
    profile: str  # firmware-profiles id
    url: str  # usb://, serial://, tcp://, file://, sim://
    kiosk: str | None = None  # printers: the kiosk whose tickets it prints
    counter: str | None = None  # scanners, keypads: the counter they operate
    # displays: (counter id, bus address) pairs; a counter shown on two heads has two pairs,
    # a head shared by several counters appears once per counter (it shows the latest call)
    addresses: tuple[tuple[str, int], ...] = ()
    section: str | None = None  # the 係・所 it belongs to, if the site has sections
    # keypads, scanners driving several counters (``counter`` is then the first of them); the
    # runtime rule is in edge/devices/manager.py (``MultiCounter``)
    counters: tuple[str, ...] = ()

    @property
    def operated(self) -> tuple[str, ...]:
        """The counters a keypad or scanner operates: ``counters``, else ``counter``."""
        return self.counters or ((self.counter,) if self.counter is not None else ())


@dataclass(frozen=True, slots=True)
class VoiceZone:
    """Speakers in one area; they announce calls of ``counters`` (None: every counter)."""

    id: str
    output: str  # "null", "file:///dir", or "command:aplay -q {file}"
    counters: tuple[str, ...] | None = None
    volume: float | None = None  # 0.0-1.0; None: the site-wide ``VoiceSpec.volume``


@dataclass(frozen=True, slots=True)
class Section:
    """A 係・所 (section) sharing a site: counters, devices and monitors belong to one.

    ``admin_pcs`` counts its management PCs (the ward's device table); they run the admin web
    in a browser, so the edge only records the number.
    """

    id: str
    name: Text
    admin_pcs: int = 0


MonitorKind = Literal["guide", "backyard"]


@dataclass(frozen=True, slots=True)
class Monitor:
    """A screen in a browser: ``guide`` (案内用, visitors: calls and waits, /ui/monitor.html) or
    ``backyard`` (staff: queue lengths, /ui/backyard.html). ``services``/``counters`` limit
    what it shows (empty: everything of its section, or of the site without sections)."""

    id: str
    kind: MonitorKind
    section: str | None = None
    name: Text | None = None
    services: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    engine: str = "auto"  # auto | open-jtalk | espeak-ng | pyttsx3
    gender: Literal["female", "male"] = "female"
    volume: float = 0.8
    chime: bool = True
    languages: tuple[str, ...] = ("ja", "en")
    recall_repeats: int = 2
    templates: str | None = None  # staff-edited template file (absolute path once loaded)
    zones: tuple[VoiceZone, ...] = (VoiceZone("all", "null"),)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    site: str
    name: Text
    timezone: str
    services: dict[str, Service]
    counters: dict[str, Counter]
    version: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    # where a ticket's QR leads: its page on the hub; {token} is replaced
    status_url: str = "https://madoguchi.invalid/t/{token}"
    devices: tuple[DeviceSpec, ...] = ()
    voice: VoiceSpec | None = None  # None: no voice announcements at this site
    guidance: Text | None = None  # kiosk guidance text (Q4) when the menu has none
    notices: tuple[Text, ...] = ()  # ticker on the guide monitors (Q14)
    menus: dict[str, Menu] = field(default_factory=dict)  # kiosk screens in order (Q5)
    lang_reset_s: int = 60  # the kiosk returns to Japanese after this idle time (Q3)
    # opening hours, site time: weekday (0 = Monday) -> ("HH:MM", "HH:MM"); a day left out is
    # closed; None: not configured (the status page shows no hours)
    hours: dict[int, tuple[str, str]] | None = None
    # who may use the edge's routes (edge/web/access.py): "staff" or "open"
    access: str = "staff"
    kiosk_networks: tuple[str, ...] = ()  # kiosk addresses; empty: any address on the LAN
    calendar: Calendar = field(default_factory=Calendar)  # holidays and closures (calendar.py)
    sections: dict[str, Section] = field(default_factory=dict)  # 係・所 in file order
    monitors: tuple[Monitor, ...] = ()  # guide and backyard screens

    def menus_for(self, kiosk: str | None) -> dict[str, Menu]:
        """The menus one kiosk offers (``Menu.kiosks``; None: every menu). For each kiosk the
        config check guarantees one default and no overlapping windows, so the menu rule of
        edge/domain/menus.py applies to this subset unchanged."""
        if kiosk is None:
            return dict(self.menus)
        return {k: m for k, m in self.menus.items() if m.kiosks is None or kiosk in m.kiosks}

    def service_for_number(self, number: int) -> Service | None:
        for svc in self.services.values():
            if svc.first <= number <= svc.last:
                return svc
        return None
