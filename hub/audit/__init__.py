"""Audit trail (A3): a hash-chained, append-only log of staff actions. See README.md.

Only the tables are imported here: ``hub.store.store`` imports this package for them, so
importing the service (which needs ``hub.store``) or the routes (which need ``hub.web``) here
would be circular; ``module()`` imports the routes when the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.audit import tables

if TYPE_CHECKING:
    from hub.kit.module import Module

__all__ = ["module", "tables"]


def module() -> Module:
    """``/admin/audit`` and its CSV, verify and retention routes (administrators), and the
    nightly pruning of rows past the retention period (``job.py``)."""
    from hub.audit.job import setup
    from hub.audit.routes import ROUTES, TEMPLATES
    from hub.kit.module import Module

    return Module("audit", ROUTES, templates=TEMPLATES, setup=setup)
