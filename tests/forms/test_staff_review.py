"""The status rule of staff review, for every status, action and comment: only the allowed steps
happen, a return always carries a comment, ``completed`` is final, ``returned`` moves on only
by the resident, comments never change the status, and every refusal reads in ja and en."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.review import ACTIONS, next_status
from hub.forms.service import SUBMISSION_STATUSES, FormError

ALLOWED = {("received", "start"): "in_review", ("received", "return"): "returned",
           ("in_review", "return"): "returned", ("received", "complete"): "completed",
           ("in_review", "complete"): "completed"}

statuses = st.sampled_from(SUBMISSION_STATUSES)
actions = st.sampled_from([*ACTIONS, "delete", ""])
comments = st.one_of(st.just(""), st.just("  \n"), st.text(min_size=1, max_size=40))


def _outcome(status: str, action: str, comment: str) -> str | FormError:
    try:
        return next_status(status, action, comment)
    except FormError as exc:
        return exc


@given(statuses, actions, comments)
def test_rule(status: str, action: str, comment: str) -> None:
    after = _outcome(status, action, comment)
    if isinstance(after, FormError):
        assert after.ja
        assert after.en
        assert after.ja != after.en
        if action == "comment" or (action == "return" and not comment.strip()):
            assert after.code == "comment_required"
        elif action not in ACTIONS:
            assert after.code == "unknown_action"
        else:
            assert (status, action) not in ALLOWED
            assert after.code == "transition_refused"
        return
    if action == "comment":
        assert after == status
        assert comment.strip()
    else:
        assert ALLOWED[(status, action)] == after
        assert action != "return" or comment.strip()


@given(actions, comments)
def test_completed_is_final_and_returned_waits_for_the_resident(action: str,
                                                                comment: str) -> None:
    for status in ("completed", "returned"):
        after = _outcome(status, action, comment)
        assert isinstance(after, FormError) or after == status


def test_refusal_names_the_status_in_words() -> None:
    with pytest.raises(FormError) as got:
        next_status("completed", "start")
    assert got.value.ja == "「完了」の申請は「審査を始める」ことができません"
    assert got.value.en == "A submission that is completed cannot be taken into review"
