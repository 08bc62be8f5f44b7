"""Every text a visitor, resident or staff member reads uses the glossary's terms (issue 11).

Sources: the screens' i18n tables (kiosk-ui, hub), the notice and voice templates, the printed
ticket's labels, the edge's refusal messages and the sample sites' visitor texts. Python sources
are read with ``ast`` (never imported) so a planted copy under ``tmp_path`` is checked the same way.
"""

from __future__ import annotations

import ast
import json
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.glossary import LANGS, Glossary, default, load

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Found:
    source: str  # file and key
    lang: str
    text: str


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")


def _lang_of(name: str) -> str:
    """ja.json, webticket.ja.json -> ja."""
    return name.removesuffix(".json").rsplit(".", 1)[-1]


def _json_texts(root: Path) -> Iterator[Found]:
    files = sorted((root / "kiosk-ui/i18n").glob("**/*.json")) + sorted(
        (root / "hub/web/i18n").glob("*.json")) + sorted(
        (root / "hub/reservations/i18n").glob("*.json"))  # residents' reservation pages
    for f in files:
        lang = _lang_of(f.name)
        for key, text in _leaves(json.loads(f.read_text(encoding="utf-8")), ""):
            yield Found(f"{f.relative_to(root)}:{key}", lang, text)


def _toml_tables(root: Path) -> Iterator[Found]:
    for rel in ("hub/notify/texts.toml", "edge/devices/voice/templates.toml"):
        data = tomllib.loads((root / rel).read_text(encoding="utf-8"))
        for lang, table in data.items():
            for key, text in _leaves(table, ""):
                yield Found(f"{rel}:[{lang}].{key}", lang, text)


