"""Row thresholds (drift.min_rows, gate.slices.min_rows) against the sizes of a project's batches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.adapters.files import count_rows
from retrain.application.batches import row_threshold_check
from retrain.domain.row_thresholds import holdout_rows, nice_floor, row_threshold_warnings
from retrain.domain.settings import Settings, parse_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("value", "expected"), [(0.4, 1), (7, 7), (168, 160), (4321, 4300), (1_000_000, 1_000_000)])
def test_nice_floor_keeps_two_significant_digits_and_never_rounds_up(value: float, expected: int):
    assert nice_floor(value) == expected


def test_holdout_rows_count_the_newest_days_that_hold_data():
    times = pd.Series(
        pd.to_datetime(["2026-01-01 10:00", "2026-01-01 12:00", "2026-01-03 00:00", "2026-01-08 00:00"] * 2)
    )
    assert holdout_rows(times, 1) == 2
    assert holdout_rows(times, 2) == 4  # 2026-01-03 and 2026-01-08: days without data are skipped
    assert holdout_rows(times, 10) == 8


def test_thresholds_that_fit_give_no_warning():
    assert row_threshold_warnings([20_000] * 5, 1, 1000, 500, 40_000) == []
    assert row_threshold_warnings([], 1, 1000, 500, None) == []


def test_a_weekly_batch_of_336_rows_under_the_daily_default_is_told_with_key_size_and_value():
    (drift, slices) = row_threshold_warnings([336, 340, 330], 1, 1000, 500, 336)
    assert drift.key == "drift.min_rows" and drift.suggested == 160
    assert "a typical batch has 336 rows" in drift.message and "can never trigger retraining" in drift.message
    assert "set drift.min_rows to about 160" in drift.message
    assert slices.key == "gate.slices.min_rows" and slices.suggested == 33
    assert "the holdout has about 336 rows: no slice is ever judged" in slices.message


def test_a_wider_window_reaches_the_threshold_but_a_single_batch_does_not():
    (warning,) = row_threshold_warnings([400] * 4, 3, 1000, 10, 800)
    assert warning.key == "drift.min_rows" and "a drift check of a single batch" in warning.message
    assert row_threshold_warnings([400] * 4, 3, 400, 10, 800) == []


def test_the_typical_batch_is_the_median_so_one_odd_batch_does_not_decide():
    assert row_threshold_warnings([5000, 5000, 10], 1, 1000, 1, None) == []
    (warning,) = row_threshold_warnings([10, 10, 5000], 1, 1000, 1, None)
    assert "a typical batch has 10 rows" in warning.message


def test_count_rows_reads_parquet_metadata_and_counts_csv_lines(tmp_path: Path):
    frame = pd.DataFrame({"a": np.arange(37), "b": ['x,"y"'] * 37})
    frame.to_parquet(tmp_path / "b.parquet")
    frame.to_csv(tmp_path / "b.csv", index=False)
    assert count_rows(tmp_path / "b.parquet") == 37
    assert count_rows(tmp_path / "b.csv") == 37
    (tmp_path / "unterminated.csv").write_text("a,b\n1,2\n3,4")
    assert count_rows(tmp_path / "unterminated.csv") == 2
    (tmp_path / "header.csv").write_text("a,b\n")
    assert count_rows(tmp_path / "header.csv") == 0


def _project(tmp_path: Path, rows_per_day: int, days: int, file_format: str) -> Settings:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    settings = parse_settings(raw, "params.yaml")
    batches = tmp_path / settings.dataset.batches
    batches.mkdir(parents=True)
    for day in range(days):
        frame = pd.DataFrame(
            {
                settings.dataset.time_column: pd.Timestamp("2026-01-01") + pd.Timedelta(days=day),
                "x": np.arange(rows_per_day),
            }
        )
        path = batches / f"b-{day:02d}.{file_format}"
        frame.to_csv(path, index=False) if file_format == "csv" else frame.to_parquet(path, index=False)
    return settings


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_project_of_small_batches_gets_both_warnings(tmp_path: Path, file_format: str):
    settings = _project(tmp_path, 200, 4, file_format)  # params.yaml: drift 1000, slices 500, holdout 2 days
    warnings = row_threshold_check(settings, tmp_path)
    assert [w.key for w in warnings] == ["drift.min_rows", "gate.slices.min_rows"]
    assert "a typical batch has 200 rows" in warnings[0].message
    assert "the holdout has about 400 rows" in warnings[1].message


def test_the_holdout_is_estimated_from_the_snapshot_when_there_is_one(tmp_path: Path):
    settings = _project(tmp_path, 300, 4, "parquet")
    snapshot = tmp_path / settings.dataset.training_set
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.repeat(np.arange(4), 100), "D")
    pd.DataFrame({settings.dataset.time_column: days}).to_parquet(snapshot)
    (warning,) = [w for w in row_threshold_check(settings, tmp_path) if w.key == "gate.slices.min_rows"]
    assert "the holdout has about 200 rows" in warning.message


def test_large_batches_and_a_project_without_batches_give_no_warning(tmp_path: Path):
    settings = _project(tmp_path / "big", 1500, 3, "parquet")
    assert row_threshold_check(settings, tmp_path / "big") == []
    assert row_threshold_check(settings, tmp_path / "none") == []
    shutil.rmtree(tmp_path / "big")


def test_train_drift_and_score_tell_the_warnings_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from types import SimpleNamespace

    from retrain.cli import context

    settings = _project(tmp_path, 200, 4, "parquet")
    where = SimpleNamespace(project_dir=tmp_path, params_path=tmp_path / "params.yaml")
    context.warn_row_thresholds(where, settings)  # type: ignore[arg-type]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("warning: ") == 2
    assert "set drift.min_rows to about 100 (in params.yaml)" in captured.err
