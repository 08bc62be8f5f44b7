"""uv.lock matches pyproject.toml: `uv sync --frozen` would silently skip a dependency that was
added to pyproject.toml without re-running `uv lock`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent


def _declared() -> set[tuple[str, str, str]]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"": project.get("dependencies", []), **project.get("optional-dependencies", {})}
    deps: set[tuple[str, str, str]] = set()
    for group, reqs in groups.items():
        for text in reqs:
            req = Requirement(text)
            deps.add((group, canonicalize_name(req.name), str(SpecifierSet(str(req.specifier)))))
    return deps


def _locked() -> set[tuple[str, str, str]]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text(encoding="utf-8"))
    (project,) = (p for p in lock["package"] if p["name"] == "madoguchi")
    deps: set[tuple[str, str, str]] = set()
    for entry in project["metadata"]["requires-dist"]:
        marker = entry.get("marker", "")
        group = marker.split("extra == '", 1)[1].split("'", 1)[0] if "extra == '" in marker else ""
        spec = str(SpecifierSet(entry.get("specifier", "")))
        deps.add((group, canonicalize_name(entry["name"]), spec))
    return deps


def test_lock_matches_pyproject() -> None:
    declared, locked = _declared(), _locked()
    assert declared == locked, (
        "uv.lock is stale, run `uv lock`:\n"
        f"  only in pyproject.toml: {sorted(declared - locked)}\n"
        f"  only in uv.lock: {sorted(locked - declared)}"
    )
