"""The wheel installs into a fresh venv, runs, and carries the static data folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ("kiosk-ui", "firmware-profiles")  # force-included as edge/_data/<name>


def _uv() -> str | None:
    found = shutil.which("uv")
    local = REPO_ROOT / ".tools" / "bin" / "uv"
    return found or (str(local) if local.is_file() else None)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.slow
def test_wheel_installs_and_carries_data(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    uv = _uv()
    if uv:
        _run([uv, "build", "--wheel", "--out-dir", str(dist)], REPO_ROOT, env)
    else:
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist)], REPO_ROOT, env)
    wheels = sorted(dist.glob("madoguchi-*.whl"))
    assert len(wheels) == 1, wheels
    python = venv / "bin" / "python"
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], tmp_path, env)
        _run(
            [uv, "pip", "install", "--quiet", "--python", str(python), str(wheels[0])],
            tmp_path,
            env,
        )
    else:
        _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
        _run([str(python), "-m", "pip", "install", "-q", str(wheels[0])], tmp_path, env)

    help_text = _run([str(venv / "bin" / "madoguchi"), "--help"], tmp_path, env)
    assert "usage: madoguchi" in help_text

    probe = "import edge.paths as p; print(p._PACKAGE_DIR); print(p.data_dir('kiosk-ui'))"
    package_dir, kiosk = (Path(s) for s in _run([str(python), "-c", probe], tmp_path, env).split())
    assert package_dir.is_relative_to(venv), f"imported edge from {package_dir}, not the venv"
    assert kiosk == package_dir / "_data" / "kiosk-ui"
    for name in PACKAGED:
        installed = _files(package_dir / "_data" / name)
        assert installed, f"edge/_data/{name}/ is empty or missing in the wheel"
        assert installed == _files(REPO_ROOT / name)
    assert (package_dir / "_data" / "kiosk-ui" / "index.html").is_file()
    # the build hook ships the profiles collated, and the installed package reads that file
    collated = package_dir / "_data" / "firmware-profiles.json"
    assert collated.is_file(), "the wheel lacks the collated firmware-profiles.json"
    from edge.devices.profile_store import collate, dumps_collated, load_profiles

    assert collated.read_text(encoding="utf-8") == dumps_collated(collate(load_profiles()))
    probe = ("from edge.devices.profile_store import load_profiles; "
             "print(load_profiles()['epson-tm-t88vi'].japanese)")
    assert _run([str(python), "-c", probe], tmp_path, env).strip() == "kanji"
