"""The hub kit: what every hub module is built on, and nothing a module needs to import past.

``Module`` (one registration shape), ``Runtime`` under ``RUNTIME`` (one typed object per app),
``LiveSites`` (live site state, never ``ingest.folds``), one Jinja environment
(``templates``), one i18n catalogue loader (``i18n``) and the security headers (``headers``).
See README.md.
"""

from __future__ import annotations

from hub.kit.i18n import Catalogue, load_catalogue, pick_lang
from hub.kit.live import LiveSites
from hub.kit.module import Module
from hub.kit.runtime import RUNTIME, Runtime, runtime

__all__ = ["RUNTIME", "Catalogue", "LiveSites", "Module", "Runtime", "load_catalogue",
           "pick_lang", "runtime"]
