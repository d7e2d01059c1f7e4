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


CONTRACT_V3 = REPO_ROOT / "data_contracts" / "loans" / "v3.json"
NOW = dt.datetime(2026, 1, 6, 12, 0, tzinfo=dt.UTC)  # the day after DAY's batch arrived


def _check_v3(frame: pd.DataFrame, batch_name: str, now: dt.datetime = NOW) -> BatchValidation:
    return validate_batch(
        frame,
        CONTRACT_V3,
        batch_name=batch_name,
        contract_name="loans",
        contract_version=3,
        max_quarantine_share=0.05,
        now=now,
    )


def test_v3_refuses_a_batch_dated_five_years_in_the_future_that_v2_let_through():
    future = generate_day(DAY, 500, 3).assign(application_date=lambda f: f["application_date"] + pd.DateOffset(years=5))
    assert _check(future).report.passed  # why v3 exists: v2 has no bound on the time column
    report = _check_v3(future, "upload.parquet").report
    assert not report.passed and report.quarantined == 0  # batch tier: refused whole, nothing quarantined
    failure = next(f for f in report.failures if f.expectation == "time_not_after_now")
    assert (failure.column, failure.unexpected_count, failure.tier) == ("application_date", 500, "batch")
    assert "time_not_after_now(application_date) failed" in report.refusal_reasons and "2031-01-05" in failure.details


def test_v3_allows_the_clock_skew_tolerance_and_judges_against_the_real_now_by_default():
    today = generate_day(DAY, 200, 3)
    just_before = dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(hours=12)
    assert _check_v3(today, f"loans-{DAY}.parquet", now=just_before).report.passed  # within 24 h: skew
    too_early = just_before - dt.timedelta(days=2)
    assert not _check_v3(today, f"loans-{DAY}.parquet", now=too_early).report.passed
    assert validate_batch(today, CONTRACT_V3, batch_name="b", contract_name="loans", contract_version=3).report.passed


def test_v3_refuses_rows_outside_the_day_its_file_name_declares():
    frame = generate_day(DAY, 400, 3)
    assert _check_v3(frame, f"loans-{DAY}.parquet").report.passed
    wrong_day = _check_v3(frame, "loans-2026-01-04.parquet").report
    assert not wrong_day.passed
    failure = next(f for f in wrong_day.failures if f.expectation == "time_within_batch_period")
    assert failure.unexpected_count == 400 and "[2026-01-04, 2026-01-05)" in failure.details
    mixed = frame.copy()
    mixed.loc[mixed.index[:3], "application_date"] = pd.Timestamp("2025-12-31")
    report = _check_v3(mixed, f"loans-{DAY}.csv").report
    assert (
        not report.passed and next(f for f in report.failures if f.column == "application_date").unexpected_count == 3
    )


def test_v3_checks_a_file_named_without_a_date_against_now_only_and_says_so():
    report = _check_v3(generate_day(DAY, 300, 3), "upload.parquet").report
    assert report.passed
    assert any("carries no day" in warning and "application_date" in warning for warning in report.warnings)


@pytest.mark.parametrize("contract", [CONTRACT, CONTRACT_V3], ids=["v2", "v3"])
def test_an_all_null_feature_quarantines_every_row_and_is_reported(contract: Path):
    # months_since_last_delinquency may be missing on a row (no delinquency), so no contract requires
    # it; a batch where it is missing on *every* row is a broken feed, not applicants without history.
    frame = generate_day(DAY, 300, 3).assign(months_since_last_delinquency=np.nan)
    result = validate_batch(
        frame, contract, batch_name=f"loans-{DAY}.parquet", contract_name="loans", contract_version=2
    )
    report = result.report
    assert not report.passed and report.quarantined == 300 and len(result.quarantined) == 300
    failure = next(f for f in report.failures if f.column == "months_since_last_delinquency")
    assert (failure.expectation, failure.tier, failure.unexpected_count) == ("column_not_entirely_null", "row", 300)
    assert "column_not_entirely_null(months_since_last_delinquency)" in result.quarantined[REASONS_COLUMN].iloc[0]
    assert "column_not_entirely_null on column 'months_since_last_delinquency', 300 rows" in report.summary()


def test_a_feature_missing_on_some_rows_only_is_still_accepted():
    frame = generate_day(DAY, 300, 3)
    assert frame["months_since_last_delinquency"].isna().any() and frame["months_since_last_delinquency"].notna().any()
    assert _check(frame).report.passed


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"future_tolerance_hours": 24}, "needs a 'column'"),
        ({"column": "application_date", "period": "week"}, "period must be 'day', 'month'"),
        ({"column": "application_date", "future_tolerance_hours": -1}, "future_tolerance_hours must be a number"),
        ({"column": "application_date", "tolerance": 1}, "unknown keys: tolerance"),
    ],
)
def test_a_malformed_time_bound_is_a_contract_error(tmp_path: Path, bounds: dict, message: str):
    suite = json.loads(CONTRACT_V3.read_text())
    suite["meta"]["time_bounds"] = bounds
    path = tmp_path / "v9.json"
    path.write_text(json.dumps(suite))
    with pytest.raises(ContractError, match=message):
        validate_batch(generate_day(DAY, 10, 3), path, batch_name="b", contract_name="loans", contract_version=9)
