"""Notice texts per language (W6): the shipped ``texts.toml``, overridden by a staff-edited file.

Why strict validation: a typo in a placeholder (``{numbr}``) would otherwise surface as a failed
notice at the moment a visitor is waiting for it. Loading refuses unknown languages, keys and
placeholders with one message per problem (file, language, key), so a bad edit is caught when
the hub starts or the file is reloaded, never when a notice is sent.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edge.domain.model import LANGS

SHIPPED = Path(__file__).with_name("texts.toml")
KINDS = ("ahead", "next", "called")
COMMON = frozenset({"number", "service", "site", "url"})
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "ahead_subject": COMMON | {"ahead"},
    "ahead": COMMON | {"ahead"},
    "next_subject": COMMON,
    "next": COMMON,
    "called_subject": COMMON | {"counter"},
    "called": COMMON | {"counter"},
}
MAX_TEXT = 1000


class TextsError(ValueError):
    """The texts file cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source, self.problems = source, problems


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@dataclass(frozen=True)
class Texts:
    by_lang: dict[str, dict[str, str]]

    def render(self, kind: str, lang: str, **values: object) -> Rendered:
        """The subject and body of ``kind`` (ahead | next | called) in ``lang`` (ja fallback)."""
        table = self.by_lang.get(lang) or self.by_lang["ja"]
        fill = {k: str(v) for k, v in values.items()}
        return Rendered(table[f"{kind}_subject"].format_map(_Defaults(fill)),
                        table[kind].format_map(_Defaults(fill)))


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _fields(text: str) -> tuple[set[str], list[str]]:
    """Placeholder names in ``text`` and problems with its syntax."""
    names: set[str] = set()
    problems: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return names, [f"broken braces ({exc}); write {{{{ and }}}} for literal braces"]
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            problems.append(f"placeholder {{{name}}} must not have a format or conversion")
        names.add(name)
    return names, problems


def check(data: object, source: str, *, complete: bool) -> dict[str, dict[str, str]]:
    """Validate a parsed texts table. ``complete``: every language needs every key."""
    problems: list[str] = []
    out: dict[str, dict[str, str]] = {}
    if not isinstance(data, dict):
        raise TextsError(source, ["the file must be a TOML table of languages"])
    for lang, table in data.items():
        if lang not in LANGS:
            problems.append(f"unknown language [{lang}] (use {', '.join(LANGS)})")
            continue
        if not isinstance(table, dict):
            problems.append(f"[{lang}] must be a table")
            continue
        out[lang] = {}
        for key, text in table.items():
            where = f"[{lang}] {key}"
            if key not in PLACEHOLDERS:
                problems.append(f"{where}: unknown key (use {', '.join(PLACEHOLDERS)})")
                continue
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                problems.append(f"{where}: must be a non-empty text of at most {MAX_TEXT} chars")
                continue
            names, syntax = _fields(text)
            problems += [f"{where}: {p}" for p in syntax]
            allowed = PLACEHOLDERS[key]
            for name in sorted(names - allowed):
                problems.append(f"{where}: unknown placeholder {{{name}}} (allowed: "
                                + " ".join(f"{{{a}}}" for a in sorted(allowed)) + ")")
            out[lang][key] = text
        if complete:
            problems += [f"[{lang}] {k}: missing" for k in PLACEHOLDERS if k not in out[lang]]
    if complete and "ja" not in out:
        problems.append("[ja] is required (the fallback language)")
    if problems:
        raise TextsError(source, problems)
    return out


def parse(text: str, source: str = "<texts>", *, complete: bool = False) -> dict[str, dict[str,
                                                                                        str]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TextsError(source, [f"not valid TOML: {exc}"]) from None
    return check(data, source, complete=complete)


def load(path: str | Path | None = None) -> Texts:
    """The shipped texts with the staff file (if any) laid over them."""
    merged = parse(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED), complete=True)
    if path is not None:
        try:
            body = Path(path).read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise TextsError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
        except UnicodeDecodeError:
            raise TextsError(str(path), ["not UTF-8 / UTF-8ではありません"]) from None
        for lang, table in parse(body, str(path)).items():
            merged.setdefault(lang, {}).update(table)
    return Texts(merged)
