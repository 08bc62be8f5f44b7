"""The module's background work, started in the process that runs the hub's jobs."""

from __future__ import annotations

from aiohttp import web

from hub.forms.context import Forms


def start_jobs(app: web.Application, ctx: Forms) -> None:
    """Start the module's loops for the app's lifetime (``hub.kit.tasks.run_for_lifetime``)."""
    del app, ctx
