"""A real case built with the demo generator: two trained XGBoost models, the challenger better
overall but worse for one group of applicants. The gate must block it on the slice check alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from retrain.domain.demo_data import generate_days
from retrain.domain.features import build_feature_spec
from retrain.domain.gate import GateInputs, decide, default_checks
from retrain.domain.metrics import classification_metrics
from retrain.domain.rows import whole
from retrain.domain.settings import load_settings
from retrain.domain.slices import SliceResult, slice_masks
from retrain.domain.splitting import split_by_time
from retrain.domain.training import predict_proba, train_model
from tests.unit.gate_settings import FAST

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "params.yaml")
GROUP_COLUMN, GROUP = "home_ownership", "OTHER"  # about 3% of applicants


def test_trained_challenger_better_overall_but_worse_for_one_group_is_blocked():
    data = SETTINGS.dataset
    frame = pd.concat([f for _, f in generate_days(dt.date(2026, 1, 1), 8, 12_000, 5)], ignore_index=True)
    split = split_by_time(frame, data.time_column, 2, 1)
    spec = build_feature_spec(split.train, data.features.numeric, data.features.categorical)
    weak = SETTINGS.model.model_copy(
        update={"xgboost": SETTINGS.model.xgboost.model_copy(update={"max_depth": 1, "num_boost_round": 15})}
    )
    champion = train_model(split.train, split.validation, spec, data.target, weak)
    # The challenger is the normal, stronger model, but its training labels for one group were
    # corrupted (as a broken upstream join would): it learns the group's risk upside down.
    train = whole(split.train)  # split in memory: the frame itself
    in_group = train[GROUP_COLUMN] == GROUP
    corrupted = train.assign(**{data.target: train[data.target].where(~in_group, 1 - train[data.target])})
    challenger = train_model(corrupted, split.validation, spec, data.target, SETTINGS.model)

    holdout = split.holdout
    labels = holdout[data.target].to_numpy()
    champion_pred = predict_proba(champion.booster, holdout, spec)
    challenger_pred = predict_proba(challenger.booster, holdout, spec)
    challenger_metrics = classification_metrics(labels, challenger_pred)
    champion_metrics = classification_metrics(labels, champion_pred)
    assert challenger_metrics["roc_auc"] > champion_metrics["roc_auc"] + 0.01  # better overall

    gate = SETTINGS.gate.model_copy(
        update={"guardrails": SETTINGS.gate.guardrails.model_copy(update={"max_calibration_error": 1.0})}
    )
    masks = slice_masks(holdout, gate.slices.categorical, gate.slices.numeric_bins)
    inputs = GateInputs(challenger_metrics, champion_metrics, labels, challenger_pred, champion_pred, FAST, masks)
    decision = decide(default_checks(gate, seed=0), inputs, "roc_auc")

    failed = {check.name: check for check in decision.checks if not check.passed}
    assert list(failed) == ["slices"], decision.reasons
    regressed = {row.name for row in failed["slices"].rows(SliceResult) if row.regressed}
    assert len(failed["slices"].rows(SliceResult)) == len(failed["slices"].details)
    assert regressed == {f"{GROUP_COLUMN}={GROUP}"}
