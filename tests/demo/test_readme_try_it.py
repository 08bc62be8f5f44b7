"""The README's top and its "Try it" section: the two commands unchanged, every requirement id
resolving in docs/REQUIREMENTS.md, every local link existing, the URLs matching the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
DIGEST = (REPO / "docs" / "REQUIREMENTS.md").read_text(encoding="utf-8")
ID = r"\b([QWRSANFO])(\d{1,2})\b"


def _try_it() -> str:
    start = README.index("## Try it")
    return README[start:README.index("\n## ", start + 1)]


def test_the_two_commands_come_first() -> None:
    assert README.split("```")[1] == ("\nbash provisioning/bootstrap.sh demo\n"
                                      "bash provisioning/bootstrap.sh test\n")
    assert README.index("## Try it") < README.index("## What is where")


def test_requirement_ids_resolve_inside_the_repository() -> None:
    defined = {f"{k}{n}" for k, n in re.findall(r"(?m)^- " + ID, DIGEST)}
    assert {"Q1", "Q17", "W4", "W8"} <= defined
    used = {f"{k}{n}" for k, n in re.findall(ID, README)}
    for a, b in re.findall(r"\b([QW]\d+)–([QW]\d+)\b", README):  # ranges: every id between
        used |= {f"{a[0]}{i}" for i in range(int(a[1:]), int(b[1:]) + 1)}
    assert used, "the README names no requirement"
    assert used <= defined, sorted(used - defined)
    assert "../shared/REQUIREMENTS.md" not in README


def test_local_links_exist() -> None:
    links = re.findall(r"\]\(([^)#:]+)\)", README)
    assert "docs/REQUIREMENTS.md" in links
    for link in links:
        assert (REPO / link).exists(), link


def test_try_it_urls_match_the_demo_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    demo = build_parser().parse_args(["demo"])
    section = _try_it()
    assert f"http://127.0.0.1:{demo.port}/ui/" in section
    assert f"http://127.0.0.1:{demo.hub_port}/demo/mail" in section
    assert f"http://127.0.0.1:{demo.hub_port}/w/nerima-main/B" in section
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    helptext = capsys.readouterr().out
    options = set(re.findall(r"`(?:madoguchi demo |[^`]*demo )?(--[a-z-]+)", section))
    assert {"--at", "--speed", "--port"} <= options
    assert options <= set(re.findall(r"--[a-z-]+", helptext)), options
    assert "**1234**" in section
