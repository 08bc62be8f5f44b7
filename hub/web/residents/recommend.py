"""W2: for one service offered by several offices, which offices are notably quieter.

Pure, so it is tested without a hub. "Notably" means the difference matters to someone deciding
whether to travel: at least ``NOTABLE_EXTRA_S`` longer and ``NOTABLE_RATIO`` times the other's
wait (midpoints of the estimate ranges). Small differences are not advertised: steering people
back and forth over a few minutes would only move the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NOTABLE_EXTRA_S = 600
NOTABLE_RATIO = 1.5


@dataclass(frozen=True)
class Option:
    """A service at a site that is open, online and has an estimate right now."""

    site: str
    code: str
    low_s: int
    high_s: int
    waiting: int = 0

    @property
    def mid_s(self) -> float:
        return (self.low_s + self.high_s) / 2


def notably_quieter(other: Option, than: Option) -> bool:
    return (than.mid_s - other.mid_s >= NOTABLE_EXTRA_S
            and than.mid_s >= NOTABLE_RATIO * other.mid_s)


@dataclass(frozen=True)
class Comparison:
    code: str
    ranking: tuple[Option, ...]  # quietest first
    quieter: dict[str, tuple[Option, ...]]  # site -> notably quieter options, quietest first


def compare(options: Iterable[Option]) -> dict[str, Comparison]:
    """Per service code offered by two or more sites: the ranking and the quieter choices."""
    by_code: dict[str, list[Option]] = {}
    for o in options:
        by_code.setdefault(o.code, []).append(o)
    result = {}
    for code, opts in by_code.items():
        if len(opts) < 2:
            continue
        ranking = tuple(sorted(opts, key=lambda o: (o.mid_s, o.waiting, o.site)))
        quieter = {o.site: tuple(q for q in ranking if notably_quieter(q, o)) for o in ranking}
        result[code] = Comparison(code, ranking, {s: q for s, q in quieter.items() if q})
    return result
