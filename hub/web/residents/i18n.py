"""Resident page texts in ja/en/zh/ko (``hub/web/i18n/*.json``, read by the kit's one
catalogue loader, which fails the start if a language lacks a key) and text helpers.
"""

from __future__ import annotations

import math
from collections.abc import Container
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.kit import i18n

I18N = Path(__file__).resolve().parent.parent / "i18n"
LANGS: tuple[str, ...] = ("ja", "en", "zh", "ko")
DEFAULT = i18n.DEFAULT

TEXTS = i18n.load_catalogue(I18N, LANGS)


def pick_lang(request: web.Request, langs: Container[str] | None = None) -> str:
    """The kit's choice (``?lang=``, then Accept-Language, else Japanese) among ``langs``
    (default: the languages of these pages' texts)."""
    return i18n.pick_lang(request, TEXTS if langs is None else langs)


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
