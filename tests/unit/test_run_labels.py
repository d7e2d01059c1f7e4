"""A training run's final state and name say what it decided, for every way it can end."""

from __future__ import annotations

import pytest

from retrain.domain.runs import decision_tag, training_run_name, training_state_name


@pytest.mark.parametrize(
    ("promoted", "note", "rollout", "approval", "expected"),
    [
        (True, "promoted", False, "approved", "Promoted"),
        (True, "first champion", False, "approved", "Promoted"),
        (True, "already champion: nothing to move", False, None, "Already champion"),
        (False, "rolling out: v2 is candidate", True, "approved", "Rolling out"),
        (False, "refused: champion unchanged", False, None, "Refused"),
        (False, "refused: champion unchanged", False, "rejected", "Rejected"),
        (False, "refused: champion unchanged", False, "timed_out", "Timed out"),
    ],
)
def test_every_ending_has_its_name(promoted: bool, note: str, rollout: bool, approval: str | None, expected: str):
    assert training_state_name(promoted, note, rollout, approval) == expected


def test_names_and_tags_read_as_people_say_them():
    assert decision_tag("Timed out") == "decision:timed-out"
    assert training_run_name("loans", "3", "2026-01-01", "2026-01-05", "schedule") == (
        "train loans v3 on 2026-01-01..2026-01-05 (schedule)"
    )
    assert training_run_name("loans", "3", "2026-01-05", "2026-01-05", "ada") == "train loans v3 on 2026-01-05 (ada)"
