"""``madoguchi profiles check``: validate every profile, list them, write the collated JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from edge.devices.profile_store import (
    SCHEMA_VERSION,
    ProfileError,
    collate,
    default_directory,
    dumps_collated,
    load_profiles,
)

if TYPE_CHECKING:
    from edge.devices.profiles import Profile


def _check_frames(profiles: Mapping[str, Profile], where: str) -> None:
    """Display templates through the real codec: fixed width, letters that decode back."""
    try:
        from edge.devices.display.codec import check_templates
    except ImportError:  # pragma: no cover - the display codec is a separate piece of work
        return
    from edge.devices.profiles import DisplayProfile

    problems = [
        f"{pid}.yaml: commands.{problem}"
        for pid, profile in profiles.items() if isinstance(profile, DisplayProfile)
        for problem in check_templates(profile)
    ]
    if problems:
        raise ProfileError(where, problems)


def cli_check(args: argparse.Namespace) -> int:
    """Validate, list, optionally write the collated JSON; 1 with every problem on stderr."""
    try:
        directory = Path(args.dir) if args.dir else default_directory()
        profiles = load_profiles(directory)
        _check_frames(profiles, str(directory))
    except ProfileError as exc:
        print(f"firmware profiles in {exc.where}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    width = max(len(pid) for pid in profiles)
    for pid, profile in profiles.items():
        print(f"{pid:<{width}}  {profile.kind:<8}  {profile.vendor} {profile.name}")
    kinds: dict[str, int] = {}
    for profile in profiles.values():
        kinds[profile.kind] = kinds.get(profile.kind, 0) + 1
    summary = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    print(f"{len(profiles)} profiles OK in {directory} ({summary})")
    if args.out:
        out = Path(args.out)
        try:
            out.write_text(dumps_collated(collate(profiles)), encoding="utf-8")
        except OSError as exc:
            print(f"{out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {out} (schema_version {SCHEMA_VERSION}, {len(profiles)} profiles)")
    return 0
