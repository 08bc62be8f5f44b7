"""``madoguchi ticket render``: the exact bytes a printer model would get for a sample ticket.

Why: to check a printer profile or a site's wording without a printer (and to attach the .bin
to a bug report); ``--png`` shows the paper the virtual printer makes of those bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile

SAMPLE_STATUS_URL = "https://example.invalid/t/"


def _profiles() -> dict[str, PrinterProfile]:
    from edge.devices.profile_store import load_profiles

    return {k: v for k, v in load_profiles().items() if isinstance(v, PrinterProfile)}


def _fail(message: str, status: int = 2) -> int:
    print(f"madoguchi ticket render: {message}", file=sys.stderr)
    return status


def sample_estimate(handling_s: float, ahead: int) -> tuple[int, int]:
    """A plausible wait range for a sample: the prior handling time per person ahead, +-20 %."""
    mid = handling_s / 60.0 * ahead
    lo = math.floor(mid * 0.8)
    return lo, max(lo + 1, math.ceil(mid * 1.2))


def sample_token(site: str, service: str, number: int) -> str:
    """Stable per sample, so re-rendering the same ticket gives the same bytes (same QR)."""
    return hashlib.sha256(f"{site}/{service}/{number}".encode()).hexdigest()[:22]


def run(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_site_config
    from edge.devices.printer.codec import render
    from edge.devices.printer.preview import preview_png
    from edge.devices.printer.raster import FontMissing
    from edge.devices.printer.texts import guidance
    from edge.devices.profile_store import ProfileError

    try:
        config = load_site_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        profiles = _profiles()
    except ProfileError as exc:
        return _fail(f"cannot load printer profiles: {exc}", 1)
    profile = profiles.get(args.profile)
    if profile is None:
        return _fail(f"unknown printer profile {args.profile!r}; known: "
                     f"{', '.join(sorted(profiles)) or '(none)'}")
    svc = config.services.get(args.service)
    if svc is None:
        return _fail(f"unknown service {args.service!r} in {args.config}; known: "
                     f"{', '.join(config.services)}")
    if not svc.first <= args.number <= svc.last:
        return _fail(f"number {args.number} is outside service {svc.code}'s range "
                     f"{svc.first}-{svc.last}")
    if args.ahead < 0:
        return _fail("--ahead cannot be negative")
    ticket = TicketPrint(
        number=args.number, service_code=svc.code, service_name=svc.name.get(args.lang),
        site_name=config.name.get(args.lang),
        issued_at=datetime.now(ZoneInfo(config.timezone)).replace(microsecond=0),
        ahead=args.ahead, estimate_min=sample_estimate(svc.handling_s, args.ahead),
        guidance=guidance(args.lang),
        qr_payload=SAMPLE_STATUS_URL + sample_token(config.site, svc.code, args.number),
        lang=args.lang, two_part=svc.ticket == "two-part")
    if args.png and not args.png.lower().endswith(".png"):
        return _fail(f"--png must name a .png file, got {args.png!r}", 2)
    try:
        data = render(profile, ticket)
        Path(args.out).write_bytes(data)
        print(f"wrote {args.out}: {len(data)} bytes for {profile.id} ({profile.command_set}, "
              f"{profile.paper_width_dots} dots, {'two-part' if ticket.two_part else 'single'})")
        if args.png:
            img = preview_png(data, profile.paper_width_dots)
            img.save(args.png, format="PNG")
            print(f"wrote {args.png}: {img.width}x{img.height} px preview")
    except FontMissing as exc:
        return _fail(str(exc), 1)
    except OSError as exc:
        return _fail(f"cannot write: {exc}", 1)
    return 0