def _site_texts(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """Texts of a site file: every table with language keys is a Text."""
    if isinstance(value, dict):
        if any(lang in value and isinstance(value[lang], str) for lang in LANGS):
            for lang in LANGS:
                if isinstance(value.get(lang), str):
                    yield path, lang, value[lang]
            return
        for k, v in value.items():
            yield from _site_texts(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _site_texts(v, f"{path}[{i}]")


def _sites(root: Path) -> Iterator[Found]:
    for f in sorted((root / "sites").glob("*.toml")):
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        for key, lang, text in _site_texts(data, ""):
            yield Found(f"{f.relative_to(root)}:{key}", lang, text)


def _literal(node: ast.expr) -> str | None:
    """A string literal or f-string with ``{}`` for its holes; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _refusals(root: Path) -> Iterator[Found]:
    """``Refused(code, en, ja)`` and ``WebRefusal(code, en, ja)`` messages."""
    for rel in ("edge/domain/commands.py", "edge/domain/web.py"):
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in {"Refused", "WebRefusal"} and len(node.args) >= 3):
                for lang, arg in (("en", node.args[1]), ("ja", node.args[2])):
                    text = _literal(arg)
                    if text is not None:
                        yield Found(f"{rel}:{node.lineno}", lang, text)


def _printer(root: Path) -> Iterator[Found]:
    """The ticket's labels: ``LABELS = {"ja": Labels(ahead="...", ...), ...}``."""
    rel = "edge/devices/printer/texts.py"
    tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for k, v in zip(node.keys, node.values, strict=True):
            if (isinstance(k, ast.Constant) and k.value in LANGS and isinstance(v, ast.Call)
                    and isinstance(v.func, ast.Name) and v.func.id == "Labels"):
                for kw in v.keywords:
                    text = _literal(kw.value)
                    if text is not None:
                        yield Found(f"{rel}:{k.value}.{kw.arg}", str(k.value), text)


def all_texts(root: Path = ROOT) -> list[Found]:
    return [*_json_texts(root), *_toml_tables(root), *_sites(root), *_refusals(root),
            *_printer(root)]


def offences(glossary: Glossary, texts: list[Found]) -> list[str]:
    return [f"{f.source} ({f.lang}): {v.found!r} -> use {v.use!r} ({v.term}) in {f.text!r}"
            for f in texts for v in glossary.violations(f.text, f.lang)]


# --- the checks --------------------------------------------------------------------------------

def test_every_source_is_read() -> None:
    texts = all_texts()
    sources = {f.source.split(":")[0] for f in texts}
    for expected in ("kiosk-ui/i18n/kiosk/ja.json", "kiosk-ui/i18n/ja.json",
                     "hub/web/i18n/zh.json", "hub/notify/texts.toml",
                     "edge/devices/voice/templates.toml", "edge/devices/printer/texts.py",
                     "edge/domain/commands.py", "edge/domain/web.py", "sites/oizumi.toml"):
        assert expected in sources, expected
    by_lang = {lang: sum(1 for f in texts if f.lang == lang) for lang in LANGS}
    assert all(n > 50 for n in by_lang.values()), by_lang


def test_no_forbidden_synonym_anywhere() -> None:
    bad = offences(default(), all_texts())
    assert not bad, "texts use words the glossary forbids:\n" + "\n".join(bad)


def test_core_terms_are_used_in_every_language() -> None:
    """The glossary is not fiction: its word for each core concept appears in the texts."""
    glossary, texts = default(), all_texts()
    missing = []
    for key in ("ticket", "web_ticket", "second_wait", "counter", "office", "waiting_count",
                "absent", "on_hold", "recall", "kiosk", "reservation"):
        for lang in LANGS:
            word = glossary[key].word(lang)
            if not any(word.casefold() in f.text.casefold() for f in texts if f.lang == lang):
                missing.append(f"{key}/{lang}: {word!r}")
    assert not missing, missing


def test_a_planted_synonym_is_caught(tmp_path: Path) -> None:
    """The check can fail: copies of the sources with one bad string each are flagged."""
    for rel in ("kiosk-ui/i18n", "hub", "edge/domain", "edge/devices", "sites"):
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", "static", "templates")
        shutil.copytree(ROOT / rel, tmp_path / rel, ignore=skip)
    assert offences(default(), all_texts(tmp_path)) == offences(default(), all_texts())
    ja = tmp_path / "kiosk-ui/i18n/kiosk/ja.json"
    table = json.loads(ja.read_text(encoding="utf-8"))
    table["kiosk.planted"] = "インターネット番号札をお持ちの方"
    ja.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    web = tmp_path / "edge/domain/web.py"
    web.write_text(web.read_text(encoding="utf-8").replace(
        '"web_not_offered", f"', '"web_not_offered", f"Waiting again: '), encoding="utf-8")
    en = tmp_path / "kiosk-ui/i18n/kiosk/en.json"
    table = json.loads(en.read_text(encoding="utf-8"))
    table["kiosk.planted"] = "Wait soon"
    en.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    new = set(offences(default(), all_texts(tmp_path))) - set(offences(default(), all_texts()))
    assert any("kiosk/ja.json:kiosk.planted" in o and "インターネット番号札" in o for o in new)
    assert any("kiosk/en.json:kiosk.planted" in o and "wait soon" in o for o in new)
    assert any("edge/domain/web.py" in o and "waiting again" in o for o in new), new


def test_glossary_shape(tmp_path: Path) -> None:
    raw = json.loads((ROOT / "kiosk-ui/glossary.json").read_text(encoding="utf-8"))
    glossary = load(ROOT / "kiosk-ui/glossary.json")
    assert set(glossary.terms) == set(raw["terms"])
    for term in glossary.terms.values():
        for lang in LANGS:
            assert term.words[lang].strip(), (term.key, lang)
            # a term never forbids its own word (that would make every use an offence)
            assert not Glossary({term.key: term}).violations(term.words[lang], lang), term.key
    broken = tmp_path / "g.json"
    broken.write_text(json.dumps({"terms": {"x": {"ja": "札"}}}), encoding="utf-8")
    with pytest.raises(ValueError, match="lacks en"):
        load(broken)


_WORDS = [(t.key, lang, bad) for t in default().terms.values()
          for lang, bads in t.avoid.items() for bad in bads]


@given(st.sampled_from(_WORDS), st.text(alphabet="あいうえお 。、abc", max_size=12),
       st.text(alphabet="かきくけこ 。、xyz", max_size=12))
def test_a_forbidden_word_is_found_wherever_it_sits(
        word: tuple[str, str, str], before: str, after: str) -> None:
    key, lang, bad = word
    text = f"{before} {bad} {after}"
    assert any(v.term == key and v.found == bad for v in default().violations(text, lang)), text


@given(st.sampled_from(["{kiosk}", "/ui/kiosk.html?kiosk=K1", "kiosks_total={n}"]))
def test_placeholders_and_urls_are_not_words(code: str) -> None:
    assert not default().violations(f"Open {code} now", "en")
