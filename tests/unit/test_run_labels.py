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


def test_drift_and_scoring_runs_say_what_they_decided():
    from retrain.domain.runs import drift_run_name, drift_state_name, scoring_run_name, scoring_state_name

    assert drift_state_name("retrain", acted=True) == "Retrain"
    assert drift_state_name("none", acted=True) == "No action"
    assert drift_state_name("retrain", acted=False) == "Reported"  # asked not to act: nothing was done
    assert drift_run_name("loans", "2", ["/b/loans-2026-01-07.parquet"]) == "drift loans vs v2: loans-2026-01-07"
    assert drift_run_name("loans", None, ["a/x.csv", "a/y.csv", "a/z.csv"]) == "drift loans: x..z (3 batches)"
    assert scoring_state_name(None) == "Scored" and scoring_state_name("rolled_back") == "Rolled back"
    assert scoring_run_name("loans", "1", "2", "/in/day-9.parquet") == "score loans v1 + candidate v2: day-9"


def test_the_inbox_line_carries_the_gates_interval_and_a_deadline():
    import datetime as dt

    from retrain.domain.gate import Check, ComparisonInterval, GateDecision
    from retrain.domain.pending import PendingReview, pending_review

    interval = ComparisonInterval("roc_auc", 0.0123, -0.004, 0.029, 0.95, 1000, 5000)
    decision = GateDecision((Check("non_inferiority", True, -0.004, -0.01, "ok", (interval,)),), "roc_auc")
    deadline = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    line = pending_review("run-1", "loans", "3", "2", decision, deadline, ("ada", "bob"), 1)
    assert line.gain_text() == "+0.0123 [-0.0040, +0.0290]"
    assert PendingReview.from_json(line.to_json()) == line
    assert line.minutes_left(deadline - dt.timedelta(minutes=30)) == 30
    first = pending_review("run-2", "loans", "1", None, decision, deadline, ("ada",), 1)
    assert first.gain is None and first.gain_text() == "—"  # no champion: nothing to gain over
