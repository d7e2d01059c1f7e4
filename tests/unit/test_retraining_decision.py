"""Debounced retraining: drift alone is not enough; cooldown, budget and in-flight runs hold it back."""

from __future__ import annotations

import datetime as dt

from retrain.domain.retraining import decide_retraining
from retrain.domain.settings import RetrainingSettings

POLICY = RetrainingSettings(cooldown_hours=24, weekly_budget=2, deployment="training/nightly", stale_after_hours=12)
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def decide(flagged: bool = True, earlier=(), in_flight=()):
    return decide_retraining(
        flagged,
        ["7 of 21 features drifted"],
        now=NOW,
        earlier_triggers=list(earlier),
        in_flight=list(in_flight),
        settings=POLICY,
    )


def test_no_drift_no_retraining():
    assert decide(flagged=False).decision == "none"


def test_drift_retrains_when_nothing_holds_it_back():
    result = decide()
    assert result.decision == "retrain" and result.reasons == ("7 of 21 features drifted",)


def test_a_run_in_flight_wins_over_everything():
    result = decide(in_flight=["training run 'brave-owl' (Paused)"])
    assert result.decision == "in_flight" and "brave-owl" in result.reasons[-1]


def test_cooldown_since_the_last_trigger_and_its_end():
    result = decide(earlier=[NOW - dt.timedelta(hours=20)])
    assert result.decision == "cooldown" and "ends in 4.0 h" in result.reasons[-1]
    assert decide(earlier=[NOW - dt.timedelta(hours=25)]).decision == "retrain"


def test_weekly_budget_counts_the_last_seven_days_only():
    spent = [NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=5)]
    result = decide(earlier=spent)
    assert result.decision == "budget" and "budget 2 spent" in result.reasons[-1]
    assert decide(earlier=[NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=8)]).decision == "retrain"
