"""Matching parts with recipients (N2/N4): by normalised key, by order only when it is safe,
and everyone accounted for exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from hub.notices.matching import Keyed, match, match_key, match_single, pair_ids
from hub.notices.pdfsplit import Part
from hub.notices.recipients import RecipientRow


def part(i: int, key: str | None) -> Part:
    return Part(index=i, key=key, first_page=2 * i + 1, page_count=2, pdf=b"%PDF-" + bytes([i]))


def row(i: int, key: str | None) -> RecipientRow:
    return RecipientRow(line=i + 2, name=f"練馬 太郎{i}", email=f"resident{i}@example.jp",
                        key=key)


def test_keys_match_after_nfkc_trim_and_case_fold() -> None:
    parts = [part(0, "A0001"), part(1, "b-02"), part(2, "C3")]
    rows = [row(0, "ｂ－０２"), row(1, " a0001 "), row(2, "D4")]
    result = match(parts, rows)
    assert [(p.index, r.line) for p, r in result.pairs] == [(0, 3), (1, 2)]
    assert [p.index for p in result.unmatched_parts] == [2]
    assert [r.line for r in result.unmatched_recipients] == [4]
    assert result.problems == []
    assert match_key("　Ａ０００１\t") == "a0001"


def test_empty_keys_never_match() -> None:
    result = match([part(0, None), part(1, "")], [row(0, None), row(1, "")])
    assert result.pairs == []
    assert len(result.unmatched_parts) == 2
    assert len(result.unmatched_recipients) == 2


def test_by_order_needs_equal_counts() -> None:
    parts = [part(i, None) for i in range(3)]
    rows = [row(i, None) for i in range(3)]
    result = match(parts, rows, by="order")
    assert [(p.index, r.line) for p, r in result.pairs] == [(0, 2), (1, 3), (2, 4)]
    short = match(parts, rows[:2], by="order")
    assert short.pairs == []
    assert [p.code for p in short.problems] == ["count_mismatch"]
    assert len(short.unmatched_parts) == 3
    assert len(short.unmatched_recipients) == 2


def test_one_pdf_for_everyone() -> None:
    common = part(0, None)
    result = match_single(common, [row(i, None) for i in range(3)])
    assert [(p.index, r.line) for p, r in result.pairs] == [(0, 2), (0, 3), (0, 4)]
    assert result.unmatched_parts == []
    assert result.unmatched_recipients == []


def test_pair_ids_for_stored_records() -> None:
    assert pair_ids([Keyed("p1", "A1"), Keyed("p2", "A2")],
                    [Keyed("r1", "ａ２"), Keyed("r2", "x")]) == [("p2", "r1")]
    # no keys anywhere: by order, equal counts only
    assert pair_ids([Keyed("p1", ""), Keyed("p2", None)],
                    [Keyed("r1", ""), Keyed("r2", "")]) == [("p1", "r1"), ("p2", "r2")]
    assert pair_ids([Keyed("p1", "")], [Keyed("r1", ""), Keyed("r2", "")]) == []


KEYS = st.sampled_from(["A1", "ａ１", " a1 ", "A2", "Ａ2", "B3", "", None])


@given(st.lists(KEYS, max_size=12), st.lists(KEYS, max_size=12))
def test_everyone_is_accounted_for_exactly_once(part_keys: list[str | None],
                                                row_keys: list[str | None]) -> None:
    parts = [part(i, k) for i, k in enumerate(part_keys)]
    rows = [row(i, k) for i, k in enumerate(row_keys)]
    by: Literal["key", "order"]
    for by in ("key", "order"):
        result = match(parts, rows, by=by)
        seen_parts = Counter([p.index for p, _r in result.pairs]
                             + [p.index for p in result.unmatched_parts])
        seen_rows = Counter([r.line for _p, r in result.pairs]
                            + [r.line for r in result.unmatched_recipients])
        assert seen_parts == Counter(p.index for p in parts)
        assert seen_rows == Counter(r.line for r in rows)
        if by == "key":
            for p, r in result.pairs:
                assert match_key(p.key or "") == match_key(r.key or "") != ""
            # nothing left that could still have been paired
            left = {match_key(p.key or "") for p in result.unmatched_parts} - {""}
            assert not left & {match_key(r.key or "") for r in result.unmatched_recipients}
    ids = pair_ids([Keyed(f"p{i}", k) for i, k in enumerate(part_keys)],
                   [Keyed(f"r{i}", k) for i, k in enumerate(row_keys)])
    assert len({p for p, _r in ids}) == len(ids) == len({r for _p, r in ids})
