"""The shared vocabulary (``kiosk-ui/glossary.json``) as Python sees it.

Why a file in kiosk-ui/: the screens fetch it from ``/ui/glossary.json`` and the edge, the hub
and the tests read the same file, so a term is fixed in one place (issue 11). The wheel ships
kiosk-ui as ``edge/_data/kiosk-ui``; :func:`edge.paths.data_dir` finds either location.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from edge.paths import data_dir

LANGS: tuple[str, ...] = ("ja", "en", "zh", "ko")


@dataclass(frozen=True, slots=True)
class Term:
    """One concept: its word per language and the synonyms that must not appear."""

    key: str
    words: dict[str, str]
    avoid: dict[str, tuple[str, ...]]

    def word(self, lang: str) -> str:
        return self.words.get(lang) or self.words["en"]


@dataclass(frozen=True, slots=True)
class Violation:
    """A forbidden synonym found in a text."""

    term: str
    lang: str
    found: str
    use: str  # the glossary's word instead


class Glossary:
    """Terms by concept key, and a checker for texts."""

    def __init__(self, terms: dict[str, Term]) -> None:
        self.terms = terms

    def __getitem__(self, key: str) -> Term:
        return self.terms[key]

    def violations(self, text: str, lang: str) -> list[Violation]:
        """Forbidden synonyms of ``lang`` in ``text``; Japanese ones are checked in every language
        too (untranslated Japanese leaks into other languages' files)."""
        found: list[Violation] = []
        bare = _strip_code(text)
        for term in self.terms.values():
            for avoid_lang in dict.fromkeys((lang, "ja")):
                for bad in term.avoid.get(avoid_lang, ()):
                    if _contains(bare, bad, avoid_lang):
                        found.append(Violation(term.key, avoid_lang, bad, term.word(avoid_lang)))
        return found


_CODE = re.compile(r"\{[^{}]*\}|\S*[/?=&]\S*")


def _strip_code(text: str) -> str:
    """Drop placeholders and URL-like tokens: ``{kiosk}`` or ``?kiosk=K1`` are not words."""
    return _CODE.sub(" ", text)


def _contains(text: str, phrase: str, lang: str) -> bool:
    if lang == "en":
        word = rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
        return re.search(word, text, re.IGNORECASE) is not None
    return phrase.casefold() in text.casefold()


def parse(raw: dict[str, Any]) -> Glossary:
    """Build a :class:`Glossary` from the JSON document; raises ``ValueError`` on a bad shape."""
    terms: dict[str, Term] = {}
    for key, entry in raw.get("terms", {}).items():
        missing = [lang for lang in LANGS if not isinstance(entry.get(lang), str)]
        if missing:
            raise ValueError(f"glossary term {key!r} lacks {', '.join(missing)}")
        avoid = entry.get("avoid", {})
        terms[key] = Term(key, {lang: entry[lang] for lang in LANGS},
                          {lang: tuple(avoid.get(lang, ())) for lang in LANGS})
    return Glossary(terms)


def load(path: Path | None = None) -> Glossary:
    """The glossary at ``path`` (default: the shipped ``kiosk-ui/glossary.json``)."""
    if path is None:
        return default()
    return parse(json.loads(path.read_text(encoding="utf-8")))


@cache
def default() -> Glossary:
    return parse(json.loads((data_dir("kiosk-ui") / "glossary.json").read_text(encoding="utf-8")))
