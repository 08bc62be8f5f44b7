"""The statistics form: what a session may ask for (its sites only; none chosen = all of its
sites), groupings checked, and the column editor's moves keep every column exactly once."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.stats import forms
from hub.stats.columns import CATALOGUE, DEFAULT_COLUMNS

TODAY = date(2026, 12, 5)
KNOWN = ["nerima", "oizumi", "hikarigaoka"]


def form(**query: str) -> forms.Form:
    sites = query.pop("sites", "")
    return forms.read(query, [s for s in sites.split(",") if s], TODAY)


def test_defaults_are_this_fiscal_year_by_month_of_every_allowed_site() -> None:
    scope = forms.scope(form(), {"nerima"}, KNOWN)
    assert (scope.period.start, scope.period.end) == (date(2026, 4, 1), date(2027, 3, 31))
    assert scope.group == ("month",)
    assert scope.sites == frozenset({"nerima"})
    assert forms.scope(form(), None, KNOWN).sites is None


@pytest.mark.parametrize(("query", "allowed", "field", "code"), [
    ({"sites": "oizumi"}, {"nerima"}, "site", "bad_site"),
    ({"sites": "nowhere"}, None, "site", "bad_site"),
    ({"group": "minute"}, None, "group", "bad_group"),
    ({"group": "day", "by": "day"}, None, "by", "bad_group"),
    ({"group": "day", "by": "month"}, None, "by", "two_periods"),
    ({"staff": "x" * 65}, None, "staff", "bad_filter"),
    ({"service": "A\tB"}, None, "service", "bad_filter"),
    ({"kind": "range", "start": "2026-04-01"}, None, "end", "bad_date"),
])
def test_refusals_name_their_field(query: dict[str, str], allowed: set[str] | None,
                                   field: str, code: str) -> None:
    with pytest.raises(forms.FieldError) as err:
        forms.scope(form(**query), allowed, KNOWN)
    assert (err.value.field, err.value.code) == (field, code)


@given(st.lists(st.sampled_from(sorted(CATALOGUE)), min_size=1, unique=True),
       st.lists(st.tuples(st.sampled_from(("up", "down", "remove", "add")),
                          st.sampled_from(sorted(CATALOGUE))), max_size=20))
def test_editor_moves_keep_each_column_once(start: list[str],
                                            ops: list[tuple[str, str]]) -> None:
    cols = tuple(start)
    for verb, key in ops:
        before = cols
        cols = forms.moved(cols, f"{verb}:{key}")
        assert len(set(cols)) == len(cols) >= 1
        if verb in ("up", "down"):
            assert sorted(cols) == sorted(before)
        if verb == "add":
            assert key in cols
    assert forms.draft(forms.Form(cols=",".join(cols)), {}) == cols


def test_draft_is_the_chosen_set_or_the_default() -> None:
    assert forms.draft(forms.Form(set="7"), {"7": ("issued",)}) == ("issued",)
    assert forms.draft(forms.Form(set="8"), {"7": ("issued",)}) == DEFAULT_COLUMNS
    with pytest.raises(forms.FieldError):
        forms.draft(forms.Form(cols="issued,issued"), {})
