"""``madoguchi manuals build``: the three Japanese manuals, Markdown → HTML → PDF (issue 18 item 5).

The sources are ``provisioning/manuals/*.md``. Illustrations are the screenshots the browser
tests save under ``test-artifacts/``, written in Markdown as ``![説明](shots:notices/list-ja.png)``
(a path under the screenshots folder); other images (the architecture SVG) are files next to the
sources. The builder refuses to print a manual whose screenshot is missing or older than
``--fresh-since``: CI runs the browser tests, then builds with the run's start time, so every
picture in the PDF was taken from the code of that same run. HTML is rendered by markdown-it-py
with raw HTML off; the PDF by Playwright's Chromium (``page.pdf``, A4, page numbers in the
footer), fonts Noto Sans/Serif CJK JP from the system (``fonts-noto-cjk``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / "provisioning" / "manuals"
DEFAULT_SHOTS = REPO / "test-artifacts"
DEFAULT_OUT = Path("build/manuals")  # ignored by git, like other build output
CHROMIUM = Path("/usr/bin/chromium")
SHOT_SCHEME = "shots:"

# file stem → PDF name; the order is the order of the printed set
MANUALS: dict[str, str] = {
    "counter-staff": "01-窓口職員向け操作マニュアル",
    "admin": "02-管理者向けマニュアル",
    "operations": "03-システム運用マニュアル",
}

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg"}


class ManualError(Exception):
    """A manual cannot be built; the message is Japanese then English, for the operator."""


@dataclass(frozen=True)
class Manual:
    """One manual's source, its title (the first ``#`` heading) and what it illustrates with."""

    name: str
    source: Path
    title: str
    shots: tuple[str, ...]
    files: tuple[str, ...]


