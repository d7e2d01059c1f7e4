"""The great-expectations adapter on the real library and the real v1 contract."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from retrain.adapters.contracts import ContractError, contract_hash, validate_batch
from retrain.domain.demo_data import DayChanges, SchemaBreak, generate_day
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
CONTRACT = REPO_ROOT / "data_contracts" / "loans" / "v1.json"
DAY = dt.date(2026, 1, 5)


def _validate(changes: DayChanges, rows: int = 2000):
    frame = generate_day(DAY, rows, 3, changes)
    return validate_batch(frame, CONTRACT, batch_name="b.parquet", contract_name="loans", contract_version=1)


def test_clean_and_drifted_batches_pass():
    assert _validate(DayChanges()).passed
    drifted = _validate(DayChanges(covariate_drift=1.0, concept_drift=1.0))
    assert drifted.passed, drifted.summary()
    assert drifted.expectations_evaluated > 50


@pytest.mark.parametrize(
    ("kind", "expectation", "column"),
    [
        (SchemaBreak.DROP_COLUMN, "expect_table_columns_to_match_set", None),
        (SchemaBreak.RENAME_COLUMN, "expect_table_columns_to_match_set", None),
        (SchemaBreak.WRONG_TYPE, "expect_column_values_to_be_of_type", "annual_income"),
        (SchemaBreak.OUT_OF_RANGE, "expect_column_values_to_be_between", "credit_score"),
        (SchemaBreak.UNKNOWN_CATEGORY, "expect_column_values_to_be_in_set", "region"),
        (SchemaBreak.NULL_TARGET, "expect_column_values_to_not_be_null", "defaulted"),
    ],
)
def test_each_schema_break_is_named_by_expectation_and_column(kind, expectation, column):
    report = _validate(DayChanges(schema_break=kind))
    assert not report.passed
    assert (expectation, column) in {(f.expectation, f.column) for f in report.failures}, report.summary()
    assert expectation in report.summary()


def test_dropped_column_is_named_in_the_column_set_failure():
    report = _validate(DayChanges(schema_break=SchemaBreak.DROP_COLUMN))
    column_set = next(f for f in report.failures if f.expectation == "expect_table_columns_to_match_set")
    assert "missing: credit_score" in column_set.details
    assert any(f.column == "credit_score" and "missing" in f.details for f in report.failures)


def test_out_of_range_counts_and_shows_values():
    report = _validate(DayChanges(schema_break=SchemaBreak.OUT_OF_RANGE))
    failure = next(f for f in report.failures if f.column == "credit_score")
    assert failure.unexpected_count and failure.unexpected_count > 0
    assert "9999" in failure.details
    assert "| `expect_column_values_to_be_between` | `credit_score` |" in report.to_markdown()


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
