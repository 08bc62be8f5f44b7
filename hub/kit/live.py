"""``LiveSites``: the one way a hub module reads live site state (W1-W7), over ingest.

Why an interface and not ``ingest.folds``: the folds are ingest's internals (a dict it replaces
and rebuilds under its own lock); a module that walks them depends on how ingest keeps them.
Through this object a module asks what it needs (a site's fold, config or ticket, a ticket by
its token, every site for the status snapshot), subscribes to changes, and sends a site a
command; ingest can change how it keeps folds without touching a module.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from edge.domain.model import SiteConfig
from edge.domain.state import State, Ticket
from hub.ingest import Ingest
from hub.ingest.listeners import ChangeListener
from hub.ingest.projection import SiteFold
from hub.store import HubStore

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")


class LiveSites:
    """Read-only view of the sites this process folds (only a process running ingest has one)."""

    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest

    @property
    def store(self) -> HubStore:
        return self._ingest.store

    def all(self) -> Mapping[str, SiteFold]:
        """Every folded site by id: a live, read-only view (iterate over ``list(...)`` across
        an ``await``: ingest may add a site meanwhile)."""
        return MappingProxyType(self._ingest.folds)

    def fold(self, site: str) -> SiteFold | None:
        return self._ingest.folds.get(site)

    def state(self, site: str) -> State | None:
        """The site's state today; None for an unknown site or one without a config."""
        fold = self._ingest.folds.get(site)
        return fold.state if fold is not None else None

    def ticket(self, site: str, ticket_id: str) -> Ticket | None:
        state = self.state(site)
        return state.tickets.get(ticket_id) if state is not None else None

    def find_token(self, token: str) -> tuple[SiteFold, Ticket] | None:
        """Today's ticket (any state) whose token this is, with its site's fold."""
        for fold in list(self._ingest.folds.values()):
            state = fold.state
            if state is not None and (tid := state.tokens.get(token)) is not None:
                return fold, state.tickets[tid]
        return None

    async def config(self, site: str) -> SiteConfig | None:
        """The site's config as the hub folds it; a site that sent no event yet has no fold, so
        one is built from its stored config (nothing happens for a site the hub does not know
        or an id that cannot be one)."""
        if self._ingest.folds.get(site) is None and SITE_ID.match(site):
            await self._ingest.refold(site)
        fold = self._ingest.folds.get(site)
        return fold.config if fold is not None else None

    def listen(self, listener: ChangeListener) -> None:
        """Call ``listener`` with each change ingest folds (its own task; see ingest)."""
        self._ingest.listeners.append(listener)

    def unlisten(self, listener: ChangeListener) -> None:
        with contextlib.suppress(ValueError):
            self._ingest.listeners.remove(listener)

    async def call(self, site: str, type_: str, data: dict[str, Any],
                   ttl_s: float) -> dict[str, Any] | None:
        """A command to the site and its reply; None if none came within ``ttl_s``."""
        return await self._ingest.send_command(site, type_, data, ttl_s)
