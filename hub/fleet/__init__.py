"""Fleet view, alerts and metrics (issue 13 item 4, O2). See README.md.

Only the tables are imported here (as hub/audit does): ``hub.store`` users may import the
tables without the web layer; ``module()`` imports the routes when the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.fleet import tables

if TYPE_CHECKING:
    from hub.kit.module import Module

__all__ = ["module", "tables"]


def module() -> Module:
    """``/admin/fleet`` (administrators and ward staff, scoped to their sites), its forms, the
    hub's ``/metrics`` (token or allowed addresses), and the watcher that turns site state into
    incidents and e-mails (``job.setup``; only where ingest runs)."""
    from hub.fleet.job import setup
    from hub.fleet.routes import ROUTES, TEMPLATES
    from hub.kit.module import Module

    return Module("fleet", ROUTES, templates=TEMPLATES, setup=setup)
