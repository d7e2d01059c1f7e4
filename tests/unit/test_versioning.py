"""Which files `--commit` records in git and how the commit names its run (no git needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain.application.versioning import data_version_paths, ingest_message, training_message, wants_commit
from retrain.domain.settings import Settings, SettingsError, parse_settings

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def _settings(**sections: dict[str, object]) -> Settings:
    raw = yaml.safe_load(PARAMS.read_text())
    raw.pop("git", None)
    raw.update(sections)
    return parse_settings(raw, "params.yaml")


def test_git_commit_defaults_off_and_params_without_the_section_still_load():
    assert _settings().git.commit is False
    assert _settings(git={"commit": True}).git.commit is True
    with pytest.raises(SettingsError, match=r"git\.comit"):
        _settings(git={"comit": True})


@pytest.mark.parametrize(
    ("default", "flag", "expected"),
    [(False, None, False), (True, None, True), (True, False, False), (False, True, True)],
)
def test_the_flag_overrides_the_params_default(default: bool, flag: bool | None, expected: bool):
    assert wants_commit(_settings(git={"commit": default}), flag) is expected


def test_the_data_version_files_follow_the_dataset_paths():
    dataset = yaml.safe_load(PARAMS.read_text())["dataset"]
    dataset.update(batches="incoming/rows", quarantine="held/bad", training_set="snap/train.parquet")
    paths = data_version_paths(_settings(dataset=dataset))
    assert paths == sorted(
        [
            "dvc.lock",
            "incoming/rows.dvc",
            "incoming/.gitignore",
            "held/bad.dvc",
            "held/.gitignore",
            "held/batch_log.jsonl",
            "snap/.gitignore",
        ]
    )
    assert not any(path.endswith(".parquet") or path.endswith(".json") for path in paths)  # never the data


def test_commit_messages_name_the_run():
    settings = _settings()
    entry = {"batch": "2026-01-09.parquet", "accepted": 1490, "quarantined": 10}
    assert ingest_message(settings, entry) == (
        f"retrain ingest: batch 2026-01-09.parquet into {settings.dataset.batches} (1490 rows accepted, 10 quarantined)"
    )
    message = training_message(settings, "4", "0123456789abcdef", "run-42")
    assert message == f"retrain train: {settings.model.registered_name} v4 from snapshot 0123456789ab (flow run run-42)"
