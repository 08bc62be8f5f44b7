"""Hatchling build hook: the wheel ships firmware-profiles collated into one JSON.

It writes ``edge/_data/firmware-profiles.json`` (read by ``profile_store.load_collated``) with
the same code as ``madoguchi profiles check --out``. To need only PyYAML at build time it loads
``edge/devices/profile_store.py`` by path, not the ``edge`` package: that module's reading,
``inherits:`` and collation import nothing heavier (validation, which needs pydantic and
python-escpos, is ``madoguchi profiles check``'s job in the tests). Problems the build can see
(YAML syntax, file names, ``inherits:``) fail the build.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TARGET = "edge/_data/firmware-profiles.json"


def load_profile_store(root: Path) -> ModuleType:
    """``edge/devices/profile_store.py`` as a standalone module (the edge package stays out)."""
    path = root / "edge" / "devices" / "profile_store.py"
    spec = importlib.util.spec_from_file_location("_madoguchi_build_profile_store", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def collated_text(root: Path) -> str:
    """The collated JSON of ``root/firmware-profiles``; RuntimeError listing every problem."""
    store = load_profile_store(root)
    directory = root / "firmware-profiles"
    resolved, problems = store.resolve_directory(directory)
    if problems:
        raise RuntimeError(
            f"firmware-profiles: {len(problems)} problem(s); run `madoguchi profiles check`:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    text: str = store.dumps_collated(store.collate_resolved({r.id: r.data for r in resolved}))
    return text


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        self._written: str | None = None
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install reads the YAML from the checkout
        text = collated_text(Path(self.root))
        fd, name = tempfile.mkstemp(prefix="madoguchi-profiles-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        self._written = name
        build_data["force_include"][name] = TARGET

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        written = getattr(self, "_written", None)
        if written:
            Path(written).unlink(missing_ok=True)
