"""``model.engine: dask``: the same flow, gate, evidence and registry, with the boosting on a Dask cluster.

A real ``distributed.LocalCluster`` (two worker processes on loopback) stands in for a remote cluster:
the flow reaches it only through ``RETRAIN_DASK_SCHEDULER``, as it would a scheduler on another machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.adapters.workspace import write_params
from retrain.cli import app
from retrain.cli.demo_run import write_demo_batches
from retrain.domain import fitting
from retrain.domain.demo_data import generate_day
from retrain.domain.distributed import ClusterTooSmall, DaskEngine
from tests.integration.conftest import registry_for, reviewed, workspace_settings

T = TypeVar("T")

# slow: a Dask LocalCluster and a whole lifecycle on it take a minute of a two-core machine; past one
# machine is CI's (make test-all), while make test keeps the in-process engines.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two single-thread worker processes and a scheduler, all on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


@pytest.fixture
def on_dask(workspace: Path, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace's project set to train on the cluster, which the environment names."""
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", cluster.scheduler_address)
    write_params(workspace, {"model": {"engine": "dask", "dask_workers": 2}})
    return workspace


def _task_stream(cluster: Any, start: Callable[[], T]) -> tuple[list[tuple[str, str]], T]:
    """Each task the cluster ran while ``start`` ran (its key and the worker that ran it), and what
    ``start`` returned."""
    from distributed import Client, get_task_stream

    with Client(cluster) as client, get_task_stream(client) as stream:  # type: ignore[no-untyped-call]
        result = start()
    return [(str(record["key"]), str(record["worker"])) for record in stream.data], result


def test_a_dask_trained_version_goes_through_the_same_gate_registry_reproduction_and_scoring(
    on_dask: Path, cluster: Any, tmp_path: Path
):
    settings = workspace_settings(on_dask)
    write_demo_batches(on_dask / settings.dataset.batches, settings, 5)

    tasks, result = _task_stream(
        cluster, lambda: reviewed(lambda: training(TrainingRequest(project_dir=str(on_dask), triggered_by="pytest")))
    )
    # the batches were validated by Prefect tasks on the cluster (prefect-dask), the model boosted there,
    # its rows spread over both workers
    validations = [key for key, _ in tasks if key.startswith("validate_batch_task")]
    assert len(validations) == 5, tasks
    boosting_workers = {worker for key, worker in tasks if not key.startswith("validate_batch_task")}
    assert boosting_workers == set(cluster.scheduler_info["workers"]), tasks

    # the same gate and promotion as in memory: every check judged, the reviewer's approval recorded
    assert result.outcome.promoted and result.challenger.version == "1"
    checks = {check.name for check in result.decision.checks}
    assert {"absolute_floor", "calibration", "latency_single", "reviewer_approval"} <= checks

    registry = registry_for(on_dask)
    evidence = registry.load_document(result.challenger.run_id, "evidence.json")
    assert evidence["training_settings"]["model"]["engine"] == "dask"
    assert evidence["training_settings"]["model"]["dask_workers"] == 2
    assert registry.by_version("1").version == "1"

    # the registered file is a native model that loads and scores through the ordinary path
    batch = tmp_path / "next-day.parquet"
    day = settings.demo.start_date + pd.Timedelta(days=5).to_pytimedelta()
    generate_day(day, settings.demo.rows_per_day, settings.demo.seed).to_parquet(batch, index=False)
    scored = scoring(ScoringRequest(batch=str(batch), project_dir=str(on_dask)))
    predictions = pd.read_parquet(scored.predictions)
    assert set(predictions["model_version"]) == {"1"} and predictions["score"].between(0, 1).all()

    # rebuilt on the same cluster size from the evidence: the same bytes
    rebuilt = CliRunner().invoke(app, ["reproduce", "1", "--project", str(on_dask), "--json"])
    report = json.loads(rebuilt.output)
    assert rebuilt.exit_code == 0 and report["identical"], report

    # a re-run on the same data, contract, params and code finds the version by its training key
    again = training(TrainingRequest(project_dir=str(on_dask), triggered_by="pytest"))
    assert again.challenger.version == "1"


def test_dask_gives_the_same_bytes_for_the_same_data_and_worker_count_and_refuses_a_short_cluster(
    on_dask: Path, cluster: Any
):
    from distributed import Client

    settings = workspace_settings(on_dask)
    frame = pd.concat(
        [generate_day(settings.demo.start_date + pd.Timedelta(days=day).to_pytimedelta(), 600, 3) for day in range(5)],
        ignore_index=True,
    )
    data, split, model = settings.dataset, settings.split, settings.model
    with Client(cluster) as client:  # type: ignore[no-untyped-call]
        first, second = (
            hashlib.sha256(fitting.fit_snapshot(frame, data, split, model, DaskEngine(client, 2)).model_bytes())
            for _ in range(2)
        )
        assert first.hexdigest() == second.hexdigest()
        one_worker = fitting.fit_snapshot(frame, data, split, model, DaskEngine(client, 1)).model.booster
        assert one_worker.num_boosted_rounds() >= 1  # a smaller count trains too (another, valid model)
        with pytest.raises(ClusterTooSmall, match=r"dask_workers is 3 but the Dask cluster has 2 worker"):
            fitting.fit_snapshot(frame, data, split, model, DaskEngine(client, 3, wait_seconds=0.5))


def test_dask_without_a_scheduler_address_fails_before_validating_with_the_variable_named(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("RETRAIN_DASK_SCHEDULER", raising=False)
    write_params(workspace, {"model": {"engine": "dask"}})
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)
    result = CliRunner().invoke(app, ["train", "--project", str(workspace)])
    assert result.exit_code == 1, result.output
    assert "RETRAIN_DASK_SCHEDULER is not set" in result.output
    assert "Traceback" not in result.output
    assert not list((workspace.parent / "state" / "reports").rglob("*.json"))  # no batch was validated
