"""Fleet settings from the environment (``MADOGUCHI_FLEET_*``, ``MADOGUCHI_METRICS_*``).

Why the environment and not the rules table: these are the operator's (timing of the checks,
who may scrape ``/metrics``), not the staff's; the staff's thresholds are in ``fleet_rules``.
The timing knobs exist so the end-to-end tests can run in seconds; the defaults are what a ward
runs (README.md: "Timing").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from hub.settings import SettingsError


@dataclass(frozen=True)
class FleetSettings:
    tick_s: float = 5.0  # how often the rules are evaluated
    hold_s: float = 30.0  # a device/disk/clock finding must hold this long to open an incident
    clear_s: float = 120.0  # and be absent this long before the incident recovers
    flap_rises: int = 4  # a finding that starts this often ...
    flap_window_s: float = 600.0  # ... within this window opens an incident at once
    stale_s: float = 150.0  # no status for this long (5 refreshes) counts as offline
    minute_s: float = 60.0  # the length of a staff-set "minute" (tests shorten it)
    mail_retries: tuple[float, ...] = (2.0, 10.0, 30.0)  # delays between e-mail attempts
    metrics_token: str | None = None  # "Authorization: Bearer <token>" opens /metrics
    metrics_allow: tuple[str, ...] = ()  # or a client address in one of these networks

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FleetSettings:
        env = os.environ if env is None else env

        def num(name: str, default: float) -> float:
            raw = env.get(f"MADOGUCHI_FLEET_{name}", "")
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"MADOGUCHI_FLEET_{name}: a number, got {raw!r}") from None
            if not value > 0:
                raise SettingsError(f"MADOGUCHI_FLEET_{name}: must be above 0")
            return value

        allow = tuple(n.strip() for n in env.get("MADOGUCHI_METRICS_ALLOW", "").split(",")
                      if n.strip())
        return cls(tick_s=num("TICK_S", cls.tick_s), hold_s=num("HOLD_S", cls.hold_s),
                   clear_s=num("CLEAR_S", cls.clear_s),
                   flap_rises=int(num("FLAP_RISES", cls.flap_rises)),
                   flap_window_s=num("FLAP_WINDOW_S", cls.flap_window_s),
                   stale_s=num("STALE_S", cls.stale_s), minute_s=num("MINUTE_S", cls.minute_s),
                   metrics_token=env.get("MADOGUCHI_METRICS_TOKEN") or None,
                   metrics_allow=allow)
