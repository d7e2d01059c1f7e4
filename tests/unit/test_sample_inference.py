"""What `retrain init` infers from a sample: task, labels, features, time column, a first contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.adapters.workspace import template_dir
from retrain.application.scaffold import _params
from retrain.domain.sample_inference import (
    InferenceError,
    infer_contract,
    infer_labels,
    infer_roles,
    infer_task,
    infer_time_column,
    primary_metric,
    propose_project,
    row_thresholds,
    suspected_missing_tokens,
)

RNG = np.random.default_rng(3)
N = 300


def _sample(target: Any, **extra: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "seen": pd.Timestamp("2026-03-02") + pd.to_timedelta(RNG.integers(0, 7, N), unit="D"),
            "length": RNG.uniform(10.0, 20.0, N),
            "count": RNG.integers(3, 9, N),
            "colour": RNG.choice(["red", "green", "blue"], N),
            "y": target,
        }
    )
    for name, values in extra.items():
        frame[name] = values
    return frame


def _expectations(suite: dict, kind: str, column: str) -> list[dict]:
    return [e for e in suite["expectations"] if e["type"] == kind and e["kwargs"].get("column") == column]


# --- task ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["<=50K", ">50K"], "binary"),
        ([0, 1], "binary"),
        ([True, False], "binary"),
        ([0.0, 1.0], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([3, 4, 5, 6, 7, 8, 9], "multiclass"),
        ([3.0, 4.0, 5.0, np.nan], "multiclass"),  # whole numbers read as floats from a CSV with gaps
        (list(range(1, 30)), "regression"),  # a count with many values (abalone's rings)
        (list(np.linspace(0.1, 9.9, 50)), "regression"),
    ],
)
def test_task_is_inferred_from_the_target(values, task):
    assert infer_task(pd.Series(values * 10, name="y")) == task


def test_a_constant_target_cannot_be_learned():
    with pytest.raises(InferenceError, match="1 distinct value"):
        infer_task(pd.Series([1] * 20, name="y"))


# --- labels --------------------------------------------------------------------------------------


def test_string_labels_keep_their_values_and_the_rarer_one_is_positive():
    target = pd.Series(["<=50K"] * 75 + [">50K"] * 25, name="income")
    labels = infer_labels(target, "binary")
    assert labels is not None and labels.classes == ("<=50K", ">50K") and labels.positive == ">50K"
    rare_first = infer_labels(pd.Series(["no"] * 10 + ["yes"] * 90), "binary")
    assert rare_first is not None and rare_first.positive == "no"


def test_numeric_labels_are_plain_ints_and_the_larger_one_is_positive():
    labels = infer_labels(pd.Series([1.0, 0.0, np.nan, 0.0] * 5), "binary")  # floats from a CSV with a gap
    assert labels is not None and labels.classes == (0, 1) and labels.positive == 1
    assert all(type(c) is int for c in labels.classes)  # written to YAML as 0, 1, not 0.0 or numpy


def test_multiclass_labels_are_the_sorted_classes_without_a_positive_one():
    labels = infer_labels(pd.Series([6, 5, 7, 3, 6]), "multiclass")
    assert labels is not None and labels.classes == (3, 5, 6, 7) and labels.positive is None
    assert infer_labels(pd.Series([1.5, 2.5]), "regression") is None


def test_a_task_given_against_the_data_is_refused_with_the_class_count():
    with pytest.raises(InferenceError, match="exactly 2 classes"):
        infer_labels(pd.Series(["a", "b", "c"], name="y"), "binary")
    with pytest.raises(InferenceError, match="3 or more classes"):
        infer_labels(pd.Series([0, 1], name="y"), "multiclass")


# --- time column and features --------------------------------------------------------------------


def test_the_one_date_column_is_the_time_column_whether_parsed_or_text():
    frame = _sample(RNG.integers(0, 2, N))
    assert infer_time_column(frame, "y") == "seen"
    as_text = frame.assign(seen=frame["seen"].dt.strftime("%Y-%m-%d"))
    assert infer_time_column(as_text, "y") == "seen"


def test_no_or_several_date_columns_ask_for_the_flag():
    frame = _sample(RNG.integers(0, 2, N))
    with pytest.raises(InferenceError, match="--time-column"):
        infer_time_column(frame.drop(columns="seen"), "y")
    with pytest.raises(InferenceError, match=r"several date columns.*--time-column"):
        infer_time_column(frame.assign(other=frame["seen"].astype("str")), "y")


def test_numbers_that_are_not_dates_are_not_taken_for_dates():
    frame = pd.DataFrame({"when": ["2026-01-01"] * 5, "code": ["12", "7", "3", "1", "2"], "y": [0, 1, 0, 1, 0]})
    assert infer_time_column(frame, "y") == "when"


def test_features_split_by_type_and_keys_and_free_text_are_left_out():
    frame = _sample(
        RNG.integers(0, 2, N),
        row=np.arange(1000, 1000 + N),
        note=[f"free text {i}" for i in range(N)],
        flag=RNG.choice([True, False], N),
        amount=RNG.integers(0, 10_000_000, N),  # distinct whole numbers spread wide: a quantity
    )
    roles = infer_roles(frame, ["y", "seen"])
    assert roles.numeric == ("length", "count", "amount")
    assert roles.categorical == ("colour", "flag")
    assert set(roles.left_out) == {"row", "note"} and roles.possible_ids == ("row",)


# --- contract ------------------------------------------------------------------------------------


def _contract(frame: pd.DataFrame, task: str = "binary", id_column: str | None = None) -> dict:
    return propose_project(frame, name="toy", target="y", time_column="seen", task=task, id_column=id_column).contract  # type: ignore[arg-type]


def test_contract_declares_columns_types_and_row_counts_at_batch_tier():
    frame = _sample(RNG.choice(["<=50K", ">50K"], N))
    suite = _contract(frame)
    assert suite["name"] == "toy" and suite["meta"]["contract_version"] == 1
    first, count = suite["expectations"][:2]
    assert first["type"] == "expect_table_columns_to_match_set"
    assert first["kwargs"] == {"column_set": list(frame.columns), "exact_match": True}
    assert count["kwargs"]["min_value"] == 1 and count["kwargs"]["max_value"] >= 100 * N
    types = {e["kwargs"]["column"]: e for e in suite["expectations"] if "type" in e["type"]}
    assert types["seen"]["kwargs"]["type_"] == "datetime64"
    assert types["colour"]["kwargs"]["type_"] == "str"
    assert types["length"]["kwargs"]["type_list"] == ["int64", "float64"]  # a CSV's whole-number column reads int
    parquet = _contract(frame.astype({"count": "int32"}))
    (count,) = _expectations(parquet, "expect_column_values_to_be_in_type_list", "count")
    assert count["kwargs"]["type_list"] == ["int64", "float64", "int32"]
    assert {e["meta"]["tier"] for e in [first, count, *types.values()]} == {"batch"}
    assert suite["meta"]["time_bounds"]["column"] == "seen"


def test_not_null_only_where_the_sample_has_no_gap_row_tier_except_time_and_id():
    frame = _sample(RNG.integers(0, 2, N), key=np.arange(N) * 7 + 1)
    frame.loc[5, "length"] = np.nan
    suite = _contract(frame, id_column="key")
    not_null = {e["kwargs"]["column"]: e["meta"]["tier"] for e in suite["expectations"] if "not_be_null" in e["type"]}
    assert "length" not in not_null
    assert not_null["count"] == not_null["colour"] == not_null["y"] == "row"
    assert not_null["seen"] == not_null["key"] == "batch"
    (unique,) = _expectations(suite, "expect_column_values_to_be_unique", "key")
    assert unique["meta"]["tier"] == "batch"


def test_numeric_ranges_are_the_sample_range_with_a_margin_and_stay_non_negative():
    frame = _sample(RNG.integers(0, 2, N))
    frame["length"] = np.linspace(10.0, 20.0, N)
    frame["count"] = np.tile([3, 8], N // 2)
    frame["delta"] = np.linspace(-5.0, 5.0, N)
    suite = _contract(frame)
    (length,) = _expectations(suite, "expect_column_values_to_be_between", "length")
    assert length["meta"]["tier"] == "row"
    assert length["kwargs"]["min_value"] == pytest.approx(5.0) and length["kwargs"]["max_value"] == pytest.approx(25.0)
    (count,) = _expectations(suite, "expect_column_values_to_be_between", "count")
    assert count["kwargs"] == {"column": "count", "min_value": 0, "max_value": 11}  # 3 - 2.5 clamped at 0, ints
    assert type(count["kwargs"]["max_value"]) is int
    (delta,) = _expectations(suite, "expect_column_values_to_be_between", "delta")
    assert delta["kwargs"]["min_value"] == pytest.approx(-10.0) and delta["kwargs"]["max_value"] == pytest.approx(10.0)


def test_category_sets_for_low_cardinality_only():
    many = np.array([f"shop-{i}" for i in range(40)])
    frame = _sample(RNG.integers(0, 2, N), shop=many[np.arange(N) % 40])
    suite = _contract(frame)
    (colour,) = _expectations(suite, "expect_column_values_to_be_in_set", "colour")
    assert colour["kwargs"]["value_set"] == ["blue", "green", "red"] and colour["meta"]["tier"] == "row"
    assert not _expectations(suite, "expect_column_values_to_be_in_set", "shop")  # 40 values: a set would be a guess


def test_the_target_class_set_quarantines_unknown_labels_and_regression_gets_a_range():
    binary = _contract(_sample(RNG.choice(["<=50K", ">50K"], N)))
    (classes,) = _expectations(binary, "expect_column_values_to_be_in_set", "y")
    assert classes["kwargs"]["value_set"] == ["<=50K", ">50K"] and classes["meta"]["tier"] == "row"
    regression = _contract(_sample(RNG.normal(50, 5, N)), task="regression")
    assert not _expectations(regression, "expect_column_values_to_be_in_set", "y")
    assert _expectations(regression, "expect_column_values_to_be_between", "y")


def test_every_expectation_declares_a_tier():
    suite = _contract(_sample(RNG.integers(3, 9, N)), task="multiclass")
    assert {e["meta"]["tier"] for e in suite["expectations"]} == {"batch", "row"}


# --- the proposal as a whole ---------------------------------------------------------------------


def test_proposal_fits_each_task():
    binary = propose_project(
        _sample(RNG.choice(["<=50K", ">50K"], N, p=[0.7, 0.3])), name="a", target="y", time_column="seen"
    )
    assert (binary.task, binary.primary_metric, binary.labels.positive) == ("binary", "roc_auc", ">50K")  # type: ignore[union-attr]
    grades = np.repeat([4, 5, 6, 7], [30, 150, 90, 30])
    multiclass = propose_project(_sample(grades), name="b", target="y", time_column="seen")
    assert (multiclass.task, multiclass.primary_metric, multiclass.floor) == ("multiclass", "accuracy", 0.51)
    assert primary_metric("multiclass", None, pd.Series([6] * 418 + [5] * 582))[1] == 0.59
    assert primary_metric("multiclass", None, pd.Series([6] * 418 + [5] * 282 + [7] * 300))[1] == 0.42
    regression = propose_project(_sample(RNG.normal(50, 5, N)), name="c", target="y", time_column="seen")
    assert (regression.task, regression.primary_metric, regression.labels) == ("regression", "r2", None)
    assert binary.task_inferred and "y" not in binary.roles.numeric + binary.roles.categorical
    assert binary.days == 7 and binary.rows == N
    assert binary.slices == ("colour",)


def test_unknown_or_clashing_columns_are_refused_by_flag():
    frame = _sample(RNG.integers(0, 2, N))
    with pytest.raises(InferenceError, match="--id-column nope: no such column"):
        propose_project(frame, name="a", target="y", time_column="seen", id_column="nope")
    with pytest.raises(InferenceError, match="three different columns"):
        propose_project(frame, name="a", target="y", time_column="seen", id_column="y")


@pytest.mark.parametrize(
    ("rows", "drift", "slices"), [(20, 50, 30), (336, 168, 33), (20_000, 1000, 500), (10**6, 1000, 500)]
)
def test_row_thresholds_scale_with_the_sample(rows, drift, slices):
    thresholds = row_thresholds(rows)
    assert (thresholds.drift_min_rows, thresholds.slice_min_rows) == (drift, slices)


def test_the_inferred_contract_function_needs_no_project():
    frame = _sample(RNG.integers(0, 2, N))
    roles = infer_roles(frame, ["y", "seen"])
    suite = infer_contract(frame, name="t", target="y", time_column="seen", id_column=None, roles=roles, labels=None)
    assert _expectations(suite, "expect_column_values_to_be_between", "y")  # no labels: the target is ranged


# --- params written from the proposal ------------------------------------------------------------


def test_params_take_the_sample_decisions_and_every_other_knob_from_the_template():
    template = yaml.safe_load((template_dir() / "params.yaml").read_text())
    proposal = propose_project(_sample(RNG.normal(50, 5, N)), name="toy", target="y", time_column="seen")
    params = _params(proposal, template, ("ada", "grace"))
    dataset = params["dataset"]
    assert dataset["task"] == "regression" and "labels" not in dataset  # regression: no labels key at all
    assert dataset["id_column"] is None and dataset["training_set"] == "data/training/toy.parquet"
    assert set(dataset) == {"name", "batches", "training_set", "quarantine", "target", "task", "id_column"} | {
        "time_column",
        "features",
    }
    assert params["contract"] == {**template["contract"], "name": "toy", "version": 1}
    assert params["gate"]["primary_metric"] == "r2" and params["gate"]["floor"] == 0.0
    assert params["gate"]["slices"]["numeric_bins"] == {} and params["gate"]["slices"]["min_rows"] == 30
    assert params["drift"]["min_rows"] == 150 and params["drift"]["psi_bins"] == template["drift"]["psi_bins"]
    assert params["approval"]["reviewers"] == ["ada", "grace"] and params["split"] == template["split"]
    binary = propose_project(
        _sample(RNG.choice(["no", "yes"], N, p=[0.8, 0.2])), name="b", target="y", time_column="seen"
    )
    assert _params(binary, template, ())["dataset"]["labels"] == {"classes": ["no", "yes"], "positive": "yes"}


def test_stand_ins_for_missing_values_are_reported_not_decided():
    frame = pd.DataFrame({"work": ["Private", "?", " ?", "Gov", "NA"], "n": [1, 2, 3, 4, 5], "y": ["a"] * 5})
    assert suspected_missing_tokens(frame, ["work", "n", "y"]) == {"work": {"?": 2, "NA": 1}}
