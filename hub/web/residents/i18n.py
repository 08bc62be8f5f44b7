"""Resident page texts in ja/en/zh/ko (``hub/web/i18n/*.json``), and the language of a request.

Why files of their own: staff and translators edit texts without touching code; every language
must have every key (checked at load, so a missing translation fails at start, not on a phone).
"""

from __future__ import annotations

import json
import math
from collections.abc import Container
from pathlib import Path
from typing import Any

from aiohttp import web

I18N = Path(__file__).resolve().parent.parent / "i18n"
LANGS: tuple[str, ...] = ("ja", "en", "zh", "ko")
DEFAULT = "ja"


def load_texts() -> dict[str, dict[str, Any]]:
    texts = {lang: json.loads((I18N / f"{lang}.json").read_text(encoding="utf-8"))
             for lang in LANGS}
    keys = set(texts[DEFAULT])
    for lang, t in texts.items():
        if set(t) != keys:
            raise ValueError(f"i18n/{lang}.json: keys differ from {DEFAULT}.json: "
                             f"{sorted(keys ^ set(t))}")
    return texts


TEXTS = load_texts()


def pick_lang(request: web.Request, langs: Container[str] | None = None) -> str:
    """``?lang=`` first, then the browser's Accept-Language (in its order), else Japanese;
    among ``langs`` (default: the languages of these pages' texts)."""
    known = TEXTS if langs is None else langs
    asked = request.query.get("lang", "")
    if asked in known:
        return asked
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in known:
            return code
    return DEFAULT


def minutes(low_s: int, high_s: int) -> tuple[int, int]:
    """A wait range in whole minutes, never an empty range (the page and its script agree)."""
    lo = low_s // 60
    return lo, max(lo + 1, math.ceil(high_s / 60))


def est_text(t: dict[str, Any], est: dict[str, int] | None) -> str:
    if est is None:
        return str(t["est_none"])
    lo, hi = minutes(est["low_s"], est["high_s"])
    # "about 0-13 min" reads as nonsense; the kiosk says "up to about 13 min" too
    return str(t["est_upto" if lo == 0 else "est_range"]).format(lo=lo, hi=hi)


def name(values: dict[str, str], lang: str) -> str:
    """A config text (``Text.values``) in ``lang``; Japanese, then any, as fallbacks."""
    return values.get(lang) or values.get("ja") or next(iter(values.values()), "")
