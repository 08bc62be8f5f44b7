"""Device health: every device says ok, degraded, offline or error, with a reason in ja and en.

Why a board: the kiosk must learn at once that its printer is out of paper, the backyard monitor
and the hub (O2) want all devices at a glance, and ``madoguchi doctor`` prints the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

_LOGGER = logging.getLogger(__name__)

DeviceState = Literal["ok", "degraded", "offline", "error"]
STATES: tuple[DeviceState, ...] = ("ok", "degraded", "offline", "error")


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a device is not ok: a stable code for programs, and a sentence for people."""

    code: str  # e.g. "paper_out", "paper_near_end", "cover_open", "unplugged", "timeout"
    en: str
    ja: str


# The reasons devices report; codecs and transports refer to these, screens translate by code.
REASONS: dict[str, Reason] = {r.code: r for r in (
    Reason("paper_out", "Out of paper", "用紙切れです"),
    Reason("paper_near_end", "Paper is running low", "用紙残りわずかです"),
    Reason("cover_open", "Cover is open", "カバーが開いています"),
    Reason("unplugged", "Not connected", "接続されていません"),
    Reason("timeout", "Not responding", "応答がありません"),
    Reason("write_failed", "Could not send data", "データを送信できません"),
    Reason("printer_error", "Printer error (cutter or mechanism)", "プリンタ異常（カッター等）"),
    Reason("no_engine", "No speech engine installed", "音声エンジンがありません"),
    Reason("engine_fallback", "Main speech engine unavailable: calls use the backup voice",
           "主の音声エンジンが使えないため、予備の音声で呼び出しています"),
    Reason("not_found", "Device not found", "機器が見つかりません"),
    Reason("permission", "No permission to open the device", "機器を開く権限がありません"),
    Reason("starting", "Starting", "起動中"),
    Reason("bad_config", "Wrong settings for this device", "この機器の設定が正しくありません"),
)}


def reason(code: str) -> Reason:
    return REASONS.get(code) or Reason(code, code.replace("_", " "), code)


@dataclass(slots=True)
class Health:
    """One device's current state, as published (no secrets, no personal data)."""

    id: str
    kind: str  # printer | scanner | keypad | display | voice
    state: DeviceState = "offline"
    reason: str | None = "starting"
    detail: str = ""  # free text for staff/logs, e.g. the OS error
    since: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    bound_to: str | None = None  # kiosk or counter id this device serves

    def view(self) -> dict[str, Any]:
        out = asdict(self)
        r = reason(self.reason) if self.reason else None
        out["message"] = None if r is None else {"en": r.en, "ja": r.ja}
        return out


Listener = Callable[[Health], None]


class HealthBoard:
    """All devices' health; listeners hear each change (not each unchanged report)."""

    def __init__(self) -> None:
        self._devices: dict[str, Health] = {}
        self._listeners: list[Listener] = []

    def register(self, device_id: str, kind: str, bound_to: str | None = None) -> Health:
        h = Health(device_id, kind, bound_to=bound_to)
        self._devices[device_id] = h
        return h

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def report(self, device_id: str, state: DeviceState, reason_code: str | None = None,
               detail: str = "") -> None:
        h = self._devices[device_id]
        if (h.state, h.reason, h.detail) == (state, reason_code, detail):
            return
        if state != h.state:
            _LOGGER.info("device %s: %s -> %s (%s)", device_id, h.state, state,
                         reason_code or "-")
        h.state, h.reason, h.detail = state, reason_code, detail
        h.since = datetime.now(UTC).isoformat(timespec="seconds")
        for listener in self._listeners:
            try:
                listener(h)
            except Exception:
                _LOGGER.exception("health listener failed")

    def get(self, device_id: str) -> Health | None:
        return self._devices.get(device_id)

    def all(self) -> list[Health]:
        return list(self._devices.values())

    def views(self) -> list[dict[str, Any]]:
        return [h.view() for h in self._devices.values()]

    def worst(self) -> DeviceState:
        """The site's overall device state, for a one-glance summary."""
        order = {"ok": 0, "degraded": 1, "offline": 2, "error": 3}
        return max((h.state for h in self._devices.values()), key=order.__getitem__,
                   default="ok")
