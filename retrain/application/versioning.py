"""Commit what DVC wrote to git after an ingest or a training, so the project's history says which
data each run used (``retrain ingest --commit``, ``retrain train --commit``, or ``git.commit: true``).

Which files: the pointers DVC rewrites for the tracked data directories (``<dir>.dvc`` and the
``.gitignore`` beside them), ``dvc.lock`` (the training snapshot's md5) with the ``.gitignore`` beside
the snapshot, and the batch log. Nothing else is staged.

A training commits after its version is registered, with the evidence already gathered: the commit
cannot change the model's training key or evidence (both are recorded before it exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrain.adapters.git import GitCommit, commit_paths
from retrain.application.ingest import BATCH_LOG
from retrain.domain.settings import Settings

DVC_LOCK = "dvc.lock"


def wants_commit(settings: Settings, flag: bool | None) -> bool:
    """``--commit``/``--no-commit`` when given, else ``git.commit`` from params."""
    return settings.git.commit if flag is None else flag


def data_version_paths(settings: Settings) -> list[str]:
    """The files, relative to the project, in which DVC records the data versions of this project."""
    data = settings.dataset
    paths = {DVC_LOCK, (Path(data.quarantine).parent / BATCH_LOG).as_posix()}
    for tracked in (data.batches, data.quarantine):
        paths |= {f"{tracked}.dvc", (Path(tracked).parent / ".gitignore").as_posix()}
    paths.add((Path(data.training_set).parent / ".gitignore").as_posix())
    return sorted(paths)


def ingest_message(settings: Settings, entry: dict[str, Any]) -> str:
    """The commit message of an ingest: the batch and what became of its rows."""
    return (
        f"retrain ingest: batch {entry['batch']} into {settings.dataset.batches} "
        f"({entry['accepted']} rows accepted, {entry['quarantined']} quarantined)"
    )


def training_message(settings: Settings, version: str, md5: str, flow_run_id: str) -> str:
    """The commit message of a training: the model version, its snapshot and the flow run."""
    return (
        f"retrain train: {settings.model.registered_name} v{version} from snapshot {md5[:12]} (flow run {flow_run_id})"
    )


def commit_data_versions(project_dir: Path, settings: Settings, message: str) -> GitCommit:
    """Commit the data-version files that changed; says so when nothing did."""
    return commit_paths(project_dir, data_version_paths(settings), message)
