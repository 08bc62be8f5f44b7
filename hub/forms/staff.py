"""Routes of the forms module (filled in by its part; see README.md)."""

from __future__ import annotations

from hub.web.api import Route

ROUTES: tuple[Route, ...] = ()
