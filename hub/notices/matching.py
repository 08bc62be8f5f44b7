"""Which resident gets which part of the split PDF (spec §6(3), §6(7): 突合, N2/N4).

By key: the key printed on a part's first page and the key column of the recipient list are
compared after NFKC (full-width digits and letters), trimming and case folding, because one
side is typed in Excel and the other printed by a business system. By order: only when neither
side has keys and both have the same count (anything else would send someone another
resident's notice). Everything is accounted for: each part and each recipient is either in
exactly one pair or listed as unmatched, so staff see every gap before sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from hub.notices.pdfsplit import Part
from hub.notices.recipients import Problem, RecipientRow, match_key

__all__ = ["Keyed", "Match", "match", "match_key", "match_single", "pair_ids"]


@dataclass
class Match:
    pairs: list[tuple[Part, RecipientRow]] = field(default_factory=list)
    unmatched_parts: list[Part] = field(default_factory=list)
    unmatched_recipients: list[RecipientRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Keyed:
    """A stored part or recipient row: its id and its key ("" or None without one)."""

    id: str
    key: str | None


def _pair_indices(part_keys: Sequence[str | None], row_keys: Sequence[str | None]
                  ) -> list[tuple[int, int]]:
    """(part index, row index) pairs by key; each index used at most once, first come first."""
    free: dict[str, list[int]] = {}
    for i, key in enumerate(row_keys):
        folded = match_key(key or "")
        if folded:
            free.setdefault(folded, []).append(i)
    pairs = []
    for p, key in enumerate(part_keys):
        rows = free.get(match_key(key or ""))
        if rows:
            pairs.append((p, rows.pop(0)))
    return pairs


def _count_problem(parts: int, rows: int) -> Problem:
    return Problem(0, "count_mismatch",
                   f"照合キーがないため順番で対応付けますが、PDFの分割数（{parts}）と送付先の件数"
                   f"（{rows}）が違います",
                   f"Without keys parts are matched by order, but there are {parts} parts and "
                   f"{rows} recipients")


def match(parts: Sequence[Part], recipients: Sequence[RecipientRow],
          by: Literal["key", "order"] = "key") -> Match:
    """Pair parts with recipients by key, or by order (equal counts only, else a problem and
    nothing paired)."""
    out = Match()
    if by == "order":
        if len(parts) != len(recipients):
            out.problems.append(_count_problem(len(parts), len(recipients)))
            out.unmatched_parts, out.unmatched_recipients = list(parts), list(recipients)
        else:
            out.pairs = list(zip(parts, recipients, strict=True))
        return out
    pairs = _pair_indices([p.key for p in parts], [r.key for r in recipients])
    used_parts = {p for p, _r in pairs}
    used_rows = {r for _p, r in pairs}
    out.pairs = [(parts[p], recipients[r]) for p, r in pairs]
    out.unmatched_parts = [p for i, p in enumerate(parts) if i not in used_parts]
    out.unmatched_recipients = [r for i, r in enumerate(recipients) if i not in used_rows]
    return out


def match_single(part: Part, recipients: Sequence[RecipientRow]) -> Match:
    """One PDF for everyone (the same notice to every recipient)."""
    return Match(pairs=[(part, r) for r in recipients])


def pair_ids(parts: Sequence[Keyed], rows: Sequence[Keyed]) -> list[tuple[str, str]]:
    """(part id, row id) pairs for stored records: by key when either side has keys, else by
    order when the counts are equal, else none (the report then lists everyone unmatched)."""
    keyed = any(match_key(k.key or "") for k in (*parts, *rows))
    if not keyed:
        if len(parts) != len(rows):
            return []
        return [(p.id, r.id) for p, r in zip(parts, rows, strict=True)]
    pairs = _pair_indices([p.key for p in parts], [r.key for r in rows])
    return [(parts[p].id, rows[r].id) for p, r in pairs]
