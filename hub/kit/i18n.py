"""One way to read a module's texts: ``<module>/i18n/<lang>.json``, checked when loaded.

Why checked at load: staff and translators edit these files without touching code, and a
missing translation must fail when the hub starts, not on a resident's phone. A module that
ships only some languages (staff pages: ja, en) names them; ``required=False`` lets a language
lack keys, which are then taken from Japanese, else English (``FALLBACK``).
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

DEFAULT = "ja"
FALLBACK: tuple[str, ...] = ("ja", "en")
Catalogue = dict[str, dict[str, Any]]  # lang -> texts (nested dicts allowed)


def missing_keys(texts: Mapping[str, Any], reference: Mapping[str, Any],
                 prefix: str = "") -> list[str]:
    """Dotted paths present in ``reference`` but not in ``texts`` (nested dicts compared
    key by key; a leaf of another type counts as present)."""
    out: list[str] = []
    for key, ref in reference.items():
        path = f"{prefix}{key}"
        if key not in texts:
            out.append(path)
        elif isinstance(ref, Mapping) and isinstance(texts[key], Mapping):
            out.extend(missing_keys(texts[key], ref, f"{path}."))
    return out


def _filled(texts: dict[str, Any], *fallbacks: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(texts)
    for fb in fallbacks:
        for key, value in fb.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, Mapping) and isinstance(out[key], dict):
                out[key] = _filled(out[key], value)
    return out


def load_catalogue(folder: Path, langs: Iterable[str], *, prefix: str = "",
                   required: bool = True) -> Catalogue:
    """``folder/<prefix><lang>.json`` for each of ``langs``. Every language is compared with
    every other (keys, nested too): with ``required`` any difference raises ``ValueError``
    naming the file and the keys; without, a missing key falls back to ja, then en."""
    langs = tuple(langs)
    texts: Catalogue = {lang: json.loads((folder / f"{prefix}{lang}.json").read_text("utf-8"))
                        for lang in langs}
    problems = []
    for lang in langs:
        gaps = sorted({k for other in langs if other != lang
                       for k in missing_keys(texts[lang], texts[other])})
        if gaps:
            problems.append(f"{folder.name}/{prefix}{lang}.json lacks {gaps}")
    if problems and required:
        raise ValueError("i18n: " + "; ".join(problems))
    fallbacks = [texts[f] for f in FALLBACK if f in texts]
    return {lang: _filled(t, *fallbacks) for lang, t in texts.items()}


def pick_lang(request: web.Request, langs: Container[str]) -> str:
    """``?lang=`` first, then the browser's Accept-Language (in its order), else Japanese."""
    asked = request.query.get("lang", "")
    if asked in langs:
        return asked
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in langs:
            return code
    return DEFAULT
