"""Missing-value tokens (dataset.missing_values): read as missing before the contract judges a batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.adapters.files import mark_missing, read_batch
from retrain.domain.settings import SettingsError, contract_problems, parse_settings

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
TIME = "day"


def _parse(tokens: object):
    raw = yaml.safe_load(PARAMS.read_text())
    raw["dataset"]["missing_values"] = tokens
    return parse_settings(raw, "params.yaml")


def test_tokens_default_to_none_and_numbers_become_text():
    raw = yaml.safe_load(PARAMS.read_text())
    assert parse_settings(raw, "p").dataset.missing_values == {}
    settings = _parse({"age": [-999, "?"], "purpose": "n/a"})
    assert settings.dataset.missing_values == {"age": ("-999", "?"), "purpose": ("n/a",)}


@pytest.mark.parametrize("tokens", [{"age": []}, {"age": [""]}, {"age": [True]}, {" ": ["?"]}])
def test_unusable_tokens_are_refused_naming_the_key(tokens: object):
    with pytest.raises(SettingsError, match=r"key 'dataset\.missing_values"):
        _parse(tokens)


def test_tokens_for_a_column_the_contract_does_not_declare_name_the_key():
    settings = _parse({"age": ["?"], "colour": ["?"]})
    contract = {
        "expectations": [
            {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": [*_declared(settings), "age"]}}
        ]
    }
    problems = contract_problems(settings, contract, "v3.json")
    assert problems == ["key 'dataset.missing_values.colour': column 'colour' is not declared by the contract v3.json"]


def _declared(settings) -> list[str]:
    data = settings.dataset
    slices = settings.gate.slices
    return [
        data.target,
        data.id_column,
        data.time_column,
        *data.features.all,
        *slices.categorical,
        *slices.numeric_bins,
    ]


def _batch() -> pd.DataFrame:
    return pd.DataFrame(
        {
            TIME: ["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-02"],
            "income": ["1200.5", "?", "800", " ?"],
            "workclass": ["Private", " ?", "State-gov", "?"],
            "note": ["?", "ok", "ok", "ok"],  # no tokens declared: "?" is a value here
            "debt": [-999.0, 1.5, 2.0, -999.0],
        }
    )


TOKENS = {"income": ["?"], "workclass": ["?"], "debt": ["-999"], "absent": ["?"]}


def _check(frame: pd.DataFrame) -> None:
    assert pd.api.types.is_float_dtype(frame["income"])  # numeric once "?" is gone
    assert frame["income"].tolist()[0] == 1200.5 and frame["income"].isna().tolist() == [False, True, False, True]
    assert frame["workclass"].isna().tolist() == [False, True, False, True]
    assert frame["workclass"].dropna().tolist() == ["Private", "State-gov"]
    assert frame["note"].tolist() == ["?", "ok", "ok", "ok"]
    assert frame["debt"].isna().tolist() == [True, False, False, True]
    assert "absent" not in frame.columns


def test_csv_batches_read_tokens_as_missing(tmp_path: Path):
    path = tmp_path / "b.csv"
    _batch().to_csv(path, index=False)
    _check(read_batch(path, TIME, TOKENS))
    untouched = read_batch(path, TIME)
    assert (untouched["workclass"] == "?").sum() == 1 and untouched["income"].dtype != np.float64


def test_parquet_batches_read_tokens_as_missing(tmp_path: Path):
    path = tmp_path / "b.parquet"
    _batch().to_parquet(path, index=False)
    _check(read_batch(path, TIME, TOKENS))


def test_a_column_of_words_stays_text_and_a_column_only_of_tokens_keeps_its_type():
    frame = pd.DataFrame({"grade": ["a", "?", "3"], "empty": ["?", "?", "?"]})
    marked = mark_missing(frame, {"grade": ["?"], "empty": ["?"]})
    assert marked["grade"].tolist()[0] == "a" and marked["grade"].isna().tolist() == [False, True, False]
    assert not pd.api.types.is_numeric_dtype(marked["grade"])
    assert marked["empty"].isna().all() and not pd.api.types.is_numeric_dtype(marked["empty"])
    assert frame["grade"].tolist() == ["a", "?", "3"]  # the input is not changed


def test_a_not_null_expectation_judges_a_token_and_the_column_passes_its_numeric_type(tmp_path: Path):
    from retrain.adapters.contracts import validate_batch

    suite = {
        "name": "t",
        "meta": {},
        "expectations": [
            {
                "type": "expect_column_values_to_be_of_type",
                "kwargs": {"column": "income", "type_": "float64"},
                "meta": {"tier": "batch"},
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "income"}, "meta": {"tier": "row"}},
        ],
    }
    contract = tmp_path / "v1.json"
    contract.write_text(json.dumps(suite))
    path = tmp_path / "b.csv"
    _batch().to_csv(path, index=False)
    result = validate_batch(
        read_batch(path, TIME, TOKENS),
        contract,
        batch_name=path.name,
        contract_name="t",
        contract_version=1,
        max_quarantine_share=0.6,
        extra_columns="drop",
    )
    assert result.report.passed, result.report.summary()
    assert result.report.quarantined == 2 and len(result.accepted) == 2


def test_a_token_in_the_time_column_of_a_csv_is_a_missing_date_not_an_unreadable_file(tmp_path: Path):
    path = tmp_path / "b.csv"
    _batch().assign(**{TIME: ["2026-01-01", "?", "2026-01-02", "2026-01-02"]}).to_csv(path, index=False)
    frame = read_batch(path, TIME, {TIME: ["?"]})
    assert frame[TIME].isna().tolist() == [False, True, False, False]
    assert pd.api.types.is_datetime64_any_dtype(frame[TIME])
