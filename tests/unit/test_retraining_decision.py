"""Debounced retraining: drift alone is not enough; cooldown, budget and in-flight runs hold it back."""

from __future__ import annotations

import datetime as dt

from retrain.domain.retraining import decide_retraining
from retrain.domain.settings import RetrainingSettings

POLICY = RetrainingSettings(
    clock="wall", cooldown_hours=24, weekly_budget=2, deployment="training/nightly", stale_after_hours=12
)
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def decide(flagged: bool = True, earlier=(), in_flight=(), settings=POLICY, now=NOW):
    return decide_retraining(
        flagged,
        ["7 of 21 features drifted"],
        now=now,
        earlier_triggers=list(earlier),
        in_flight=list(in_flight),
        settings=settings,
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


def test_cooldown_zero_means_no_cooldown():
    none = POLICY.model_copy(update={"cooldown_hours": 0, "weekly_budget": 10})
    assert decide(earlier=[NOW - dt.timedelta(minutes=1)], settings=none).decision == "retrain"


def test_the_same_data_never_triggers_twice_even_without_cooldown():
    none = POLICY.model_copy(update={"cooldown_hours": 0, "weekly_budget": 10})
    result = decide(earlier=[NOW], settings=none)
    assert result.decision == "cooldown" and "on this data or newer" in result.reasons[-1]
    assert decide(earlier=[NOW + dt.timedelta(days=3)], settings=none).decision == "cooldown"


def test_a_replay_decides_as_living_through_it():
    """On the data clock, weekly batches replayed in one minute meet the cooldown and budget they met
    when they came a week apart: the decisions depend on the batches' times only."""
    data = POLICY.model_copy(update={"clock": "data", "cooldown_hours": 24 * 10, "weekly_budget": 1})
    weeks = [NOW + dt.timedelta(weeks=k) for k in range(6)]

    def replay() -> list[str]:
        triggers: list[dt.datetime] = []
        decisions = []
        for week in weeks:
            choice = decide(earlier=triggers, settings=data, now=week).decision
            decisions.append(choice)
            if choice == "retrain":
                triggers.append(week)
        return decisions

    assert replay() == ["retrain", "cooldown", "retrain", "cooldown", "retrain", "cooldown"]
    assert replay() == replay()