def _figure(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    """An image with its alt text printed under it as the caption (a manual's figures need
    words the reader can refer to; the alt text is that description already)."""
    tok = tokens[idx]
    alt = html.escape(self.renderInlineAsText(tok.children or [], options, env))
    src = html.escape(str(tok.attrGet("src") or ""))
    return f'<img src="{src}" alt="{alt}"><span class="caption">図：{alt}</span>'


def _parser() -> MarkdownIt:
    # raw HTML off: the sources are text and pictures only
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("image", _figure)
    return md


def _images(tokens: list[Token]) -> list[str]:
    found: list[str] = []
    for tok in tokens:
        if tok.type == "image":
            found.append(str(tok.attrGet("src") or ""))
        if tok.children:
            found.extend(_images(tok.children))
    return found


def load(name: str, sources: Path = SOURCES) -> Manual:
    """Read one manual's source and list the pictures it needs."""
    path = sources / f"{name}.md"
    if not path.is_file():
        raise ManualError(f"原稿がありません / manual source missing: {path}")
    text = path.read_text(encoding="utf-8")
    first = re.search(r"^# (.+)$", text, re.MULTILINE)
    if first is None:
        raise ManualError(f"表題（# 見出し）がありません / no title (# heading): {path}")
    srcs = _images(_parser().parse(text))
    shots = tuple(s[len(SHOT_SCHEME):] for s in srcs if s.startswith(SHOT_SCHEME))
    files = tuple(s for s in srcs if not s.startswith(SHOT_SCHEME))
    return Manual(name, path, first.group(1).strip(), shots, files)


def check_pictures(manuals: list[Manual], shots: Path, fresh_since: float | None) -> None:
    """Refuse (all problems at once) a missing picture, or a screenshot older than
    ``fresh_since`` (seconds since the epoch): such a picture shows an older version of the
    screen than the code being documented."""
    problems: list[str] = []
    for m in manuals:
        for rel in m.shots:
            p = shots / rel
            if ".." in Path(rel).parts or not p.is_file():
                problems.append(f"{m.name}: スクリーンショットがありません / screenshot "
                                f"missing: {p}")
            elif fresh_since is not None and p.stat().st_mtime < fresh_since:
                at = datetime.fromtimestamp(p.stat().st_mtime).isoformat(timespec="seconds")
                problems.append(f"{m.name}: スクリーンショットが古いです（{at} 撮影）/ "
                                f"screenshot older than --fresh-since: {p}")
        for rel in m.files:
            if not (m.source.parent / rel).is_file():
                problems.append(f"{m.name}: 図がありません / figure missing: "
                                f"{m.source.parent / rel}")
    if problems:
        raise ManualError("マニュアルを作成できません / cannot build the manuals:\n  "
                          + "\n  ".join(problems))


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _wide(ch: str) -> bool:
    return ord(ch) >= 0x2E80  # CJK radicals onward: kana, kanji, full-width forms


def _join_cjk_lines(inline: list[Token]) -> None:
    """A line break inside a Japanese paragraph is not a word gap: drop it there (CommonMark
    would print a space, visible between Japanese characters), keep it between Latin words."""
    for i, child in enumerate(inline):
        if child.type != "softbreak" or i == 0 or i + 1 == len(inline):
            continue
        before, after = inline[i - 1].content, inline[i + 1].content
        if before and after and (_wide(before[-1]) or _wide(after[0])):
            child.type, child.content = "text", ""


def render_html(manual: Manual, shots: Path) -> str:
    """The manual as one self-contained HTML page (pictures inlined as data URIs), with a
    table of contents made from its ``##``/``###`` headings."""
    md = _parser()
    tokens = md.parse(manual.source.read_text(encoding="utf-8"))
    toc: list[tuple[int, str, str]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag in ("h2", "h3"):
            anchor = f"s{len(toc) + 1}"
            tok.attrSet("id", anchor)
            toc.append((int(tok.tag[1]), anchor, tokens[i + 1].content))
        inline = tok.children or []
        _join_cjk_lines(inline)
        for child in inline:
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                path = (shots / src[len(SHOT_SCHEME):] if src.startswith(SHOT_SCHEME)
                        else manual.source.parent / src)
                child.attrSet("src", _data_uri(path))
    body = md.renderer.render(tokens, md.options, {})
    # the cover: the title, the opening paragraphs, then the contents before the first section
    items = "".join(f'<li class="toc{lvl}"><a href="#{a}">{html.escape(t)}</a></li>'
                    for lvl, a, t in toc)
    nav = f'<nav class="toc"><h2>目次</h2><ol>{items}</ol></nav>'
    body = body.replace("<h2", nav + "<h2", 1)
    return (f'<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            f"<title>{html.escape(manual.title)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


CSS = """
@page { size: A4; margin: 18mm 17mm 20mm 17mm; }
html { font-family: "Noto Sans CJK JP", "Noto Sans JP", sans-serif; font-size: 10.5pt;
       line-height: 1.7; color: #111; }
body { margin: 0; }
h1 { font-family: "Noto Serif CJK JP", serif; font-size: 24pt; margin: 40mm 0 6mm;
     border-bottom: 2px solid #234; padding-bottom: 4mm; }
h2 { font-size: 15pt; border-left: 5px solid #234; padding-left: 3mm; margin-top: 9mm;
     break-after: avoid; }
h1 + p + p, h2 { break-before: auto; }
h3 { font-size: 12pt; margin-top: 6mm; break-after: avoid; }
nav.toc { break-after: page; }
nav.toc h2 { border: 0; padding: 0; }
nav.toc ol { list-style: none; padding: 0; }
nav.toc li.toc3 { padding-left: 2em; font-size: 9.5pt; }
nav.toc a { color: #111; text-decoration: none; }
img { display: block; max-width: 100%; max-height: 110mm; margin: 3mm auto;
      border: 1px solid #999; break-inside: avoid; }
img[src^="data:image/svg"] { border: 0; max-height: 160mm; }
.caption { display: block; margin-bottom: 2mm; }
p:has(> img) { text-align: center; font-size: 9pt; color: #333; break-inside: avoid; }
table { border-collapse: collapse; width: 100%; margin: 3mm 0; font-size: 9.5pt;
        break-inside: avoid; }
th, td { border: 1px solid #888; padding: 1.5mm 2mm; text-align: left; vertical-align: top; }
th { background: #e8edf2; }
code { font-family: "Noto Sans Mono CJK JP", monospace; font-size: 9pt; background: #f2f2f2;
       padding: 0 0.5mm; }
pre { background: #f2f2f2; padding: 2.5mm; white-space: pre-wrap; break-inside: avoid; }
pre code { padding: 0; }
blockquote { border-left: 3px solid #c60; margin: 3mm 0; padding: 0.5mm 4mm; background: #fff6ee; }
"""

FOOTER = ('<div style="font-size:8pt;width:100%;text-align:center;color:#555;'
          'font-family:Noto Sans CJK JP,sans-serif">{title} — '
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')


async def _print(pages: list[tuple[str, str, Path]], chromium: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium))
        try:
            page = await browser.new_page()
            for title, doc, out in pages:
                await page.set_content(doc, wait_until="load")
                await page.pdf(path=str(out), format="A4", print_background=True,
                               display_header_footer=True, header_template="<div></div>",
                               footer_template=FOOTER.format(title=html.escape(title)),
                               margin={"top": "18mm", "bottom": "20mm", "left": "17mm",
                                       "right": "17mm"})
        finally:
            await browser.close()


def build(out: Path, shots: Path = DEFAULT_SHOTS, *, fresh_since: float | None = None,
          names: list[str] | None = None, sources: Path = SOURCES,
          chromium: Path = CHROMIUM) -> list[Path]:
    """Check every picture first, then write ``NAME.html`` and ``NAME.pdf`` per manual into
    ``out``; returns the PDFs. Nothing is written when a picture is refused."""
    manuals = [load(n, sources) for n in (names or list(MANUALS))]
    check_pictures(manuals, shots, fresh_since)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, Path]] = []
    for m in manuals:
        doc = render_html(m, shots)
        stem = MANUALS.get(m.name, m.name)
        (out / f"{stem}.html").write_text(doc, encoding="utf-8")
        jobs.append((m.title, doc, out / f"{stem}.pdf"))
    asyncio.run(_print(jobs, chromium))
    return [pdf for _, _, pdf in jobs]


def _since(value: str) -> float:
    """``--fresh-since``: seconds since the epoch, or an ISO time (local time if no offset)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"時刻の形式が違います / not a time: {value!r} (epoch seconds or ISO 8601)") from exc


def _run(args: argparse.Namespace) -> int:
    try:
        pdfs = build(args.out, args.shots, fresh_since=args.fresh_since, names=args.only,
                     chromium=args.chromium)
    except ManualError as exc:
        print(exc, file=sys.stderr)
        return 1
    for pdf in pdfs:
        print(f"マニュアルを作成しました / manual written: {pdf}")
    return 0


def add_parsers(subparsers: Any) -> None:
    """``madoguchi manuals build``; ``edge.cli`` calls this with its subparsers."""
    p = subparsers.add_parser("manuals", help="the Japanese manuals as PDF (provisioning/manuals)")
    sub = p.add_subparsers(dest="manuals_command", required=True)
    b = sub.add_parser("build", help="Markdown → PDF with the browser tests' screenshots")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output folder (default: {DEFAULT_OUT})")
    b.add_argument("--shots", type=Path, default=DEFAULT_SHOTS,
                   help="screenshots folder, the target of shots: links (default: test-artifacts)")
    b.add_argument("--fresh-since", type=_since, default=None, metavar="TIME",
                   help="refuse screenshots taken before TIME (epoch seconds or ISO 8601); "
                        "CI passes the start of its test run")
    b.add_argument("--only", action="append", choices=list(MANUALS),
                   help="build only this manual (repeatable)")
    b.add_argument("--chromium", type=Path, default=CHROMIUM,
                   help=f"Chromium binary (default: {CHROMIUM})")
    b.set_defaults(func=_run)
