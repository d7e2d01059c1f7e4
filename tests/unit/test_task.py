"""The task strategy: labels as they come, the XGBoost objective per task, the shape of predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.domain.errors import InputError
from retrain.domain.settings import load_settings
from retrain.domain.task import BINARY, Task, UnknownLabelError, prediction_summary
from retrain.domain.training import booster_params
from tests.conftest import REPO_ROOT

SETTINGS = load_settings(REPO_ROOT / "params.yaml")

INCOME = Task("binary", ("<=50K", ">50K"), ">50K")
GRADES = Task("multiclass", (3, 4, 5, 6, 7))
AMOUNT = Task("regression")


def test_binary_encodes_the_positive_class_as_one_whatever_its_position():
    values = pd.Series(["<=50K", ">50K", " >50K", "<=50K"])
    assert INCOME.encode(values).tolist() == [0, 1, 1, 0]
    flipped = Task("binary", ("yes", "no"), "yes")
    assert flipped.encode(["no", "yes"]).tolist() == [0, 1]
    assert flipped.decode(np.array([1, 0])).tolist() == ["yes", "no"]


def test_numeric_classes_match_whatever_the_spelling():
    # a CSV gives strings, parquet ints or floats, YAML ints: all name the same class
    assert GRADES.encode(pd.Series(["3", "7", "5.0"])).tolist() == [0, 4, 2]
    assert GRADES.encode(np.array([3.0, 7.0, 5.0])).tolist() == [0, 4, 2]
    assert BINARY.encode(pd.Series([True, False, True])).tolist() == [1, 0, 1]
    assert BINARY.encode(pd.Series(["1", "0"])).tolist() == [1, 0]


def test_an_unknown_label_is_a_typed_input_error_naming_the_values():
    with pytest.raises(UnknownLabelError, match=r"not among dataset.labels.classes \[3, 4, 5, 6, 7\]: \['9'\]"):
        GRADES.encode(pd.Series([3, 9, 4]))
    with pytest.raises(InputError, match=r"'\?'"):
        INCOME.encode(pd.Series(["<=50K", "?"]))
    with pytest.raises(UnknownLabelError, match="must be numbers"):
        AMOUNT.encode(pd.Series(["1.5", "lots"]))


def test_missing_labels_are_nan_codes_for_monitoring_and_refused_for_training():
    codes = GRADES.label_codes(pd.Series([3, None, 7], dtype="object"))
    assert codes[0] == 0 and np.isnan(codes[1]) and codes[2] == 4
    with pytest.raises(UnknownLabelError, match="1 missing"):
        GRADES.encode(pd.Series([3, None, 7], dtype="object"))
    assert AMOUNT.encode(pd.Series(["1.5", "2"])).tolist() == [1.5, 2.0]


def test_monitoring_reads_an_unknown_label_as_missing_and_counts_it():
    batch = pd.Series([3, 9, 4, 9, None, "3.0"], dtype="object")
    codes = GRADES.label_codes(batch, unknown="missing")
    assert codes[0] == 0 and codes[2] == 1 and codes[5] == 0
    assert np.isnan(codes[[1, 3, 4]]).all()
    assert GRADES.unknown_labels(batch) == {"9": 2}  # a missing label is not an unknown one
    assert INCOME.unknown_labels(pd.Series(["<=50K", "?", " >50K"])) == {"?": 1}
    amounts = pd.Series(["1.5", "lots", None])
    assert np.isnan(AMOUNT.label_codes(amounts, unknown="missing")[1:]).all()
    assert AMOUNT.unknown_labels(amounts) == {"lots": 1}
    assert GRADES.unknown_labels(pd.Series([3, 4])) == {}


def test_binary_booster_params_are_exactly_what_they_always_were():
    model = SETTINGS.model
    params = booster_params(model)
    assert list(params)[:3] == ["objective", "eval_metric", "tree_method"]
    assert params["objective"] == "binary:logistic" and params["eval_metric"] == "logloss"
    assert booster_params(model, BINARY) == params
    multi = booster_params(model, GRADES)
    assert (multi["objective"], multi["eval_metric"], multi["num_class"]) == ("multi:softprob", "mlogloss", 5)
    regression = booster_params(model, AMOUNT)
    assert (regression["objective"], regression["eval_metric"]) == ("reg:squarederror", "rmse")
    assert "num_class" not in regression


def test_predicted_labels_and_the_drift_score_per_task():
    probabilities = np.array([[0.1, 0.2, 0.7, 0.0, 0.0], [0.5, 0.1, 0.1, 0.2, 0.1]])
    assert GRADES.predicted_labels(probabilities).tolist() == [5, 3]
    assert prediction_summary(probabilities).tolist() == [0.7, 0.5]
    assert INCOME.predicted_labels(np.array([0.2, 0.9])).tolist() == ["<=50K", ">50K"]
    assert AMOUNT.score(np.array([1.5, -2.0])).tolist() == [1.5, -2.0]
    assert not BINARY.evaluable(np.array([1.0, 1.0, np.nan])) and BINARY.evaluable(np.array([0.0, 1.0]))


def test_multiclass_log_loss_takes_float32_probabilities_without_a_warning():
    import warnings

    from retrain.domain.metrics import multiclass_metrics

    rng = np.random.default_rng(0)
    raw = rng.random((500, 6)).astype("float32")
    probabilities = raw / raw.sum(axis=1, keepdims=True)  # float32 rows: sums off by ~1e-7
    labels = rng.integers(0, 6, 500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = multiclass_metrics(labels, probabilities)
    assert 0 < metrics["log_loss"] < 10


@pytest.mark.parametrize("task", [INCOME, GRADES, AMOUNT], ids=lambda task: task.kind)
def test_fit_writes_exactly_the_plot_files_dvc_yaml_declares_for_the_task(task: Task):
    from retrain.application.fit import PLOT_DECLARATIONS, _task_curves, dvc_plots_block

    rng = np.random.default_rng(1)
    y: np.ndarray
    p: np.ndarray
    if task.kind == "regression":
        y, p = rng.normal(size=60), rng.normal(size=60)
    elif task.kind == "binary":
        y, p = rng.integers(0, 2, 60), rng.random(60)
    else:
        y, raw = rng.integers(0, 5, 60), rng.random((60, 5))
        p = raw / raw.sum(axis=1, keepdims=True)
    curves = _task_curves(task, y, p)
    declared = PLOT_DECLARATIONS[task.kind]
    assert set(curves) == set(declared)
    for name, fields in declared.items():
        assert {fields["x"], fields["y"]} <= set(curves[name].columns)
        assert f"plots/{name}:" in dvc_plots_block(task.kind)


def test_the_repositorys_dvc_yaml_is_what_init_writes_for_a_binary_task():
    from retrain.application.scaffold import render_dvc_yaml

    template = (REPO_ROOT / "dvc.yaml").read_text()
    assert render_dvc_yaml(template, "binary") == template
    regression = render_dvc_yaml(template, "regression")
    assert "plots/residuals.csv" in regression and "plots/roc.csv" not in regression
    assert regression.startswith(template.partition("    # plots:")[0])
