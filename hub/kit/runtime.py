"""``Runtime``: the one typed object a hub app carries (``app[RUNTIME]``).

Why one object: a handler reads what it needs as attributes of one typed value instead of a
key per thing per module; the Jinja environment and the live sites are built once per app here.
The older keys of ``hub.web.api`` (STORE, INGEST, SETTINGS, CONFIGS) are set to the same
objects, so handlers not yet moved keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web

from hub.ingest import Ingest
from hub.kit.live import LiveSites
from hub.settings import HubSettings
from hub.store import HubStore


@dataclass
class Runtime:
    store: HubStore
    settings: HubSettings
    jinja: jinja2.Environment
    ingest: Ingest | None = None  # the in-process consumer (None: a web-only process)
    live: LiveSites | None = None  # live site state; None where ingest is None

    def render(self, template: str, **values: Any) -> str:
        return self.jinja.get_template(template).render(**values)


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]
