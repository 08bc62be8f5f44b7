"""edge.paths.data_dir: packaged data first, then the source checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

import edge.paths
from edge.paths import data_dir

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_checkout_data_dirs_resolve() -> None:
    # editable install / source checkout: the folders at the repository root
    assert data_dir("kiosk-ui") == REPO_ROOT / "kiosk-ui"
    assert (data_dir("kiosk-ui") / "index.html").is_file()
    assert data_dir("firmware-profiles") == REPO_ROOT / "firmware-profiles"


def test_packaged_data_wins_over_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "edge"
    (package / "_data" / "kiosk-ui").mkdir(parents=True)
    (tmp_path / "kiosk-ui").mkdir()
    (tmp_path / "sites").mkdir()
    monkeypatch.setattr(edge.paths, "_PACKAGE_DIR", package)
    assert data_dir("kiosk-ui") == package / "_data" / "kiosk-ui"
    assert data_dir("sites") == tmp_path / "sites"


def test_missing_data_dir_names_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "edge"
    package.mkdir()
    monkeypatch.setattr(edge.paths, "_PACKAGE_DIR", package)
    with pytest.raises(FileNotFoundError, match="'nothing-here' not found") as info:
        data_dir("nothing-here")
    assert str(package / "_data" / "nothing-here") in str(info.value)
    assert str(tmp_path / "nothing-here") in str(info.value)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../kiosk-ui", "a\\b"])
def test_rejects_paths_that_are_not_one_component(bad: str) -> None:
    with pytest.raises(ValueError, match="single path component"):
        data_dir(bad)
