"""A batch judged once by a contract is not judged again: the verdict is applied to the same rows,
and anything the verdict depends on (the file's bytes, the contract, the settings, the clock) misses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from retrain.adapters import validation_cache
from retrain.application.batches import validate_file
from retrain.domain.demo_data import DayChanges, SchemaBreak, generate_day
from retrain.domain.settings import Settings, load_settings
from retrain.domain.validation import BatchValidation
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
SETTINGS = load_settings(REPO_ROOT / "params.yaml")  # loans contract v3: time bounds and a period per file
DAY = dt.date(2026, 1, 5)


def _batch(directory: Path, frame: pd.DataFrame) -> Path:
    path = directory / f"loans-{DAY}.parquet"
    frame.to_parquet(path, index=False)
    return path


def _same(first: BatchValidation, second: BatchValidation) -> None:
    assert second.report == first.report
    pd.testing.assert_frame_equal(second.accepted, first.accepted)
    pd.testing.assert_frame_equal(second.quarantined, first.quarantined)


def test_the_second_validation_reuses_the_verdict_and_splits_the_rows_the_same(tmp_path: Path):
    cache = tmp_path / "cache"
    path = _batch(tmp_path, generate_day(DAY, 600, 3, DayChanges(schema_break=SchemaBreak.OUT_OF_RANGE)))
    fresh = validate_file(path, SETTINGS, REPO_ROOT, cache)
    assert not fresh.reused_verdict and fresh.report.quarantined > 0  # quarantined rows are kept too
    again = validate_file(path, SETTINGS, REPO_ROOT, cache)
    assert again.reused_verdict
    _same(fresh, again)
    _same(validate_file(path, SETTINGS, REPO_ROOT), again)  # what no cache at all gives


def _with(settings: Settings, **contract: object) -> Settings:
    return settings.model_copy(update={"contract": settings.contract.model_copy(update=contract)})


def test_a_changed_file_or_policy_is_judged_afresh(tmp_path: Path):
    cache = tmp_path / "cache"
    frame = generate_day(DAY, 400, 3, DayChanges(schema_break=SchemaBreak.UNKNOWN_CATEGORY))
    path = _batch(tmp_path, frame)
    validate_file(path, SETTINGS, REPO_ROOT, cache)
    stricter = _with(SETTINGS, max_quarantine_share=0.0)
    refused = validate_file(path, stricter, REPO_ROOT, cache)
    assert not refused.reused_verdict and not refused.report.passed
    changed = frame.copy()
    good_row = int(refused.accepted.index[0])
    changed.loc[good_row, "credit_score"] = 9999  # one more bad row in the same file name
    _batch(tmp_path, changed)
    judged = validate_file(path, SETTINGS, REPO_ROOT, cache)
    assert not judged.reused_verdict and judged.report.quarantined == refused.report.quarantined + 1


def test_a_verdict_that_depends_on_the_clock_is_never_kept(tmp_path: Path):
    cache = tmp_path / "cache"
    future = generate_day(DAY, 300, 3).assign(application_date=lambda f: f["application_date"] + pd.DateOffset(years=5))
    path = tmp_path / "upload.parquet"  # no period in the name: only the 'not after now' bound applies
    future.to_parquet(path, index=False)
    first = validate_file(path, SETTINGS, REPO_ROOT, cache)
    assert not first.report.passed and any(f.expectation == "time_not_after_now" for f in first.report.failures)
    assert not validate_file(path, SETTINGS, REPO_ROOT, cache).reused_verdict
    assert not list(cache.glob("*.json"))


def test_an_unreadable_entry_is_a_miss_and_is_replaced(tmp_path: Path):
    cache = tmp_path / "cache"
    path = _batch(tmp_path, generate_day(DAY, 300, 3))
    validate_file(path, SETTINGS, REPO_ROOT, cache)
    (entry,) = cache.glob("*.json")
    entry.write_text("{not json")
    assert not validate_file(path, SETTINGS, REPO_ROOT, cache).reused_verdict
    assert validation_cache.load(cache, entry.stem) is not None
    assert validate_file(path, SETTINGS, REPO_ROOT, cache).reused_verdict


def test_a_nightly_run_finds_the_known_verdicts_in_one_pass_and_only_the_new_day_is_left(tmp_path: Path):
    """known_verdicts: every batch seen under this contract comes back judged as before; a new day
    (None) is the only one the training flow validates with great-expectations."""
    from retrain.application.batches import known_verdicts

    cache = tmp_path / "cache"
    days = [DAY + dt.timedelta(days=offset) for offset in range(3)]
    paths = []
    for day in days:
        path = tmp_path / f"loans-{day}.parquet"
        generate_day(day, 400, 7).to_parquet(path, index=False)
        paths.append(path)
    seen = [validate_file(path, SETTINGS, REPO_ROOT, cache) for path in paths[:2]]
    known = known_verdicts(paths, SETTINGS, REPO_ROOT, cache)
    assert known[2] is None
    for before, again in zip(seen, known[:2], strict=True):
        assert again is not None and again.reused_verdict
        _same(before, again)
    assert known_verdicts(paths, SETTINGS, REPO_ROOT, tmp_path / "empty") == [None, None, None]
