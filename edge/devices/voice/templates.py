"""What is said for a call, per language: staff-editable templates and the composed phrases.

Why templates in a TOML file: wording is a ward's decision (and changes with signage), not a code
change. The packaged ``templates.toml`` is the default; a site file overrides it key by key and
is checked strictly, so a typo is an error naming the file, line and key instead of a silent
"{nmber}" spoken to the hall.

Why phrases: a template is cut after each 、。,. so that a phrase without the number (the
counter phrase) is the same for every call and can be rendered once, ahead of time.

Why two Japanese texts: Open JTalk, the default engine, reads natural Japanese (kanji, and the
number as digits: 「123番の方、3番窓口へお越しください。」) with a natural accent; espeak-ng,
the fallback, reads kana only, so ``call_kana``/``recall_kana`` say the same in kana (the number
and the names then come as kana readings too).
"""

from __future__ import annotations

import logging
import re
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.devices.voice import numbers_ja
from edge.devices.voice.numbers_intl import NumberStyle, numerals_in_text, spoken
from edge.toml_lines import key_lines

_LOGGER = logging.getLogger(__name__)

LANGUAGES = ("ja", "en", "zh", "ko")
KINDS = ("call", "recall")
KANA_KINDS = {"call": "call_kana", "recall": "recall_kana"}  # [ja] only, for espeak-ng
PLACEHOLDERS = ("number", "counter", "service")
DEFAULT_PATH = Path(__file__).with_name("templates.toml")
KANA_KEY = "ja-Hira"  # names[KANA_KEY]: a kana reading of the Japanese name, for espeak-ng

Kind = Literal["call", "recall"]
_PHRASE_END = re.compile(r"(?<=[、。，,.!?！？])\s*")


class TemplateError(ValueError):
    """A templates file is wrong; the message names the file, line and key of each problem."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """One call of a number at a counter, with the names to speak in each language."""

    number: int
    counter_id: str
    counter_names: Mapping[str, str] = field(default_factory=dict)  # lang -> name; "ja-Hira"
    service_names: Mapping[str, str] = field(default_factory=dict)
    recall: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """A piece spoken and cached on its own; those with "number" differ for every ticket."""

    text: str
    placeholders: frozenset[str]  # the template's placeholders in this phrase


@dataclass(frozen=True, slots=True)
class Templates:
    texts: Mapping[str, Mapping[str, str]]  # lang -> kind -> template
    origin: Mapping[tuple[str, str], str]  # (lang, kind) -> "file:line", for error messages

    def get(self, lang: str, kind: Kind, kana: bool = False) -> str:
        """The template; ``kana``: its kana form (Japanese, for engines without kanji)."""
        key = KANA_KINDS[kind] if kana and lang == "ja" else kind
        try:
            return self.texts[lang].get(key) or self.texts[lang][kind]
        except KeyError:
            raise TemplateError(f"no {kind!r} template for language {lang!r}") from None

    def phrases(self, a: Announcement, lang: str, *, style: NumberStyle = "words",
                kana_only: bool = False) -> list[Phrase]:
        """The announcement's phrases in ``lang``; ``kana_only`` for engines without kanji."""
        natural = lang == "ja" and not kana_only and style == "words"
        values = {
            "number": str(a.number) if natural else spoken(lang, a.number, style),
            "counter": name_in(a.counter_names, lang, kana_only) or a.counter_id,
            "service": name_in(a.service_names, lang, kana_only),
        }
        template = self.get(lang, "recall" if a.recall else "call", kana=kana_only)
        return [Phrase(part.format_map(values), fields(part))
                for part in _PHRASE_END.split(template) if part.strip()]

    def compose(self, a: Announcement, languages: Sequence[str], *,
                style: NumberStyle = "words", kana_only: bool = False) -> list[tuple[str, str]]:
        """``[(lang, text), ...]`` for the configured languages, in order."""
        sep = {"ja": "", "zh": ""}
        return [(lang, sep.get(lang, " ").join(
                    p.text for p in self.phrases(a, lang, style=style, kana_only=kana_only)))
                for lang in languages]


