"""``Module``: the one shape in which a hub module declares itself to ``hub/web/app.py``.

Why declarative: the app loops over a list of these, so every module is registered the same
way (routes with their access level, in the OpenAPI document, templates in the one Jinja
environment, texts in the one catalogue shape); what a module must do at start (its state on
the app, an ingest listener, a background task) goes in ``setup``, which gets the typed
``Runtime`` and may append to ``app.cleanup_ctx`` / ``app.on_shutdown`` for its lifetime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from hub.kit import templates

if TYPE_CHECKING:
    from hub.kit.runtime import Runtime
    from hub.web.api import Route


@dataclass(frozen=True)
class Module:
    """``routes``: registered with their access level and listed in ``/api/openapi.json``;
    ``templates``: the module's folder in the one Jinja search path; ``filters``: Jinja
    filters its templates use; ``setup(app, runtime)``: state, listeners, lifetimes."""

    name: str
    routes: tuple[Route, ...] = ()
    templates: Path | None = None
    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    setup: Callable[[web.Application, Runtime], None] | None = None


def environment(modules: Iterable[Module]) -> jinja2.Environment:
    """The app's one Jinja environment over every module's templates; two modules declaring a
    filter of the same name is a programming error caught at start."""
    folders: list[Path] = []
    filters: dict[str, Callable[..., Any]] = {}
    for m in modules:
        if m.templates is not None and m.templates not in folders:
            folders.append(m.templates)
        for name, fn in m.filters.items():
            if name in filters and filters[name] is not fn:
                raise ValueError(f"module {m.name}: Jinja filter {name!r} is declared twice")
            filters[name] = fn
    return templates.environment(folders, filters)


def register(app: web.Application, modules: Iterable[Module], runtime: Runtime) -> None:
    """Each module the same way: its routes (with their access level), then its setup."""
    from hub.web.api import add_routes  # here: hub.web imports the kit

    for m in modules:
        add_routes(app, m.routes)
        if m.setup is not None:
            m.setup(app, runtime)
