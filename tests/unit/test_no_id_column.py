"""Data without an id column: settings accept null/omitted (never ""), rows get the keys each use needs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.adapters.files import write_pieces
from retrain.application.batches import assemble_training_set, store_quarantine
from retrain.application.monitoring import Piece, prediction_frame
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.rowkey import SOURCE_BATCH, SOURCE_ROW, content_key, order_by_content, source_positions
from retrain.domain.settings import Settings, SettingsError, contract_problems, load_settings, parse_settings
from retrain.domain.validation import BatchValidation, ValidationReport

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params.yaml"


def _raw() -> dict:
    return yaml.safe_load(PARAMS.read_text())


def _settings(**dataset: object) -> Settings:
    raw = _raw()
    raw["dataset"].update(dataset)
    return parse_settings(raw, "params.yaml")


def _no_id() -> Settings:
    raw = _raw()
    del raw["dataset"]["id_column"]
    return parse_settings(raw, "params.yaml")


def test_id_column_may_be_null_or_omitted():
    assert _settings(id_column=None).dataset.id_column is None
    assert _no_id().dataset.id_column is None
    assert _no_id().dataset.special_columns == ("defaulted", "application_date")


def test_an_empty_id_column_is_refused_naming_the_key():
    for blank in ("", "  "):
        with pytest.raises(
            SettingsError, match=r"params\.yaml: key 'dataset\.id_column': must name a column, or be null"
        ):
            _settings(id_column=blank)


def test_id_column_still_must_differ_from_target_and_time():
    with pytest.raises(SettingsError, match="must be different columns"):
        _settings(id_column="defaulted")


def test_the_contract_need_not_declare_an_id_column_when_there_is_none():
    contract = {"expectations": [{"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": []}}]}
    settings = _no_id()
    named = {f"{key}" for key in contract_problems(settings, contract, "c")}
    assert not any("dataset.id_column" in problem for problem in named)
    with_id = contract_problems(_settings(id_column="loan_id"), contract, "c")
    assert any("key 'dataset.id_column': column 'loan_id'" in problem for problem in with_id)


def test_a_project_without_id_loads_against_a_contract_without_it(tmp_path: Path):
    shutil.copytree(REPO / "data_contracts", tmp_path / "data_contracts")
    suite_path = tmp_path / "data_contracts" / "loans" / "v3.json"
    suite = json.loads(suite_path.read_text())
    for expectation in suite["expectations"]:
        if "column_set" in expectation["kwargs"]:
            expectation["kwargs"]["column_set"].remove("loan_id")
    suite_path.write_text(json.dumps(suite))
    raw = _raw()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match=r"key 'dataset\.id_column': column 'loan_id' is not declared"):
        load_settings(tmp_path / "params.yaml")
    del raw["dataset"]["id_column"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert load_settings(tmp_path / "params.yaml").dataset.id_column is None


def _frame(rows: int, seed: int) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "application_date": pd.to_datetime("2026-01-01") + pd.to_timedelta(generator.integers(0, 3, rows), "D"),
            "x": generator.integers(0, 4, rows).astype(float),
            "colour": generator.choice(["red", "blue"], rows),
        }
    )


def test_content_key_depends_on_values_not_on_index_or_column_order():
    frame = _frame(50, 1)
    moved = frame[["colour", "x", "application_date"]].set_axis(range(100, 150))
    assert (content_key(frame).to_numpy() == content_key(moved).to_numpy()).all()
    changed = frame.assign(x=frame["x"] + 1)
    assert (content_key(frame).to_numpy() != content_key(changed).to_numpy()).all()


def test_order_by_content_is_the_same_whatever_order_rows_come_in():
    frame = _frame(200, 2)
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(order_by_content(frame), order_by_content(shuffled))


def _validation(name: str, accepted: pd.DataFrame, quarantined: pd.DataFrame | None = None) -> BatchValidation:
    quarantined = accepted.iloc[0:0] if quarantined is None else quarantined
    report = ValidationReport(name, "loans", 3, len(accepted) + len(quarantined), 1, quarantined=len(quarantined))
    return BatchValidation(report, accepted, quarantined)


def test_a_snapshot_without_id_has_the_same_bytes_whatever_the_order_of_batches_and_rows(tmp_path: Path):
    settings = _no_id()
    first, second = _frame(120, 4), _frame(80, 5)
    one = assemble_training_set([_validation("a", first), _validation("b", second)], settings, tmp_path / "1")
    reordered = [_validation("b", second.sample(frac=1.0, random_state=6)), _validation("a", first[::-1])]
    two = assemble_training_set(reordered, settings, tmp_path / "2")
    assert one.read_bytes() == two.read_bytes()
    assert pd.read_parquet(one)["application_date"].is_monotonic_increasing


def test_quarantined_rows_without_id_carry_their_position_in_the_batch(tmp_path: Path):
    batch = _frame(10, 7)
    quarantined = batch.iloc[[2, 7]].assign(_quarantine_reasons='["x"]')
    store_quarantine([_validation("loans-2026-01-01.csv", batch.drop(index=[2, 7]), quarantined)], _no_id(), tmp_path)
    stored = pd.read_parquet(tmp_path / _no_id().dataset.quarantine / "loans-2026-01-01.parquet")
    assert stored[SOURCE_ROW].tolist() == [2, 7]
    assert stored["x"].tolist() == batch["x"].iloc[[2, 7]].tolist()


def test_quarantined_rows_with_an_id_are_stored_as_they_came(tmp_path: Path):
    settings = _settings(id_column="loan_id")
    batch = _frame(4, 8).assign(loan_id=[10, 11, 12, 13])
    store_quarantine([_validation("b.csv", batch.iloc[:3], batch.iloc[3:])], settings, tmp_path)
    stored = pd.read_parquet(tmp_path / settings.dataset.quarantine / "b.parquet")
    assert SOURCE_ROW not in stored.columns and stored["loan_id"].tolist() == [13]


def test_source_positions_name_the_file_and_the_row_in_it():
    keys = source_positions(("a.csv", "b.csv"), (2, 3))
    assert keys[SOURCE_BATCH].tolist() == ["a.csv", "a.csv", "b.csv", "b.csv", "b.csv"]
    assert keys[SOURCE_ROW].tolist() == [0, 1, 0, 1, 2]
    assert len(source_positions((), ())) == 0
    with pytest.raises(ValueError, match="one row count per batch"):
        source_positions(("a.csv",), (1, 2))


def _champion() -> ModelVersionInfo:
    return ModelVersionInfo(version="3", run_id="r", metrics={}, data_md5=None, contract=None)


def test_predictions_without_id_are_keyed_by_batch_and_position_across_pieces(tmp_path: Path):
    # batch a.csv in one piece, b.csv in two (rows 0-1, then row 2): positions count from each file's start
    pieces = [Piece("a.csv", 0, _frame(2, 9)), Piece("b.csv", 0, _frame(2, 10)), Piece("b.csv", 2, _frame(1, 12))]
    scores = [np.array([0.0, 0.25]), np.array([0.5, 0.75]), np.array([1.0])]
    frames = (
        prediction_frame(piece, _no_id(), _champion(), score, None, None)
        for piece, score in zip(pieces, scores, strict=True)
    )
    written = pd.read_parquet(write_pieces(frames, tmp_path / "p.parquet"))
    assert written[SOURCE_BATCH].tolist() == ["a.csv"] * 2 + ["b.csv"] * 3
    assert written[SOURCE_ROW].tolist() == [0, 1, 0, 1, 2]
    assert written["score"].tolist() == pytest.approx(np.linspace(0, 1, 5).tolist())
    assert (written["model_version"] == "3").all()
    assert not (tmp_path / "p.parquet.tmp").exists()


def test_predictions_with_an_id_keep_it(tmp_path: Path):
    frame = _frame(3, 11).assign(loan_id=[7, 8, 9])
    settings = _settings(id_column="loan_id")
    written = prediction_frame(Piece("a.csv", 0, frame), settings, _champion(), np.zeros(3), None, None)
    assert written["loan_id"].tolist() == [7, 8, 9] and SOURCE_ROW not in written.columns
