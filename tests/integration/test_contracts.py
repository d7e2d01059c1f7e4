"""The great-expectations adapter on the real library and the real loans contracts (v1: one tier; v2: two tiers)."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrain.adapters.contracts import ContractError, contract_hash, validate_batch
from retrain.domain.demo_data import DayChanges, SchemaBreak, generate_day
from retrain.domain.validation import REASONS_COLUMN, BatchValidation, ValidationReport
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
CONTRACT = REPO_ROOT / "data_contracts" / "loans" / "v2.json"
CONTRACT_V1 = REPO_ROOT / "data_contracts" / "loans" / "v1.json"
DAY = dt.date(2026, 1, 5)


def _check(frame: pd.DataFrame, max_share: float = 0.05, extra_columns: str = "refuse") -> BatchValidation:
    return validate_batch(
        frame,
        CONTRACT,
        batch_name="b.parquet",
        contract_name="loans",
        contract_version=2,
        max_quarantine_share=max_share,
        extra_columns=extra_columns,
    )


def _validate(changes: DayChanges, rows: int = 2000, max_share: float = 0.05) -> BatchValidation:
    return _check(generate_day(DAY, rows, 3, changes), max_share)


def test_clean_and_drifted_batches_are_accepted_whole():
    clean = _validate(DayChanges())
    assert clean.report.passed and clean.report.quarantined == 0 and len(clean.accepted) == 2000
    drifted = _validate(DayChanges(covariate_drift=1.0, concept_drift=1.0)).report
    assert drifted.passed, drifted.summary()
    assert drifted.expectations_evaluated > 50


@pytest.mark.parametrize(
    ("kind", "expectation", "column"),
    [
        (SchemaBreak.DROP_COLUMN, "expect_table_columns_to_match_set", None),
        (SchemaBreak.RENAME_COLUMN, "expect_table_columns_to_match_set", None),
        (SchemaBreak.WRONG_TYPE, "expect_column_values_to_be_of_type", "annual_income"),
        (SchemaBreak.NULL_TARGET, "expect_column_values_to_not_be_null", "defaulted"),
    ],
)
def test_batch_tier_breaks_refuse_the_batch_naming_expectation_and_column(kind, expectation, column):
    report = _validate(DayChanges(schema_break=kind)).report
    assert not report.passed
    assert (expectation, column, "batch") in {(f.expectation, f.column, f.tier) for f in report.failures}
    assert expectation in report.summary()


@pytest.mark.parametrize(
    ("kind", "expectation", "column", "value"),
    [
        (SchemaBreak.OUT_OF_RANGE, "expect_column_values_to_be_between", "credit_score", "9999"),
        (SchemaBreak.UNKNOWN_CATEGORY, "expect_column_values_to_be_in_set", "region", "atlantis"),
    ],
)
def test_row_tier_breaks_quarantine_exactly_the_failing_rows(kind, expectation, column, value):
    frame = generate_day(DAY, 2000, 3, DayChanges(schema_break=kind))
    result = _check(frame, max_share=0.2)
    report = result.report
    assert report.passed, report.summary()
    failure = next(f for f in report.failures if f.column == column)
    assert (failure.expectation, failure.tier) == (expectation, "row") and value in failure.details
    bad = frame[column].astype(str) == value
    assert report.quarantined == int(bad.sum()) == failure.unexpected_count
    assert set(result.quarantined["loan_id"]) == set(frame.loc[bad, "loan_id"])
    reasons = {json.loads(r)[0] for r in result.quarantined[REASONS_COLUMN]}
    assert reasons == {f"{expectation}({column})"}
    assert f"| row | `{expectation}` | `{column}` |" in report.to_markdown()


def test_too_much_quarantine_refuses_the_batch_by_policy():
    report = _validate(DayChanges(schema_break=SchemaBreak.OUT_OF_RANGE), max_share=0.01).report
    assert not report.passed
    assert any("more than the allowed 1.0%" in reason for reason in report.refusal_reasons)


def test_extra_columns_are_refused_or_dropped_with_a_warning_by_policy():
    frame = generate_day(DAY, 500, 3).assign(surprise=1)
    assert not _check(frame).report.passed
    dropped = _check(frame, extra_columns="drop")
    assert dropped.report.passed and "surprise" not in dropped.accepted.columns
    assert "dropped columns the contract does not declare: surprise" in dropped.report.warnings[0]


@st.composite
def damaged_batches(draw: st.DrawFn) -> pd.DataFrame:
    """Clean rows with random damage: out-of-range scores, unknown regions, missing required features."""
    rows = draw(st.integers(min_value=1, max_value=60))
    frame = generate_day(DAY, rows, draw(st.integers(0, 10_000)))
    for column, bad in (("credit_score", 9_999), ("region", "atlantis"), ("loan_amount", np.nan)):
        hit = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
        frame.loc[np.array(hit), column] = bad
    return frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_batches())
def test_nothing_is_lost_every_row_lands_once_unchanged(frame: pd.DataFrame):
    result = _check(frame, max_share=1.0)
    assert len(result.accepted) + len(result.quarantined) == len(frame) == result.report.rows
    restored = pd.concat([result.accepted, result.quarantined.drop(columns=[REASONS_COLUMN])])
    restored = restored.sort_values("loan_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(restored, frame.sort_values("loan_id").reset_index(drop=True))
    assert set(result.accepted["loan_id"]).isdisjoint(result.quarantined["loan_id"])


def test_dropped_column_is_named_in_the_column_set_failure():
    report = _validate(DayChanges(schema_break=SchemaBreak.DROP_COLUMN)).report
    column_set = next(f for f in report.failures if f.expectation == "expect_table_columns_to_match_set")
    assert "missing: credit_score" in column_set.details
    assert all(f.tier == "batch" for f in report.failures if f.column == "credit_score")


def test_missing_or_invalid_contract_is_a_clear_error(tmp_path: Path):
    frame = generate_day(DAY, 100, 3)
    with pytest.raises(ContractError, match=r"nope\.json does not exist"):
        validate_batch(frame, tmp_path / "nope.json", batch_name="b", contract_name="x", contract_version=1)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ContractError, match="not valid JSON"):
        validate_batch(frame, bad, batch_name="b", contract_name="x", contract_version=1)


def test_contract_hash_ignores_formatting_but_not_content(tmp_path: Path):
    data = json.loads(CONTRACT.read_text())
    reordered = tmp_path / "a.json"
    reordered.write_text(json.dumps(dict(reversed(list(data.items())))))
    assert contract_hash(reordered) == contract_hash(CONTRACT)
    data["expectations"][0]["kwargs"]["exact_match"] = False
    changed = tmp_path / "b.json"
    changed.write_text(json.dumps(data, indent=4))
    assert contract_hash(changed) != contract_hash(CONTRACT)


@cache
def _v1(changes: DayChanges, seed: int = 3) -> ValidationReport:
    """v1 on one generated batch; cached because several tests look at the same report."""
    frame = generate_day(DAY, 2000, seed, changes)
    result = validate_batch(frame, CONTRACT_V1, batch_name="b", contract_name="loans", contract_version=1)
    return result.report


@pytest.mark.parametrize("seed", [3, 11])
def test_v1_accepts_clean_and_fully_drifted_batches(seed):
    for changes in (DayChanges(), DayChanges(covariate_drift=1.0, concept_drift=1.0)):
        report = _v1(changes, seed)
        assert report.passed and not report.failures, report.summary()
        assert report.expectations_evaluated == len(json.loads(CONTRACT_V1.read_text())["expectations"])


@pytest.mark.parametrize(
    ("kind", "expectation", "column", "detail"),
    [
        (SchemaBreak.DROP_COLUMN, "expect_table_columns_to_match_set", None, "missing: credit_score"),
        (
            SchemaBreak.RENAME_COLUMN,
            "expect_table_columns_to_match_set",
            None,
            "unexpected: income; missing: annual_income",
        ),
        (SchemaBreak.WRONG_TYPE, "expect_column_values_to_be_of_type", "annual_income", "observed: str"),
        (SchemaBreak.OUT_OF_RANGE, "expect_column_values_to_be_between", "credit_score", "unexpected values: 9999"),
        (SchemaBreak.UNKNOWN_CATEGORY, "expect_column_values_to_be_in_set", "region", "unexpected values: atlantis"),
        (SchemaBreak.NULL_TARGET, "expect_column_values_to_not_be_null", "defaulted", "unexpected values: nan"),
    ],
)
def test_v1_refuses_every_schema_break_naming_expectation_and_column(kind, expectation, column, detail):
    report = _v1(DayChanges(schema_break=kind))
    assert not report.passed
    failure = next(f for f in report.failures if (f.expectation, f.column) == (expectation, column))
    assert detail in failure.details and failure.tier == "batch"
    assert f"{expectation} on column '{column or '(table)'}'" in report.summary()


def test_v1_counts_the_unexpected_rows():
    frame = generate_day(DAY, 2000, 3, DayChanges(schema_break=SchemaBreak.OUT_OF_RANGE))
    failure = next(
        f for f in _v1(DayChanges(schema_break=SchemaBreak.OUT_OF_RANGE)).failures if f.column == "credit_score"
    )
    assert failure.unexpected_count == int((frame["credit_score"] == 9_999).sum()) > 0


def test_an_expectation_that_errors_says_why():
    """GX nests the exception by metric id; the report must still carry its message."""
    report = _v1(DayChanges(schema_break=SchemaBreak.WRONG_TYPE))
    between = next(f for f in report.failures if f.expectation == "expect_column_values_to_be_between")
    assert between.column == "annual_income"
    assert between.details.startswith("could not be evaluated: Column values, min_value, and max_value")


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (
            {"type": "expect_column_values_to_be_bewteen", "kwargs": {"column": "age"}},
            "expect_column_values_to_be_bewteen",
        ),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"min_value": 1}},
            "#1 ('expect_column_values_to_be_between')",
        ),
        ("expect_table_row_count_to_be_between", "must be a JSON object"),
    ],
)
def test_an_expectation_gx_cannot_build_is_a_contract_error_not_silently_dropped(tmp_path: Path, expectation, message):
    """GX's ExpectationSuite only logs an unknown expectation and drops it: a typo must not weaken a contract."""
    path = tmp_path / "typo.json"
    first = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}
    path.write_text(json.dumps({"name": "typo", "expectations": [first, expectation]}))
    with pytest.raises(ContractError, match=r"typo\.json") as raised:
        validate_batch(generate_day(DAY, 10, 3), path, batch_name="b", contract_name="typo", contract_version=1)
    assert message in str(raised.value)
