"""One way to take a list the hub pushes retained and replaced whole (staff, reservations):
check it, keep it in the database (``meta``) so a restarted edge still has it, then use it.

Why one follower for every such list: each must refuse a malformed push without losing the list
it holds, skip the retained copy of what it already holds, and write before it uses, so that a
crash between the two never leaves the edge using a list it would not find again at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from edge.store.store import EventStore

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
RunDb = Callable[[Callable[[EventStore], None]], Awaitable[None]]


class Book(Protocol[T_contra]):
    version: str

    def replace(self, items: Sequence[T_contra], version: str) -> None: ...


def load_kept(store: EventStore, meta_key: str,
              parse: Callable[[dict[str, Any]], tuple[str, list[T]] | str],
              what: str) -> tuple[str, list[T]] | None:
    """The list kept under ``meta_key`` as ``(version, items)``; None when the hub never
    pushed one (or, which never happens since only parsed lists are kept, it is unusable)."""
    raw = store.meta(meta_key)
    if raw is None:
        return None
    parsed = parse(json.loads(raw))
    if isinstance(parsed, str):  # pragma: no cover - we only store what parsed
        _LOGGER.warning("stored %s unusable: %s", what, parsed)
        return None
    return parsed


class PushedFollower(Generic[T]):
    """``parse``: the raw message -> ``(version, items)`` or what is wrong (never the content);
    ``keep``: what to store under ``meta_key``; ``what``: the list's name for the log."""

    def __init__(self, book: Book[T], *, parse: Callable[[dict[str, Any]],
                                                         tuple[str, list[T]] | str],
                 keep: Callable[[str, list[T]], str], meta_key: str, what: str) -> None:
        self.book = book
        self.error: str | None = None
        self._parse, self._keep, self._meta_key, self._what = parse, keep, meta_key, what
        self._lock = asyncio.Lock()

    async def handle(self, raw: dict[str, Any], run_db: RunDb) -> None:
        async with self._lock:
            parsed = self._parse(raw)
            if isinstance(parsed, str):
                self.error = parsed
                _LOGGER.warning("refused %s from the hub: %s", self._what, parsed)
                return
            version, items = parsed
            if version == self.book.version:
                return  # the retained copy of what we hold
            kept = self._keep(version, items)
            await run_db(lambda st: st.set_meta(self._meta_key, kept))
            self.book.replace(items, version)
            self.error = None
            _LOGGER.info("%s from the hub: %d", self._what, len(items))
