"""The one line a person reads of a validation: a refused batch never reads as rows accepted."""

from __future__ import annotations

from retrain.domain.validation import ExpectationFailure, ValidationReport


def test_a_refused_batch_says_nothing_was_stored_and_names_the_missing_column():
    missing = ExpectationFailure("expect_column_to_exist", "income", details="column is missing")
    report = ValidationReport("day.parquet", "loans", 3, 20000, 40, failures=(missing,))
    head, *rest = report.summary().splitlines()
    assert head.startswith("day.parquet: REFUSED by contract loans v3: 20000 rows in, none stored (")
    assert "accepted" not in head
    assert rest == ["  - [batch] expect_column_to_exist on column 'income': column is missing"]


def test_an_accepted_batch_counts_accepted_and_quarantined_rows():
    row = ExpectationFailure("expect_column_values_to_be_between", "age", 4, tier="row")
    report = ValidationReport(
        "day.parquet", "loans", 3, 500, 40, failures=(row,), quarantined=4, max_quarantine_share=0.1
    )
    assert (
        report.summary().splitlines()[0]
        == "day.parquet: accepted by contract loans v3: 500 rows in, 496 accepted, 4 quarantined:"
    )
