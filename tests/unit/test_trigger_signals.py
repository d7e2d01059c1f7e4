"""The retraining trigger looks at what matters: labels first, then a classifier's own estimate of its
performance, then feature drift weighted by the champion's importance (near-constant features not
counted), and prediction drift past a threshold calibrated for the batch's size (regressors only)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.domain.bootstrap import metric_draws
from retrain.domain.drift import (
    ConceptChange,
    DriftReport,
    catch_up_signal,
    chance_psi,
    detect_drift,
    prediction_limit,
    psi,
)
from retrain.domain.estimation import estimate, expected_metric
from retrain.domain.metrics import task_metrics
from retrain.domain.profile import ReferenceProfile, build_profile, importance_shares
from retrain.domain.settings import load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "params.yaml")
DRIFT = SETTINGS.drift.model_copy(update={"min_rows": 100})


def _frame(rows: int, seed: int, shift_a: float = 0.0, shift_b: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(shift_a, 1, rows),
            "b": rng.normal(shift_b, 1, rows),
            "flat": np.zeros(rows),
            "kind": np.where(rng.random(rows) < 0.995, "x", "y"),
        }
    )


def _profile(importance: dict[str, float] | None, rows: int = 5000) -> ReferenceProfile:
    return build_profile(
        _frame(rows, 1),
        ["a", "b", "flat"],
        ["kind"],
        holdout_predictions=None,
        metrics={},
        quantiles=100,
        importance=importance,
    )


def test_a_drifting_feature_the_model_ignores_does_not_trigger():
    profile = _profile({"a": 90.0, "b": 10.0})
    ignored = detect_drift(profile, _frame(2000, 2, shift_b=1.5), DRIFT)
    used = detect_drift(profile, _frame(2000, 2, shift_a=1.5), DRIFT)
    assert ignored.drifted_features == ("b",) and ignored.drift_share == pytest.approx(0.1)
    assert not ignored.flagged and ignored.signal == "none"
    assert used.drifted_features == ("a",) and used.flagged and used.signal == "feature_drift"
    assert used.decided_by is not None and "90% of the champion's feature importance" in used.decided_by.text


def test_near_constant_features_are_reported_but_never_counted():
    profile = _profile(None)
    report = detect_drift(profile, _frame(2000, 2, shift_b=1.5), DRIFT)
    assert set(report.not_counted) == {"flat", "kind"}
    assert set(report.weights) == {"a", "b"} and report.drift_share == pytest.approx(0.5)
    assert any("not counted: " in reason for reason in report.reasons)


def test_a_profile_stored_before_importance_weighs_features_equally():
    stored = _profile({"a": 1.0}).to_dict()
    del stored["importance"], stored["estimate"], stored["prediction_spread"]
    stored["version"] = 1
    old = ReferenceProfile.from_dict(stored)
    assert old.importance == {} and old.estimate is None
    assert detect_drift(old, _frame(1000, 3), DRIFT).weights == {"a": 0.5, "b": 0.5}


def test_importance_shares_sum_to_one_and_ignore_no_gain():
    assert importance_shares({"a": 3.0, "b": 1.0}) == {"a": 0.75, "b": 0.25}
    assert importance_shares({}) == {} and importance_shares({"a": 0.0}) == {}


def _scores(rows: int, seed: int, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores (labels drawn from them); lower sharpness = flatter, less separable."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-sharpness * rng.normal(0, 1, rows)))
    return p, (rng.random(rows) < p).astype("int64")


def _classifier_profile(rows: int = 4000) -> tuple[ReferenceProfile, np.ndarray]:
    holdout, labels = _scores(rows, 1, 3.0)
    return (
        build_profile(
            _frame(rows, 1),
            ["a", "b"],
            [],
            holdout_predictions=holdout,
            metrics=task_metrics("binary", labels, holdout),
            quantiles=100,
            importance={"a": 1.0, "b": 1.0},
            estimate=estimate("roc_auc", "binary", holdout),
            metric_errors={
                "roc_auc": float(np.std(metric_draws("roc_auc", labels, holdout, resamples=200, seed=0)[1]))
            },
        ),
        holdout,
    )


def test_labels_decide_first_a_champion_that_performs_is_kept_whatever_the_features_do():
    profile, _ = _classifier_profile(rows=30_000)
    scores, labels = _scores(30_000, 5, 3.0)
    moved = _frame(30_000, 5, shift_a=2.0, shift_b=2.0)
    report = detect_drift(profile, moved, DRIFT, predictions=scores, labels=labels)
    assert report.drift_share == 1.0  # every feature drifted...
    assert not report.flagged and report.signal == "performance"  # ...but the labels say it still works
    assert report.decided_by is not None and report.decided_by.verdict == "clears"
    assert any("reported only" in reason for reason in report.reasons)


def test_labels_that_show_a_sure_drop_retrain_and_say_by_how_much():
    profile, _ = _classifier_profile()
    scores, _ = _scores(3000, 6, 3.0)
    flipped = (np.random.default_rng(7).random(scores.size) < 0.5).astype("int64")  # the concept changed
    report = detect_drift(profile, _frame(3000, 6), DRIFT, predictions=scores, labels=flipped)
    assert report.flagged and report.signal == "performance"
    assert report.decided_by is not None and report.decided_by.value > 0.2
    assert "surely worse" in report.reasons[0]


def test_without_labels_the_classifier_estimates_its_performance():
    profile, _ = _classifier_profile()
    same, _ = _scores(3000, 8, 3.0)
    flatter, _ = _scores(3000, 8, 0.8)  # rows where the model is much less sure
    quiet = detect_drift(profile, _frame(3000, 8), DRIFT, predictions=same)
    worse = detect_drift(profile, _frame(3000, 8), DRIFT, predictions=flatter)
    assert quiet.estimated is not None and not quiet.estimated.dropped and not quiet.flagged
    assert worse.estimated is not None and worse.estimated.dropped
    assert worse.flagged and worse.signal == "estimated_performance"
    assert [s.name for s in worse.signals] == ["estimated_performance", "feature_drift"]


@pytest.mark.parametrize(
    ("metric", "task"),
    [("roc_auc", "binary"), ("pr_auc", "binary"), ("log_loss", "binary"), ("brier", "binary")],
)
def test_a_calibrated_binary_model_s_estimate_matches_its_realized_metric(metric, task):
    scores, labels = _scores(200_000, 11, 2.0)
    realized = task_metrics(task, labels, scores)[metric]
    assert expected_metric(metric, task, scores) == pytest.approx(realized, abs=0.01)


@pytest.mark.parametrize("metric", ["accuracy", "log_loss", "macro_f1"])
def test_a_calibrated_multiclass_model_s_estimate_matches_its_realized_metric(metric):
    rng = np.random.default_rng(12)
    logits = rng.normal(0, 1.5, (100_000, 3))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in probabilities])
    realized = task_metrics("multiclass", labels, probabilities)[metric]
    assert expected_metric(metric, "multiclass", probabilities) == pytest.approx(realized, abs=0.01)


def test_regression_has_no_estimate_and_lets_prediction_drift_decide():
    rng = np.random.default_rng(3)
    holdout = rng.normal(0, 1, 4000)
    profile = build_profile(
        _frame(4000, 1),
        ["a", "b"],
        [],
        holdout_predictions=holdout,
        metrics={"rmse": 1.0},
        quantiles=100,
        importance={"a": 1.0, "b": 0.0},
    )
    moved = detect_drift(
        profile,
        _frame(2000, 4, shift_b=2.0),
        DRIFT,
        predictions=rng.normal(1.5, 1, 2000),
        primary_metric="rmse",
        task="regression",
    )
    assert moved.estimated is None and [s.name for s in moved.signals] == ["feature_drift", "prediction_drift"]
    assert moved.flagged and moved.signal == "prediction_drift"


def test_chance_psi_matches_two_samples_of_one_distribution():
    """The PSI two samples of the same distribution show: its mean, and its 99th percentile rarely passed."""
    rng = np.random.default_rng(0)
    bins, n, m = 10, 2000, 300
    edges = np.quantile(rng.normal(size=100_000), np.linspace(0, 1, bins + 1)[1:-1])
    values = []
    for _ in range(400):
        ref = np.bincount(np.searchsorted(edges, rng.normal(size=n)), minlength=bins).astype("float64")
        cur = np.bincount(np.searchsorted(edges, rng.normal(size=m)), minlength=bins).astype("float64")
        values.append(psi(ref, cur))
    assert np.mean(values) == pytest.approx(chance_psi(n, m, bins), rel=0.15)
    assert np.mean(np.asarray(values) > chance_psi(n, m, bins, 0.99)) < 0.03


def test_the_prediction_threshold_is_wide_on_small_batches_and_the_setting_on_large_ones():
    profile, _ = _classifier_profile(rows=4000)
    small = prediction_limit(profile, 300, DRIFT, 0.95)
    large = prediction_limit(profile, 1_000_000, DRIFT, 0.95)
    assert small > large > DRIFT.prediction_psi_drift
    assert large == pytest.approx(DRIFT.prediction_psi_drift + chance_psi(4000, 1_000_000, DRIFT.psi_bins, 0.95))
    spread = ReferenceProfile(
        profile.numeric, (), profile.prediction, profile.metrics, profile.rows, prediction_spread=0.5
    )
    assert prediction_limit(spread, 1_000_000, DRIFT, 0.95) == pytest.approx(DRIFT.prediction_psi_drift + 0.5)


def test_a_holdout_value_that_was_lucky_does_not_make_every_batch_surely_worse():
    """The holdout's metric is a sample too: its error widens the interval, so batches of the same
    model on the same data are never "surely worse" (without it, 1 in 7 of these were)."""
    profile, _ = _classifier_profile()
    verdicts = []
    for seed in range(5, 25):
        scores, labels = _scores(3000, seed, 3.0)
        report = detect_drift(profile, _frame(3000, seed), DRIFT, predictions=scores, labels=labels)
        verdicts.append(report.signals[0].verdict)
    assert "fires" not in verdicts and verdicts.count("clears") >= 2


def test_a_small_batch_that_looks_somewhat_worse_is_no_evidence_either_way():
    """Labels clear only when the champion does as well as on its holdout or surely loses no more than
    the threshold; a wide CI around a lower value is inconclusive, and the features decide."""
    profile, _ = _classifier_profile()
    verdicts = set()
    for seed in range(5, 15):
        scores, labels = _scores(300, seed, 3.0)
        report = detect_drift(profile, _frame(300, seed, shift_a=2.0), DRIFT, predictions=scores, labels=labels)
        performance = report.signals[0]
        assert performance.name == "performance"
        assert performance.verdict == ("clears" if performance.value <= 0 else "inconclusive")
        if performance.verdict == "inconclusive":
            assert report.signal == "feature_drift" and report.flagged
        verdicts.add(performance.verdict)
    assert verdicts == {"clears", "inconclusive"}


def _trained(profile: ReferenceProfile, first: str, last: str, newest: str, auc: float = 0.70) -> ReferenceProfile:
    """A champion trained on [first, last] with its validation and holdout up to ``newest``."""
    return dataclasses.replace(
        profile, trained_from=first, trained_until=last, data_until=newest, metrics={"roc_auc": auc}
    )


CHANGE = ConceptChange(dt.datetime(2024, 1, 21, 12, tzinfo=dt.UTC), 0.76)  # a sure drop seen on Jan 21


def _verdict(champion: ReferenceProfile, today: str, growth: float = 1.0) -> str:
    found = catch_up_signal(champion, CHANGE, True, "roc_auc", dt.date.fromisoformat(today), growth=growth)
    return "none" if found is None else found.verdict


def test_the_catch_up_retrains_only_when_training_would_learn_more_of_the_new_concept():
    """Daily batches, 5 training days then 1 validation and 2 holdout days: the retraining on the day
    of the drop trained on old days only; with ``catch_up_growth`` 2 the next ones pay when they
    double the new days seen."""
    base = _profile(None)
    at_drop = _trained(base, "2024-01-14", "2024-01-18", "2024-01-21")
    assert [_verdict(at_drop, day, 2.0) for day in ("2024-01-22", "2024-01-23", "2024-01-24")] == [
        "clears",  # would train until Jan 19: the old concept only
        "clears",
        "fires",  # would train on Jan 21, the first day after the change
    ]
    one_day = _trained(base, "2024-01-17", "2024-01-21", "2024-01-24")
    assert _verdict(one_day, "2024-01-25", 2.0) == "fires"  # 2 days >= 2 x 1
    two_days = _trained(base, "2024-01-18", "2024-01-22", "2024-01-25")
    assert [_verdict(two_days, day, 2.0) for day in ("2024-01-26", "2024-01-27")] == ["clears", "fires"]  # 3 < 4
    four_days = _trained(base, "2024-01-20", "2024-01-24", "2024-01-27")
    assert _verdict(four_days, "2024-01-28", 2.0) == "fires"  # 5 < 8, but its training would leave Jan 20 behind
    caught_up = _trained(base, "2024-01-21", "2024-01-25", "2024-01-28")
    assert _verdict(caught_up, "2024-02-10") == "none"
    # a holdout that looks back at the level before the drop (a few hundred rows: luck as often as
    # not) does not stop it half-way, with a reference that mixes both sides of the change
    looks_regained = _trained(base, "2024-01-18", "2024-01-22", "2024-01-25", auc=0.765)
    assert _verdict(looks_regained, "2024-01-27") == "fires"


def test_by_default_the_catch_up_retrains_on_each_new_day_after_the_change_and_once_only_per_day():
    """``catch_up_growth`` 1: a step pays whenever a retraining would train on one more day after the
    change than the champion did; the same day checked again waits (nothing new to learn)."""
    base = _profile(None)
    at_drop = _trained(base, "2024-01-14", "2024-01-18", "2024-01-21")
    assert [_verdict(at_drop, day) for day in ("2024-01-22", "2024-01-23", "2024-01-24")] == [
        "clears",
        "clears",
        "fires",
    ]
    steps = []
    for first, last, newest, today in (
        ("2024-01-17", "2024-01-21", "2024-01-24", "2024-01-25"),  # 1 day after the change -> 2
        ("2024-01-18", "2024-01-22", "2024-01-25", "2024-01-26"),  # 2 -> 3 (doubling would wait)
        ("2024-01-19", "2024-01-23", "2024-01-26", "2024-01-27"),  # 3 -> 4
    ):
        champion = _trained(base, first, last, newest)
        steps.append((_verdict(champion, newest), _verdict(champion, today), _verdict(champion, today, 2.0)))
    assert steps == [("clears", "fires", "fires"), ("clears", "fires", "clears"), ("clears", "fires", "clears")]
    with pytest.raises(ValueError, match="catch_up_growth"):
        SETTINGS.drift.model_validate({**SETTINGS.drift.model_dump(), "catch_up_growth": 0.5})


def test_the_catch_up_counts_in_the_data_s_own_cadence():
    """Weekly batches (one date a week): the same steps, in weeks."""
    base = _profile(None)
    week = dt.timedelta(weeks=1)
    change = dt.date(2024, 1, 21)

    def on(weeks: int) -> str:
        return (change + weeks * week).isoformat()

    at_drop = _trained(base, on(-7), on(-3), on(0))
    assert [_verdict(at_drop, on(k)) for k in (1, 2, 3)] == ["clears", "clears", "fires"]
    one_week = _trained(base, on(-4), on(0), on(3))
    assert _verdict(one_week, on(4)) == "fires"


def _labelled_check(
    champion: ReferenceProfile, labels: np.ndarray, scores: np.ndarray, change: ConceptChange, today: dt.date
) -> DriftReport:
    return detect_drift(
        champion,
        _frame(scores.size, 6),
        DRIFT,
        predictions=scores,
        labels=labels,
        last_change=change,
        windowed=True,
        today=today,
    )


def test_a_waiting_catch_up_holds_back_a_sure_drop_the_champion_cannot_fix_yet():
    profile, _ = _classifier_profile()
    champion = _trained(profile, "2024-01-14", "2024-01-18", "2024-01-21", auc=profile.metrics["roc_auc"])
    scores, _ = _scores(3000, 6, 3.0)
    flipped = (np.random.default_rng(7).random(scores.size) < 0.5).astype("int64")
    change = ConceptChange(CHANGE.seen_at, champion.metrics["roc_auc"] + 0.05)
    waiting = _labelled_check(champion, flipped, scores, change, dt.date(2024, 1, 22))
    assert not waiting.flagged and waiting.signal == "catch_up"
    assert "before the change only" in waiting.reasons[0]
    paying = _labelled_check(champion, flipped, scores, change, dt.date(2024, 1, 24))
    assert paying.flagged and paying.signal == "catch_up" and not paying.marks_change


def test_a_profile_stored_before_its_training_days_catches_up_while_behind():
    old = dataclasses.replace(_trained(_profile(None), "2024-01-14", "2024-01-18", "2024-01-21"), data_until=None)
    assert _verdict(old, "2024-01-22") == "fires"
    stored = ReferenceProfile.from_dict({k: v for k, v in old.to_dict().items() if k != "trained_until"})
    assert stored.trained_until is None and stored.trained_from == "2024-01-14"


def test_without_a_window_the_catch_up_only_waits_for_the_new_concept_to_reach_training():
    at_drop = _trained(_profile(None), "2024-01-01", "2024-01-18", "2024-01-21")

    def unwindowed(today: str) -> str:
        found = catch_up_signal(at_drop, CHANGE, False, "roc_auc", dt.date.fromisoformat(today))
        return "none" if found is None else found.verdict

    assert [unwindowed(day) for day in ("2024-01-22", "2024-01-23", "2024-01-24")] == ["clears", "clears", "none"]


def test_the_first_step_after_a_sure_drop_waits_for_the_labels_to_show_it_again():
    """One sure drop in forty is chance: the catch-up's first step needs the next batch's labels to be
    surely below the level before it too; later steps do not (an easier new concept may be back at it)."""
    profile, _ = _classifier_profile()
    level = profile.metrics["roc_auc"]
    scores, labels = _scores(3000, 6, 3.0)  # the champion performs as on its holdout
    before = _trained(profile, "2024-01-14", "2024-01-18", "2024-01-21", auc=level)
    chance = ConceptChange(CHANGE.seen_at, level + 0.005)  # the "drop" was within the noise after all
    waiting = _labelled_check(before, labels, scores, chance, dt.date(2024, 1, 24))
    assert not waiting.flagged and waiting.signal == "performance"  # the champion still performs: it decides
    unconfirmed = next(item for item in waiting.signals if item.name == "catch_up")
    assert unconfirmed.verdict == "inconclusive" and "second sure drop" in unconfirmed.text
    lasting = ConceptChange(CHANGE.seen_at, level + 0.08)
    assert _labelled_check(before, labels, scores, lasting, dt.date(2024, 1, 24)).flagged
    half_way = _trained(profile, "2024-01-17", "2024-01-21", "2024-01-24", auc=level)
    later = _labelled_check(half_way, labels, scores, chance, dt.date(2024, 1, 25))
    assert later.flagged and later.signal == "catch_up"


def test_after_a_change_the_labels_did_not_see_the_first_step_needs_it_seen_again():
    """A feature alarm marked the change: the catch-up's first step fires only on a batch where a
    signal fires again (a chance alarm costs one retraining), and the others decide meanwhile."""
    features_moved = ConceptChange(CHANGE.seen_at, None)
    profile = _profile({"a": 1.0, "b": 1.0})
    before = _trained(profile, "2024-01-14", "2024-01-18", "2024-01-21")
    quiet_day, moved_day = _frame(2000, 4), _frame(2000, 4, shift_a=1.5, shift_b=1.5)

    def check(batch: pd.DataFrame, champion: ReferenceProfile) -> DriftReport:
        return detect_drift(
            champion, batch, DRIFT, last_change=features_moved, windowed=True, today=dt.date(2024, 1, 24)
        )

    quiet = check(quiet_day, before)
    catch_up = next(item for item in quiet.signals if item.name == "catch_up")
    assert catch_up.verdict == "inconclusive" and "seen again" in catch_up.text
    assert not quiet.flagged and quiet.signal == "none"
    moved = check(moved_day, before)
    assert moved.flagged and moved.signal == "catch_up" and not moved.marks_change
    # a later step (the champion trained on days after the change) needs no second sighting
    half_way = _trained(profile, "2024-01-17", "2024-01-21", "2024-01-24")
    later = detect_drift(
        half_way, quiet_day, DRIFT, last_change=features_moved, windowed=True, today=dt.date(2024, 1, 25)
    )
    assert later.flagged and later.signal == "catch_up"


def test_the_second_sure_drop_is_judged_the_right_way_round_for_a_loss_metric():
    """A regressor's rmse: the drop is a rise, so the batch's interval must be surely above the level."""
    before = _trained(_profile(None), "2024-01-14", "2024-01-18", "2024-01-21")
    rose = ConceptChange(CHANGE.seen_at, 2.0)  # rmse 2.0 before the drop

    def verdict(lower: float, upper: float) -> str:
        found = catch_up_signal(before, rose, True, "rmse", dt.date(2024, 1, 24), (lower, upper), 0.01)
        return "none" if found is None else found.verdict

    assert verdict(2.3, 2.6) == "fires"  # still surely worse than 2.0 + 0.01
    assert verdict(1.9, 2.2) == "inconclusive"  # back within the noise of the old level
    assert verdict(1.5, 1.8) == "inconclusive"  # better than before: no drop to follow
