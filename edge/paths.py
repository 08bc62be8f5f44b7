"""Where the static data folders (kiosk-ui, firmware-profiles, sites) live.

An installed wheel carries them inside the package as ``edge/_data/<name>`` (see
``[tool.hatch.build.targets.wheel.force-include]``); a source checkout or editable install
reads them from the repository root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory of the data folder ``name``, e.g. ``data_dir("kiosk-ui")``.

    Raises ``ValueError`` for names that are not a single path component and
    ``FileNotFoundError`` when neither the packaged nor the checkout location exists.
    """
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise ValueError(f"data folder name must be a single path component, got {name!r}")
    packaged = _PACKAGE_DIR / "_data" / name
    checkout = _PACKAGE_DIR.parent / name
    for candidate in (packaged, checkout):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"data folder {name!r} not found: looked in {packaged} (installed wheel) and "
        f"{checkout} (source checkout); reinstall madoguchi or run from a full checkout"
    )
