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
    addresses: tuple[tuple[str, int], ...] = ()  # displays: (counter id, bus address)


@dataclass(frozen=True, slots=True)
class VoiceZone:
    """Speakers in one area; they announce calls of ``counters`` (None: every counter)."""

    id: str
    output: str  # "null", "file:///dir", or "command:aplay -q {file}"
    counters: tuple[str, ...] | None = None


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

    def service_for_number(self, number: int) -> Service | None:
        for svc in self.services.values():
            if svc.first <= number <= svc.last:
                return svc
        return None
