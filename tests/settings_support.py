"""The settings editor's form as a browser would post it, for HTTP-level tests: the fields of
the page's ``form.editor`` (hidden inputs, text, ticked boxes, selected options, textareas),
in page order, with values changed by name and a button's ``action`` added."""

from __future__ import annotations

from html.parser import HTMLParser


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "editor" in a.get("class", "").split():
            self.inside = True
        if not self.inside or ("name" not in a and tag != "option"):
            return
        if tag == "input" and a.get("type") != "submit":
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select is not None and "selected" in a:
            self.fields.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def editor_fields(html: str) -> list[tuple[str, str]]:
    """The fields the editor form would post, in page order (a textarea's leading newline,
    which HTML drops, is dropped too)."""
    form = _Form()
    form.feed(html)
    return [(k, v[1:] if v.startswith("\n") else v) for k, v in form.fields]


def with_values(fields: list[tuple[str, str]], action: str,
                **changes: str) -> list[tuple[str, str]]:
    """``fields`` with the named values replaced (names as in the form: ``site.guidance.ja``
    is passed as ``**{"site.guidance.ja": "…"}``) and the pressed button's ``action``."""
    out = [(k, changes.pop(k)) if k in changes else (k, v) for k, v in fields]
    assert not changes, f"no such fields on the page: {sorted(changes)}"
    return [*out, ("action", action)]
