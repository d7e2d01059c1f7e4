"""Retention's selection (retrain.domain.retention): what is past it, what is kept and why; no IO."""

from __future__ import annotations

import datetime as dt

from retrain.domain.lifecycle import LedgerEntry, chain_breaks
from retrain.domain.retention import (
    PurgeRecord,
    StoredFile,
    VersionSnapshot,
    last_purge,
    past,
    plan_purge,
    purge_record_of,
    purged_snapshots,
    record_lines,
)
from retrain.domain.settings import RetentionSettings

TODAY = dt.date(2026, 3, 1)


def _day(days_ago: int) -> dt.date:
    return TODAY - dt.timedelta(days=days_ago)


def test_age_counts_whole_days_from_the_datas_own_day_and_null_keeps_forever():
    assert not past(_day(30), 30, TODAY) and past(_day(31), 30, TODAY)
    assert past(_day(1), 0, TODAY) and not past(TODAY, 0, TODAY)
    assert not past(_day(10_000), None, TODAY)


def test_each_kind_of_file_has_its_own_retention():
    files = [
        StoredFile("batch", "data/batches/a.parquet", _day(40)),
        StoredFile("batch", "data/batches/b.parquet", _day(5)),
        StoredFile("quarantine", "data/quarantine/a.parquet", _day(40)),
        StoredFile("predictions", "/state/predictions/a.parquet", _day(8)),
        StoredFile("predictions", "/state/predictions/b.parquet", _day(6)),
    ]
    plan = plan_purge(files, [], RetentionSettings(batches_days=30, predictions_days=7), TODAY)
    assert [item.path for item in plan.files] == ["data/batches/a.parquet", "/state/predictions/a.parquet"]
    assert not plan.snapshots and not plan.empty
    assert plan_purge(files, [], RetentionSettings(), TODAY).empty  # null everywhere: nothing ever goes


def test_a_snapshot_past_retention_goes_unless_an_alias_needs_it_and_the_kept_ones_are_named_with_why():
    snapshots = [
        VersionSnapshot("1", "a" * 32, _day(200), ("previous-champion",)),
        VersionSnapshot("2", "b" * 32, _day(150)),
        VersionSnapshot("3", "c" * 32, _day(120), ("champion",)),
        VersionSnapshot("4", "b" * 32, _day(100)),  # the same data as v2: one object, two versions
        VersionSnapshot("5", "d" * 32, _day(10)),  # young enough
        VersionSnapshot("6", "e" * 32, _day(300), ("challenger",)),
        VersionSnapshot("7", "f" * 32, None),  # no evidence of its days: never past
    ]
    plan = plan_purge([], snapshots, RetentionSettings(snapshots_days=90), TODAY)
    assert [(item.md5, item.versions, item.last_day) for item in plan.snapshots] == [("b" * 32, ("2", "4"), _day(100))]
    assert [item.text for item in plan.kept] == [
        f"snapshot {'c' * 32} for champion v3 (reproduce)",
        f"snapshot {'a' * 32} for previous-champion v1 (reproduce, and a rollback may make it serve again)",
        f"snapshot {'e' * 32} for challenger v6 (waiting for review: it may become champion)",
    ]
    again = plan_purge([], snapshots, RetentionSettings(snapshots_days=90), TODAY, gone=frozenset({"b" * 32}))
    assert not again.snapshots  # already deleted: never deleted (nor recorded) twice


def test_a_snapshot_shared_with_a_kept_version_stays():
    snapshots = [VersionSnapshot("2", "b" * 32, _day(150)), VersionSnapshot("3", "b" * 32, _day(150), ("champion",))]
    plan = plan_purge([], snapshots, RetentionSettings(snapshots_days=1), TODAY)
    assert not plan.snapshots and [item.version for item in plan.kept] == ["3"]


def _purge_entry(position: int, snapshots: list[dict], champion: str | None = "3") -> LedgerEntry:
    record = PurgeRecord(
        reason="gdpr art. 17", today="2026-03-01", retention={"snapshots_days": 90}, snapshots=tuple(snapshots)
    )
    return LedgerEntry(
        model_name="m",
        kind="purge",
        champion_before=champion,
        challenger=None,
        champion_after=champion,
        actor="ada",
        evidence={"purge": record.to_dict()},
        recorded_at=dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC),
        position=position,
    )


def test_the_ledger_tells_when_by_whom_and_why_a_snapshot_was_purged_and_a_purge_keeps_the_chain():
    promotion = LedgerEntry("m", "promotion", None, "3", "3", "ada", position=1)
    purge = _purge_entry(2, [{"md5": "b" * 32, "versions": ["2"], "last_day": "2025-11-01", "rows": 10}])
    entries = [promotion, purge]
    assert chain_breaks(entries) == []
    gone = purged_snapshots(entries)["b" * 32]
    assert gone.sentence("2").startswith(
        f"the data of v2 (snapshot {'b' * 32}) was purged on 2026-03-01 by ada (gdpr art. 17)"
    )
    assert purge_record_of(promotion) is None and last_purge(entries) is not None
    record = purge_record_of(purge)
    assert record is not None and record.md5s == ["b" * 32]
    assert any(line.startswith(f"deleted: snapshot {'b' * 32} of v2") for line in record_lines(record))


def test_retention_is_optional_null_by_default_and_refuses_negative_days():
    import pytest

    from retrain.domain.settings import load_settings
    from tests.conftest import REPO_ROOT

    settings = load_settings(REPO_ROOT / "params.yaml")
    assert settings.retention == RetentionSettings() and settings.schedules.purge_cron == "0 3 * * *"
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        RetentionSettings(batches_days=-1)


def test_a_files_own_day_is_its_newest_time_a_quarantine_files_its_batchs_else_when_it_was_written(tmp_path):
    import os

    import pandas as pd

    from retrain.adapters.environment import resolve_runtime
    from retrain.application.retention import stored_files
    from retrain.domain.settings import load_settings
    from tests.conftest import REPO_ROOT

    settings = load_settings(REPO_ROOT / "params.yaml")
    time = settings.dataset.time_column
    project = tmp_path / "project"
    (project / settings.dataset.batches).mkdir(parents=True)
    (project / settings.dataset.quarantine).mkdir(parents=True)
    stamps = pd.to_datetime(["2026-01-02 23:00", "2026-01-03 01:00"])
    pd.DataFrame({time: stamps}).to_parquet(project / settings.dataset.batches / "b.parquet")
    pd.DataFrame({time: [pd.NaT]}).to_parquet(project / settings.dataset.quarantine / "b.parquet")
    orphan = project / settings.dataset.quarantine / "orphan.parquet"
    pd.DataFrame({"other": [1]}).to_parquet(orphan)
    written = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC).timestamp()
    os.utime(orphan, (written, written))
    runtime = resolve_runtime({"RETRAIN_HOME": str(tmp_path / "state")}, project)
    found = {(item.kind, item.path): item.day for item in stored_files(runtime, settings)}
    assert found == {
        ("batch", f"{settings.dataset.batches}/b.parquet"): dt.date(2026, 1, 3),
        ("quarantine", f"{settings.dataset.quarantine}/b.parquet"): dt.date(2026, 1, 3),
        ("quarantine", f"{settings.dataset.quarantine}/orphan.parquet"): dt.date(2026, 2, 1),
    }
