"""Multiclass and regression through the one recipe: fit, metrics, the gate's checks and slices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.domain import synthetic
from retrain.domain.fitting import fit_snapshot
from retrain.domain.gate import GateInputs, decide, default_checks
from retrain.domain.metrics import TASK_METRICS, expected_calibration_error
from retrain.domain.settings import DatasetSettings, SplitSettings, TaskKind, load_settings
from retrain.domain.slices import slice_masks
from retrain.domain.task import UnknownLabelError, task_for
from retrain.domain.training import TrainingDataError, predict
from tests.conftest import REPO_ROOT
from tests.unit.gate_settings import BASELINE, FAST

SETTINGS = load_settings(REPO_ROOT / "params.yaml")
MODEL = SETTINGS.model.model_copy(
    update={"threads": 1, "xgboost": SETTINGS.model.xgboost.model_copy(update={"num_boost_round": 60})}
)
SPLIT = SplitSettings(holdout_days=2, validation_days=1)


def _dataset(task: TaskKind) -> DatasetSettings:
    return DatasetSettings.model_validate(synthetic.dataset_params(task))


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def fitted(request: pytest.FixtureRequest):
    task: TaskKind = request.param
    frame = synthetic.synthetic_frame(task, days=6, rows_per_day=250, seed=1)
    return task, frame, fit_snapshot(frame, _dataset(task), SPLIT, MODEL)


def test_fit_snapshot_learns_each_task_and_reports_its_metrics(fitted):
    task, _frame, result = fitted
    assert set(result.holdout_metrics) == set(TASK_METRICS[task])
    holdout_rows = len(result.split.holdout)
    if task == "multiclass":
        assert result.holdout_predictions.shape == (holdout_rows, 3)
        assert np.allclose(result.holdout_predictions.sum(axis=1), 1.0)
        assert result.holdout_metrics["accuracy"] > 0.55  # three balanced classes: chance is 1/3
        assert result.holdout_metrics["log_loss"] < np.log(3)
    else:
        assert result.holdout_predictions.shape == (holdout_rows,)
        assert result.holdout_metrics["r2"] > 0.5
        assert result.holdout_metrics["mae"] <= result.holdout_metrics["rmse"]


def test_refitting_is_byte_identical_for_every_task(fitted):
    task, frame, result = fitted
    assert fit_snapshot(frame, _dataset(task), SPLIT, MODEL).model_bytes() == result.model_bytes()


def test_the_gate_fits_the_task(fitted):
    task, _frame, result = fitted
    dataset = _dataset(task)
    labels = task_for(dataset).encode(result.split.holdout[dataset.target])
    metric = "accuracy" if task == "multiclass" else "rmse"
    gate = BASELINE.model_copy(
        update={
            "primary_metric": metric,
            "floor": 0.4 if task == "multiclass" else 100.0,
            "slices": BASELINE.slices.model_copy(update={"categorical": ("segment",), "min_rows": 50}),
        }
    )
    masks = slice_masks(result.split.holdout, gate.slices.categorical, gate.slices.numeric_bins)
    worse = result.holdout_predictions.copy()
    if task == "multiclass":
        worse = 0.5 * worse + 0.5 / 3  # flatter, same argmax: accuracy equal, log loss worse
    else:
        worse = worse + np.where(result.split.holdout["segment"] == "north", 4.0, 0.0)  # wrong in one slice
    metrics = task_for(dataset).metrics(labels, result.holdout_predictions)
    worse_metrics = task_for(dataset).metrics(labels, worse)
    inputs = GateInputs(worse_metrics, metrics, labels, worse, result.holdout_predictions, FAST, masks)
    decision = decide(default_checks(gate, 0, task), inputs, metric)
    names = [check.name for check in decision.checks]
    if task == "multiclass":
        assert "calibration" in names and "bias" not in names
        assert decision.check("non_inferiority").passed  # type: ignore[union-attr]
        assert decision.check("slices").value == 0.0  # type: ignore[union-attr]
    else:
        assert "bias" in names and "calibration" not in names
        assert not decision.check("non_inferiority").passed  # type: ignore[union-attr]
        slices = decision.check("slices")
        assert slices is not None and not slices.passed and "segment=north" in slices.reason
        assert not decision.check("bias").passed  # type: ignore[union-attr]  # +4 on a third of rows
        fair = decide(
            default_checks(gate, 0, task),
            GateInputs(metrics, None, labels, result.holdout_predictions, None, FAST, masks),
            metric,
        )
        assert fair.check("bias").passed and fair.promote, fair.reasons  # type: ignore[union-attr]


def test_the_bias_guardrail_is_in_standard_deviations_of_the_target():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0] * 20)
    gate = BASELINE.model_copy(update={"primary_metric": "rmse", "floor": 10.0})
    for shift, passed in ((0.1, True), (0.5, False)):
        predictions = y - shift * y.std()
        inputs = GateInputs({"rmse": shift}, None, y, predictions, None, FAST)
        check = decide(default_checks(gate, 0, "regression"), inputs, "rmse").check("bias")
        assert check is not None and check.passed is passed and check.value == pytest.approx(shift)


def test_multiclass_calibration_is_the_top_class_ece():
    y = np.array([0, 1, 2, 0])
    confident = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9], [0.05, 0.9, 0.05]])
    # top-class probability 0.9 on every row, right on three of four: gap |0.9 - 0.75|
    assert expected_calibration_error(y, confident) == pytest.approx(0.15)


def test_unknown_labels_and_constant_targets_are_typed_errors_not_crashes():
    frame = synthetic.synthetic_frame("multiclass", days=6, rows_per_day=100, seed=2)
    frame.loc[5, synthetic.TARGET] = "extreme"
    with pytest.raises(UnknownLabelError, match="extreme"):
        fit_snapshot(frame, _dataset("multiclass"), SPLIT, MODEL)
    flat = synthetic.synthetic_frame("regression", days=6, rows_per_day=100, seed=2)
    flat[synthetic.TARGET] = 3.0
    with pytest.raises(TrainingDataError, match="constant target"):
        fit_snapshot(flat, _dataset("regression"), SPLIT, MODEL)


def test_string_binary_labels_train_like_zero_one(tmp_path):
    frame = synthetic.synthetic_frame("binary", days=6, rows_per_day=250, seed=3)
    result = fit_snapshot(frame, _dataset("binary"), SPLIT, MODEL)
    numeric = frame.assign(target=(frame[synthetic.TARGET] == "yes").astype(int))
    plain = DatasetSettings.model_validate({**synthetic.dataset_params("binary"), "labels": None})
    assert fit_snapshot(numeric, plain, SPLIT, MODEL).model_bytes() == result.model_bytes()
    assert result.holdout_metrics["roc_auc"] > 0.8
    spec = result.model.spec
    probabilities = predict(result.model.booster, pd.DataFrame(frame.head(3)), spec)
    assert probabilities.shape == (3,)


def test_drift_of_predictions_and_performance_for_multiclass_and_regression(fitted):
    from retrain.domain.drift import detect_drift
    from retrain.domain.profile import build_profile
    from retrain.domain.task import prediction_summary

    task, frame, result = fitted
    dataset = _dataset(task)
    strategy = task_for(dataset)
    profile = build_profile(
        frame,
        dataset.features.numeric,
        dataset.features.categorical,
        holdout_predictions=prediction_summary(result.holdout_predictions),
        metrics=result.holdout_metrics,
        quantiles=SETTINGS.drift.quantiles,
    )
    metric = "log_loss" if task == "multiclass" else "rmse"
    batch = synthetic.synthetic_frame(task, days=1, rows_per_day=600, seed=7, shift=1.5)
    predictions = predict(result.model.booster, batch, result.model.spec, strategy)
    labels = strategy.label_codes(batch[dataset.target])
    labels[:100] = np.nan  # labels arrive late for some rows
    report = detect_drift(
        profile,
        batch,
        SETTINGS.drift,
        predictions=predictions,
        labels=labels,
        primary_metric=metric,
        resamples=200,
        task=task,
    )
    assert "x0" in report.drifted_features
    assert report.prediction is not None and report.prediction.rows == 600
    assert report.performance is not None and report.performance.rows == 500
    assert report.performance.metric == metric


def test_shadow_comparison_per_task(fitted):
    from retrain.domain.shadow import compare_shadow

    task, _frame, result = fitted
    dataset = _dataset(task)
    labels = task_for(dataset).label_codes(result.split.holdout[dataset.target])
    same = compare_shadow(result.holdout_predictions, result.holdout_predictions, labels, task=task)
    assert same.agreement == 1.0 and same.mean_abs_difference == 0.0
    assert same.gains is not None and set(same.gains) == set(TASK_METRICS[task])
    assert all(value == 0.0 for value in same.gains.values())
    other = result.holdout_predictions[::-1].copy()
    different = compare_shadow(result.holdout_predictions, other, labels, task=task)
    assert different.agreement < 0.8 and different.mean_abs_difference > 0
    assert different.gains is not None and different.gains[TASK_METRICS[task][0]] < 0


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_scoring_writes_what_each_task_predicts(tmp_path, task: TaskKind):
    from retrain.adapters.files import write_pieces
    from retrain.application.monitoring import Piece, prediction_frame
    from retrain.domain.lifecycle import ModelVersionInfo

    frame = synthetic.synthetic_frame(task, days=1, rows_per_day=4, seed=1)
    settings = SETTINGS.model_copy(update={"dataset": _dataset(task)})
    predictions = {
        "binary": np.array([0.1, 0.6, 0.9, 0.4]),
        "multiclass": np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3]]),
        "regression": np.array([1.5, 2.5, -1.0, 0.0]),
    }[task]
    champion, challenger = ModelVersionInfo("3", "r", {}, None, None), ModelVersionInfo("4", "s", {}, None, None)
    piece = Piece("b", 0, frame)
    path = write_pieces(
        [prediction_frame(piece, settings, champion, predictions, challenger, predictions)], tmp_path / "p.parquet"
    )
    written = pd.read_parquet(path)
    expected = {
        "binary": ["score"],
        "multiclass": ["prediction", "proba_low", "proba_mid", "proba_high"],
        "regression": ["prediction"],
    }[task]
    assert list(written.columns) == [
        synthetic.ID_COLUMN,
        synthetic.TIME_COLUMN,
        *expected,
        synthetic.TARGET,  # the batch is labelled: its label beside the predictions
        "model_version",
        *(f"shadow_{column}" for column in expected),
        "shadow_model_version",
    ]
    if task == "multiclass":
        assert written["prediction"].tolist() == ["low", "high", "mid", "mid"]
        assert written["proba_high"].tolist() == [0.1, 0.8, 0.3, 0.3]