def name_in(names: Mapping[str, str], lang: str, kana_only: bool = False) -> str:
    """A counter or service name to speak in ``lang``, falling back to English, then Japanese."""
    if lang == "ja":
        name = (names.get(KANA_KEY) or names.get("ja") or "") if kana_only else (
            names.get("ja") or names.get(KANA_KEY) or "")
        if not kana_only:
            return name
        kana, unread = numbers_ja.to_kana(name)
        if unread:
            _LOGGER.warning("no kana reading for %r in %r: give the name a %r reading",
                            unread, name, KANA_KEY)
            kana = numbers_ja.KANJI.sub("", kana)
        return kana
    name = names.get(lang) or names.get("en") or names.get("ja") or ""
    return numerals_in_text(lang, name)


def load_templates(site_path: Path | None = None) -> Templates:
    """The packaged templates, overridden key by key by ``site_path`` if given."""
    texts: dict[str, dict[str, str]] = {}
    origin: dict[tuple[str, str], str] = {}
    errors: list[str] = []
    for path in (DEFAULT_PATH, site_path):
        if path is None:
            continue
        found = _read(path)
        for (lang, kind), (text, where) in found.items():
            texts.setdefault(lang, {})[kind] = text
            origin[(lang, kind)] = where
        for kind, kana in KANA_KINDS.items():  # a new [ja] text needs its kana form too
            if ("ja", kind) not in found or ("ja", kana) in found:
                continue
            text, where = found[("ja", kind)]
            if numbers_ja.KANJI.search(text):
                errors.append(f"{where}: [ja].{kind} has kanji: also give [ja].{kana}, the same "
                              "in kana (espeak-ng, the fallback engine, cannot read kanji)")
            else:
                texts["ja"][kana] = text
                origin[("ja", kana)] = where
    if errors:
        raise TemplateError("\n".join(errors))
    missing = [f"[{lang}].{kind}" for lang in texts for kind in KINDS if kind not in texts[lang]]
    if missing:
        raise TemplateError(f"{site_path}: missing {', '.join(missing)}")
    return Templates(texts, origin)


def _read(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read templates: {exc}") from exc
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML: {exc}") from exc
    lines = key_lines(source)
    errors: list[str] = []
    out: dict[tuple[str, str], tuple[str, str]] = {}

    def where(*loc: str) -> str:
        line = lines.get(loc)
        return f"{path}:{line}" if line else str(path)

    for lang, table in doc.items():
        if lang not in LANGUAGES:
            errors.append(f"{where(lang)}: [{lang}]: unknown language "
                          f"(known: {', '.join(LANGUAGES)})")
            continue
        if not isinstance(table, dict):
            errors.append(f"{where(lang)}: {lang}: must be a table [{lang}]")
            continue
        for kind, text in table.items():
            key = f"[{lang}].{kind}"
            known = [*KINDS, *KANA_KINDS.values()] if lang == "ja" else list(KINDS)
            if kind not in known:
                errors.append(f"{where(lang, kind)}: {key}: unknown key "
                              f"(known: {', '.join(known)})")
            elif not isinstance(text, str):
                errors.append(f"{where(lang, kind)}: {key}: must be a string")
            else:
                errors += [f"{where(lang, kind)}: {key}: {e}"
                           for e in check(lang, text, kana=kind in KANA_KINDS.values())]
                out[(lang, kind)] = (text, where(lang, kind))
    if errors:
        raise TemplateError("\n".join(errors))
    return out


def fields(template: str) -> frozenset[str]:
    return frozenset(f for _, f, _, _ in string.Formatter().parse(template) if f is not None)


def check(lang: str, text: str, kana: bool = False) -> list[str]:
    """Problems with one template: placeholders, braces, kanji in a kana form."""
    problems: list[str] = []
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"{exc} (write {{{{ and }}}} for literal braces)"]
    names = [f for _, f, _, _ in fields if f is not None]
    for (_, name, spec, conv) in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            problems.append(f"unknown placeholder {{{name}}} "
                            f"(allowed: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        elif spec or conv:
            problems.append(f"placeholder {{{name}}} takes no format or conversion")
    if "number" not in names:
        problems.append("the template must say {number}")
    if lang == "ja" and kana and (kanji := numbers_ja.KANJI.findall(text)):
        problems.append(f"write this in kana, espeak-ng cannot read kanji: {''.join(kanji)}")
    return problems
