"""Staff messages in Markdown (spec §6(2)): links on words and bare URLs work, nothing else
that could run, load or mislead gets through."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from hub.notices.message import render_html, render_text


def test_links_on_words_and_bare_urls() -> None:
    html = render_html("詳しくは[区のホームページ](https://www.city.nerima.tokyo.jp/)を、"
                       "質問は https://example.jp/faq?a=1&b=2。")
    assert isinstance(html, Markup)
    assert ('<a href="https://www.city.nerima.tokyo.jp/" rel="noopener noreferrer">'
            "区のホームページ</a>") in html
    assert ('<a href="https://example.jp/faq?a=1&amp;b=2" rel="noopener noreferrer">'
            "https://example.jp/faq?a=1&amp;b=2</a>。") in html


def test_mailto_links_are_allowed() -> None:
    assert 'href="mailto:kazei@example.jp"' in render_html("[係へ](mailto:kazei@example.jp)")


def test_other_schemes_stay_text() -> None:
    for src in ("[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](data:text/html,hi)",
                "[x](vbscript:msgbox)", "[x](/relative)", "[x](file:///etc/passwd)",
                "<javascript:alert(1)>", "[x](ftp://example.jp/)"):
        html = render_html(src)
        assert "<a" not in html, src
        assert "x" in html or "alert(1)" in html  # shown as written


def test_raw_html_is_escaped() -> None:
    html = render_html('<script>alert(1)</script>\n\n<b onclick="x()">太字</b>')
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<b" not in html
    assert "&lt;b onclick=" in html


def test_images_become_their_alt_text() -> None:
    html = render_html("![区のロゴ](https://evil.example/pixel.png)")
    assert "<img" not in html
    assert "evil.example" not in html
    assert "区のロゴ" in html


def test_headings_are_downgraded() -> None:
    html = render_html("# 大事なお知らせ\n\n本文")
    assert "<h1" not in html
    assert "<p><strong>大事なお知らせ</strong></p>" in html


def test_line_breaks_are_kept() -> None:
    assert "一行目<br />\n二行目" in render_html("一行目\n二行目")


def test_plain_text_for_the_email() -> None:
    text = render_text(
        "# お知らせ\n\n詳しくは[区のホームページ](https://www.city.nerima.tokyo.jp/)をご覧ください。\n"
        "質問: https://example.jp/faq\n\n"
        "- 一つ目は**大事**です\n- [係](mailto:kazei@example.jp)へ\n\n"
        "1. 最初\n2. 次\n\n![図](https://x.example/a.png)\n\n<b>タグ</b>")
    assert text == (
        "お知らせ\n\n"
        "詳しくは区のホームページ (https://www.city.nerima.tokyo.jp/)をご覧ください。\n"
        "質問: https://example.jp/faq\n\n"
        "・一つ目は大事です\n・係 (kazei@example.jp)へ\n\n"
        "1. 最初\n2. 次\n\n図\n\n<b>タグ</b>")


def test_unsafe_links_stay_as_written_in_text() -> None:
    assert render_text("[x](javascript:alert(1))") == "[x](javascript:alert(1))"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


ALLOWED_TAGS = {"p", "a", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "br",
                "hr"}
PIECES = st.sampled_from([
    "<script>", "</script>", "<img src=x onerror=alert(1)>", "javascript:", "JAVASCRIPT:",
    "java\tscript:", "[a](", ")", "](", "![", "<", ">", "\"", "'", " onload=", "onclick=x",
    "<a href=", "&#106;avascript:", "http://x.jp", "https://例え.jp/", "mailto:", "data:",
    "\n", "\n\n", "# ", "- ", "`", "**", "<https://", "<javascript:", "%6A", "\\", "&", "＜",
])


@settings(max_examples=400)
@given(st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=14).map("".join))
def test_no_output_can_run_or_load_anything(md: str) -> None:
    html = str(render_html(md))
    low = html.lower()
    assert "<script" not in low
    assert "<img" not in low
    assert "javascript:" not in low
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in ALLOWED_TAGS
        for name, value in attrs:
            assert not name.lower().startswith("on")
            assert name in ("href", "rel")
            if name == "href":
                assert re.match(r"(?i)^(https?://|mailto:)", value or "")
                assert "javascript:" not in (value or "").lower()
            if name == "rel":
                assert value == "noopener noreferrer"
    render_text(md)  # never raises
