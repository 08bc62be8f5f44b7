"""The three manuals build to PDF from screenshots of this run, and a missing or stale screenshot
is refused (issue 18 item 5).

Screenshots: a picture the browser tests wrote to ``test-artifacts/`` during this pytest session
is used as it is. ``tests/conftest.py`` runs this module last, so after the whole suite every
picture is a real one of this run, and in CI (``CI=true``) a missing one fails the test. When
only some tests run, any other picture is replaced by a stand-in rendered with Chromium now, so
the build never takes a picture from an earlier run.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import shutil
import time
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from edge.manuals import MANUALS, ManualError, add_parsers, build, check_pictures, load

# import happens at collection, before any test of the session has run
SESSION_START = time.time()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _needed() -> list[str]:
    return sorted({rel for name in MANUALS for rel in load(name).shots})


async def _stand_ins(names: list[str], folder: Path, chromium: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium))
        try:
            page = await browser.new_page(viewport={"width": 640, "height": 360})
            for rel in names:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                await page.set_content(
                    "<body style='font:24px sans-serif;background:#def'>"
                    f"<p>代替画像 / stand-in</p><p>{html.escape(rel)}</p></body>")
                await page.screenshot(path=str(folder / rel))
        finally:
            await browser.close()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Path:
    """Every screenshot the manuals use, each taken during this session."""
    folder = tmp_path_factory.mktemp("shots")
    missing: list[str] = []
    for rel in _needed():
        real = ARTIFACTS / rel
        if real.is_file() and real.stat().st_mtime >= SESSION_START:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(real, folder / rel)  # keeps its time: the freshness check sees it
        else:
            missing.append(rel)
    if missing and os.environ.get("CI") == "true":  # the whole suite ran before (conftest)
        pytest.fail("screenshots the manuals use were not taken in this run (a browser test "
                    "did not run, or saves elsewhere now): " + ", ".join(missing))
    asyncio.run(_stand_ins(missing, folder, chromium_path))
    return folder


def _plain(text: str) -> str:
    """Text as compared: NFKC (Chromium's text layer maps some kanji of the Noto CJK fonts to
    Kangxi radicals, 口 → ⼝; NFKC folds them back, as a viewer's search does), the middle dot
    it writes as U+2027 made ・ again, and no whitespace (lines wrap anywhere)."""
    folded = unicodedata.normalize("NFKC", text).replace("\u2027", "・")
    return "".join(folded.split())


def _text(reader: PdfReader) -> str:
    return _plain("".join(p.extract_text() for p in reader.pages))


def test_manuals_build_to_pdf(tmp_path: Path, shots: Path, chromium_path: Path) -> None:
    pdfs = build(tmp_path, shots, fresh_since=SESSION_START, chromium=chromium_path)
    assert [p.name for p in pdfs] == [f"{stem}.pdf" for stem in MANUALS.values()]
    for name, pdf in zip(MANUALS, pdfs, strict=True):
        manual = load(name)
        reader = PdfReader(pdf)
        text = _text(reader)
        assert len(reader.pages) >= 2, pdf
        assert reader.pages[0].extract_text().strip(), "the cover page has text"
        assert _plain(manual.title) in text
        assert reader.metadata is not None
        assert reader.metadata.title == manual.title
        headings = [line[3:].strip() for line in
                    manual.source.read_text(encoding="utf-8").splitlines()
                    if line.startswith("## ")]
        assert len(headings) >= 4
        for heading in headings:  # in the contents and in the body
            assert text.count(_plain(heading)) >= 2, heading
        images = sum(len(page.images) for page in reader.pages)
        assert images >= len(set(manual.shots)) >= 1, (pdf, images)
        assert f"—{len(reader.pages)}/{len(reader.pages)}" in text, "page numbers"
    ops = (tmp_path / f"{MANUALS['operations']}.html").read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in ops, "the architecture diagram is in the ops manual"


def test_missing_screenshot_is_refused(tmp_path: Path, shots: Path) -> None:
    partial = tmp_path / "shots"
    shutil.copytree(shots, partial)
    gone = load("counter-staff").shots[0]
    (partial / gone).unlink()
    with pytest.raises(ManualError) as refused:
        build(tmp_path / "out", partial, names=["counter-staff"])
    assert "スクリーンショットがありません" in str(refused.value)
    assert "screenshot missing" in str(refused.value)
    assert gone in str(refused.value)
    assert not (tmp_path / "out").exists(), "nothing is written when a picture is refused"


def test_stale_screenshot_is_refused(tmp_path: Path, shots: Path) -> None:
    copy = tmp_path / "shots"
    shutil.copytree(shots, copy)
    old = load("admin").shots[-1]
    an_hour_ago = SESSION_START - 3600
    os.utime(copy / old, (an_hour_ago, an_hour_ago))
    with pytest.raises(ManualError, match="older than --fresh-since") as refused:
        build(tmp_path / "out", copy, fresh_since=SESSION_START, names=["admin"])
    assert old in str(refused.value)
    assert "古いです" in str(refused.value)
    check_pictures([load("admin")], copy, None)  # the same pictures, no freshness rule: fine


def test_cli_refuses_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="madoguchi")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["manuals", "build", "--out", str(tmp_path / "out"),
                              "--shots", str(tmp_path / "empty"),
                              "--fresh-since", "2026-12-01T00:00:00+09:00"])
    assert args.fresh_since == pytest.approx(1796050800.0)
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "マニュアルを作成できません / cannot build the manuals" in err
    assert err.count("screenshot missing") == sum(len(load(n).shots) for n in MANUALS)
