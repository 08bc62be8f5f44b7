"""Statistics and reports (issue 15, S1-S3, S5, W8). See README.md.

Nothing is imported here: ``madoguchi`` builds its command line from ``commands`` on every
start, and loading the tables (SQLAlchemy, Alembic) cost every ``edge run`` 1.2 s.
``hub.store`` imports ``hub.stats.tables`` itself; ``module()`` imports the routes when the app
is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.kit.module import Module

__all__ = ["module"]


def module() -> Module:
    """``/admin/stats`` (administrators, ward staff and statistics viewers, scoped to the sites
    of their grants): the report with last year beside it, its charts, the CSV export (audited)
    and the named column sets."""
    from hub.kit.module import Module
    from hub.stats.routes import ROUTES, TEMPLATES

    return Module("stats", ROUTES, templates=TEMPLATES)
