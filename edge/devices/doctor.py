"""``madoguchi doctor``: what is configured, what is plugged in, and how each device is doing.

Why: when the kiosk stops printing at 8:29, the ward's IT desk needs one command that says
"printer-k1: error, out of paper" or "04b8:0202 is plugged in but not configured". It runs the
same device services as the daemon (same transports, same status reads), for a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any, cast

from edge.config import ConfigError, load_site_config
from edge.devices.health import reason
from edge.devices.profile_store import ProfileError, load_profiles
from edge.devices.usb_detect import by_usb_id, detect_usb
from edge.domain.model import SiteConfig
from edge.store.writer import Writer
from edge.sync.site_config import load_applied_config


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    kind: str
    profile: str
    where: str
    state: str
    reason: str | None
    note: str

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "profile": self.profile, "where": self.where,
                "state": self.state, "reason": self.reason, "note": self.note}


async def probe_configured(config: SiteConfig, profiles: dict[str, Any],
                           seconds: float) -> list[Row]:
    """Start every configured device's service, let it connect and read status, stop it."""
    from edge.devices.manager import DeviceManager

    # the services are built as the daemon builds them, but never fed commands: no writer
    manager = DeviceManager(cast(Writer, None), config, profiles)
    manager.build_services()
    await manager.start()
    try:
        await asyncio.sleep(seconds)
        health = {h.id: h for h in manager.board.all()}
    finally:
        await manager.stop()
    rows = []
    for spec in config.devices:
        h = health.get(spec.id)
        bound = spec.kiosk or ",".join(spec.operated) \
            or ",".join(dict.fromkeys(c for c, _ in spec.addresses))
        rows.append(Row(spec.id, spec.kind, spec.profile, spec.url,
                        h.state if h else "offline", h.reason if h else "not_found",
                        f"serves {bound}" + (f" — {h.detail}" if h and h.detail else "")))
    for h in health.values():
        if h.kind == "voice":
            rows.append(Row(h.id, "voice", "-", h.bound_to or "-", h.state, h.reason, h.detail))
    return rows


def detected_usb(config: SiteConfig, profiles: dict[str, Any]) -> list[Row]:
    """USB devices on this machine, matched against the profiles' vendor:product ids."""
    known = by_usb_id(profiles)
    used = {spec.url.split("//", 1)[1].split("?")[0].lower()
            for spec in config.devices if spec.url.startswith("usb://")}
    rows = []
    for seen in detect_usb():
        usb_id = f"{seen.vendor_id}:{seen.product_id}"
        matches = known.get((seen.vendor_id, seen.product_id), [])
        label = " ".join(x for x in (seen.manufacturer, seen.product) if x)
        note = ("configured" if usb_id in used else
                "matches a profile, not configured" if matches else "no profile")
        rows.append(Row(usb_id, "usb", ",".join(matches) or "-", f"bus {seen.busnum} "
                        f"dev {seen.devnum} {label}".strip(), "detected", None, note))
    return rows


def _table(rows: list[Row]) -> str:
    head = ("id", "kind", "profile", "where", "state", "reason / 理由", "note")
    cells = [head] + [
        (r.id, r.kind, r.profile, r.where, r.state,
         "" if r.reason is None else f"{reason(r.reason).en} / {reason(r.reason).ja}", r.note)
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(str(c[i]).ljust(widths[i]) for i in range(len(head))).rstrip()
                     for c in cells)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_site_config(args.config)
        profiles = load_profiles()
    except (ConfigError, ProfileError) as exc:
        print(exc, file=sys.stderr)
        return 2
    db = getattr(args, "db", None)
    if db is not None:  # what the daemon runs: the hub's pushed version wins over the file
        applied = load_applied_config(db, config.site)
        if applied is not None:
            config = applied
            print(f"configuration applied from the hub: version {applied.version} / "
                  f"ハブから適用された設定（版 {applied.version}）", file=sys.stderr)
    configured = asyncio.run(probe_configured(config, profiles, args.probe_s))
    detected = detected_usb(config, profiles)
    if args.json:
        print(json.dumps({"site": config.site, "configured": [r.view() for r in configured],
                          "detected_usb": [r.view() for r in detected]},
                         ensure_ascii=False, indent=2))
    else:
        print(f"site {config.site}: {len(configured)} configured device(s) / 設定済み機器")
        print(_table(configured) if configured else "  (none / なし)")
        print(f"\nUSB devices detected / 検出されたUSB機器: {len(detected)}")
        if detected:
            print(_table(detected))
    bad = [r for r in configured if r.state != "ok"]
    if bad:
        print(f"\n{len(bad)} device(s) need attention / 要確認の機器があります: "
              + ", ".join(r.id for r in bad), file=sys.stderr)
    return 1 if bad else 0
