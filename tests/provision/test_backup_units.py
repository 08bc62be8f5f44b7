"""The nightly backup units: the edge's in provisioning/systemd/ are what the generator writes,
the hub's come with ``madoguchi provision hub``, systemd itself accepts them
(``systemd-analyze verify``), and their command lines are ones ``madoguchi`` parses."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.cli import build_parser
from edge.provision import backup_units
from edge.provision.hub import HubDeploy, render

REPO = Path(__file__).resolve().parents[2]


def _exec_args(unit: str) -> list[str]:
    found = re.search(r"^ExecStart=(.+)$", unit, re.M)
    assert found is not None
    args = shlex.split(found.group(1).replace("${MADOGUCHI_HUB_DB}", "postgresql://h/db")
                       .replace("${MADOGUCHI_EDGE_DB}", "/var/lib/madoguchi/edge.db"))
    assert args[0].endswith("/.venv/bin/madoguchi")
    return args[1:]


def test_the_edge_units_in_the_repository_are_the_generated_ones() -> None:
    for name, text in backup_units.edge_units().items():
        assert (REPO / "provisioning" / "systemd" / name).read_text(encoding="utf-8") == text


def test_the_commands_parse_and_keep_seven_generations() -> None:
    hub = render(HubDeploy("hub.example.jp"))
    units = [hub["systemd/madoguchi-backup-hub.service"],
             backup_units.edge_units()["madoguchi-backup-edge.service"]]
    for unit, kind in zip(units, ("hub", "edge"), strict=True):
        args = build_parser().parse_args(_exec_args(unit))
        assert (args.command, args.sub) == ("backup", kind)
        assert args.keep == 7
        assert args.to == "/var/lib/madoguchi/backups"
    assert "OnCalendar=*-*-* 02:30:00 Asia/Tokyo" in hub["systemd/madoguchi-backup-hub.timer"]


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (package systemd)")
    install = tmp_path / "opt"
    exe = install / ".venv" / "bin" / "madoguchi"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n", encoding="utf-8")
    exe.chmod(0o755)
    files = {**{k.split("/")[-1]: v for k, v in render(HubDeploy(
        "hub.example.jp", install_dir=str(install))).items() if "backup" in k},
        **{k: v.replace("/opt/madoguchi", str(install))
           for k, v in backup_units.edge_units().items()}}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", *(str(tmp_path / n) for n in files)],
                          capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "madoguchi-backup" in line]
    assert not problems, "\n".join(problems)
