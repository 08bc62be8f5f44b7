"""Map data locations in a TOML document to source line numbers.

Why: ``tomllib`` returns plain dicts without positions, yet a config error is only useful when it
names the line to fix. This small scanner re-reads the (already valid) text and records the line
of every table header, ``[[array of tables]]`` entry, key, inline-table key and array element,
keyed by the same tuples pydantic uses as error locations, e.g. ``("counters", 3, "services", 1)``.
"""

from __future__ import annotations

import re
from bisect import bisect_right

Loc = tuple[str | int, ...]

_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_KEY = re.compile(rf"{_PART}(?:[ \t]*\.[ \t]*{_PART})*")
_PARTS = re.compile(_PART)
_STRING = re.compile(
    r'"""[\s\S]*?"""(?!")|\'\'\'[\s\S]*?\'\'\'(?!\')|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\''
)
_SCALAR = re.compile(r"[^,\]}\n#]+")
_BLANK = re.compile(r"(?:[ \t\r\n]|#[^\n]*)*")


def _unquote(part: str) -> str:
    return part[1:-1] if part[:1] in "\"'" else part


class _Scanner:
    def __init__(self, text: str) -> None:
        self.t = text
        self.p = 0
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.lines: dict[Loc, int] = {}
        self.aot: dict[Loc, int] = {}  # array-of-tables path -> index of its current entry

    def note(self, loc: Loc) -> None:
        self.lines.setdefault(loc, bisect_right(self.starts, self.p))

    def skip(self) -> None:
        m = _BLANK.match(self.t, self.p)
        self.p = m.end() if m else self.p

    def note_key(self, base: Loc, parts: tuple[str, ...]) -> Loc:
        """Note a (dotted) key and each of its prefixes: ``a.b = 1`` defines table ``a``."""
        for n in range(1, len(parts) + 1):
            self.note((*base, *parts[:n]))
        return (*base, *parts)

    def key(self) -> tuple[str, ...]:
        m = _KEY.match(self.t, self.p)
        if m is None:
            raise ValueError("key expected")
        self.p = m.end()
        return tuple(_unquote(x) for x in _PARTS.findall(m.group()))

    def resolve(self, names: tuple[str, ...]) -> Loc:
        """Header names -> data location, inserting the current index of each array of tables."""
        loc: Loc = ()
        for name in names:
            loc += (name,)
            self.note(loc)  # `[a.b]` defines table `a` too
            if loc in self.aot:
                loc += (self.aot[loc],)
        return loc

    def value(self, loc: Loc) -> None:
        self.skip()
        c = self.t[self.p]
        if c in "[{":
            self.p += 1
            idx = 0
            while True:
                self.skip()
                if self.t[self.p] in "]}":
                    self.p += 1
                    return
                if c == "[":
                    self.note((*loc, idx))
                    self.value((*loc, idx))
                    idx += 1
                else:
                    sub = self.note_key(loc, self.key())
                    self.skip()
                    self.p += 1  # '='
                    self.value(sub)
                self.skip()
                if self.t[self.p] == ",":
                    self.p += 1
        else:
            m = _STRING.match(self.t, self.p) or _SCALAR.match(self.t, self.p)
            self.p = m.end() if m else self.p + 1

    def run(self) -> dict[Loc, int]:
        table: Loc = ()
        while True:
            self.skip()
            if self.p >= len(self.t):
                return self.lines
            if self.t.startswith("[[", self.p):
                self.p += 2
                self.skip()
                names = self.key()
                loc = (*self.resolve(names[:-1]), names[-1])
                self.aot[loc] = self.aot.get(loc, -1) + 1
                table = (*loc, self.aot[loc])
                self.note(loc)
                self.note(table)
                self.p = self.t.index("]]", self.p) + 2
            elif self.t[self.p] == "[":
                self.p += 1
                self.skip()
                table = self.resolve(self.key())
                self.note(table)
                self.p = self.t.index("]", self.p) + 1
            else:
                loc = self.note_key(table, self.key())
                self.p = self.t.index("=", self.p) + 1
                self.value(loc)


def key_lines(text: str) -> dict[Loc, int]:
    """Line (1-based) of each location in ``text``, which must be valid TOML.

    Best effort: on anything unexpected, returns what was found so far.
    """
    scanner = _Scanner(text)
    try:
        return scanner.run()
    except (ValueError, IndexError):
        return scanner.lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """Line of ``loc``, or of its longest located prefix (a missing key -> its table's line)."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None
