"""The hub's one Jinja environment, built once per app from every module's templates folder.

Why one: a base template, its filters and its escaping rules are then the same for every page;
a module's template extends ``base.html`` (hub/web/templates) by that name. Names are looked up
in the folders in module order, so a module keeps its templates under ``templates/<module>/``
(``auth/login.html``) and no two modules can shadow each other; the resident pages' older flat
names (``residents_status.html``) live in hub/web/templates next to the base.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jinja2

BASE = Path(__file__).resolve().parent.parent / "web" / "templates"


def environment(folders: Iterable[Path],
                filters: dict[str, Callable[..., Any]] | None = None) -> jinja2.Environment:
    """Autoescaped HTML, undefined names are errors (a typo fails the test, not silently blank);
    ``folders`` are searched in order after hub/web/templates (the base); ``filters``: the
    modules' own filters, merged (``hub.kit.module.build`` refuses two of one name)."""
    search = [BASE, *(f for f in folders if f != BASE)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined)
    env.filters.update(filters or {})
    return env
