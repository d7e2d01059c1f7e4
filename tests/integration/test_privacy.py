"""Sensitive columns never leave the data store (issue 18, points 1 and 2).

A project whose ``region`` (a categorical feature and a slice column) is declared sensitive in its
contract and whose id is declared sensitive in params.yaml. Every batch carries a unique marker in
both; one row of each batch fails the contract on the sensitive column with a marker value. After two
trainings (the second judged against the champion), a drift check and a scoring run, every place that
leaves the store is searched for the markers: MLflow (every artifact of every run and logged model,
params, tags, metric names, registered versions' tags), Prefect (artifacts, logs, persisted results),
the reports and ledger under the state dir, captured log output and the notifications sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from flows.drift import DriftRequest, drift
from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.adapters.contracts import release_contract
from retrain.adapters.environment import resolve_runtime
from retrain.application.reproduce import reproduce
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.demo_data import NO_CHANGES, generate_day
from retrain.domain.errors import InputError
from retrain.domain.privacy import SALT_ENV, PrivacyError
from tests.integration.conftest import registry_for, reviewed, workspace_settings
from tests.integration.test_notifications import webhook  # noqa: F401 - a fixture

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

MARKER = "ZQX-MARKER-7731"
BAD_MARKER = f"{MARKER}-BAD"  # not in the contract's value set: its row is quarantined
ID_MARKER = 7731000777  # + the day's index: one planted id per batch
AGE_MARKER = f"{MARKER}-AGE"  # a malformed value of a sensitive numeric feature in a scored batch
#: every planted value: the region marker (the others contain it) and each batch's id (days 0 to 8)
MARKERS = (MARKER, *(str(ID_MARKER + index) for index in range(9)))
SENSITIVE = "region"


def _sensitive_project(project: Path) -> None:
    """Contract v4 = v3 with the marker among the regions and ``region`` declared sensitive in its
    meta; params: contract v4, the id declared sensitive in ``privacy``, few boosting rounds."""
    contracts = project / "data_contracts" / "loans"
    suite = json.loads((contracts / "v3.json").read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_in_set" and expectation["kwargs"]["column"] == SENSITIVE:
            expectation["kwargs"]["value_set"].append(MARKER)
    suite["meta"]["columns"] = {SENSITIVE: {"sensitive": True}}
    (contracts / "v4.json").write_text(json.dumps(suite, indent=2))
    release_contract(project / "data_contracts", "loans", 4)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["contract"]["version"] = 4
    params["privacy"] = {"sensitive": ["loan_id", "age"]}
    params["model"]["xgboost"]["num_boost_round"] = 30
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _plant(path: Path, index: int) -> None:
    """A marker region in every seventh row, a marker id in the first, a marker that fails the contract."""
    frame = pd.read_parquet(path)
    frame.loc[frame.index % 7 == 3, SENSITIVE] = MARKER
    frame.loc[0, "loan_id"] = ID_MARKER + index
    frame.loc[1, SENSITIVE] = BAD_MARKER
    frame.to_parquet(path, index=False)


def _new_batch(project: Path, directory: Path, index: int) -> Path:
    settings = workspace_settings(project)
    day = settings.demo.start_date + pd.Timedelta(days=index).to_pytimedelta()
    path = directory / f"{settings.dataset.name}-{day.isoformat()}.parquet"
    generate_day(day, settings.demo.rows_per_day, settings.demo.seed, NO_CHANGES).to_parquet(path, index=False)
    _plant(path, index)
    return path


def _hits(texts: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{where}: {marker}" for where, text in texts for marker in MARKERS if marker in text]


def _files(root: Path, skip: tuple[Path, ...] = ()) -> Iterable[tuple[str, str]]:
    for path in [root] if root.is_file() else sorted(root.rglob("*")):
        if path.is_file() and not any(part == path or part in path.parents for part in skip):
            yield str(path), path.read_bytes().decode("latin-1")


def _mlflow_texts(project: Path, scratch: Path) -> Iterable[tuple[str, str]]:
    """Every run's params, tags, metric names and downloaded artifacts; every logged model's files;
    every registered version's tags."""
    import mlflow
    from mlflow import MlflowClient

    registry = registry_for(project)
    client = MlflowClient(registry.tracking_uri)
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            data = run.data
            yield f"run {run.info.run_id} params", json.dumps(data.params)
            yield f"run {run.info.run_id} tags", json.dumps(data.tags)
            yield f"run {run.info.run_id} metrics", json.dumps(sorted(data.metrics))
            target = scratch / run.info.run_id
            target.mkdir(parents=True)
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, dst_path=str(target), tracking_uri=registry.tracking_uri
            )
            yield from _files(target)
    for version in client.search_model_versions(f"name='{registry.model_name}'"):
        yield f"version {version.version} tags", json.dumps(version.tags) + (version.description or "")
        target = scratch / f"model-{version.version}"
        mlflow.artifacts.download_artifacts(
            artifact_uri=version.source, dst_path=str(target), tracking_uri=registry.tracking_uri
        )
        yield from _files(target)


def _prefect_texts() -> Iterable[tuple[str, str]]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    with get_client(sync_client=True) as client:
        for artifact in client.read_artifacts():
            yield f"prefect artifact {artifact.key}", f"{artifact.data} {artifact.description or ''}"
        offset = 0
        while True:
            logs = client.read_logs(offset=offset, limit=200)
            if not logs:
                break
            yield from ((f"prefect log {log.flow_run_id}", log.message) for log in logs)
            offset += len(logs)
        for run in client.read_flow_runs(limit=200):  # a failed run's state message names its error
            yield f"prefect flow run {run.id} state", f"{run.state_name} {run.state.message if run.state else ''}"
    storage = Path(str(PREFECT_LOCAL_STORAGE_PATH.value())).expanduser()
    if storage.is_dir():
        yield from _files(storage)


def test_sensitive_values_never_leave_the_data_store(
    workspace: Path,
    tmp_path: Path,
    webhook: Any,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
):
    posts, url = webhook
    monkeypatch.setenv("RETRAIN_NOTIFY_WEBHOOK", url)
    _sensitive_project(workspace)
    settings = workspace_settings(workspace)
    assert set(settings.privacy.sensitive) == {"loan_id", "age", SENSITIVE}
    batches = workspace / settings.dataset.batches
    for index, path in enumerate(write_demo_batches(batches, settings, 5)):
        _plant(path, index)

    first = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert first.outcome.promoted
    _new_batch(workspace, batches, 5)
    second = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert second.champion_before is not None and second.challenger.version == "2"  # judged against v1
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    checked = drift(
        DriftRequest(project_dir=str(workspace), batches=[str(_new_batch(workspace, incoming, 6))], act=False)
    )
    assert checked.rows > 0
    scored_batch = _new_batch(workspace, incoming, 7)
    scored = scoring(ScoringRequest(batch=str(scored_batch), project_dir=str(workspace)))
    assert scored.rows > 0
    # a sensitive numeric feature holding text: scoring stops naming the column and the count only
    malformed = _new_batch(workspace, incoming, 8)
    frame = pd.read_parquet(malformed).astype({"age": "str"})  # a text column, as a CSV export may hold
    frame.loc[2, "age"] = AGE_MARKER
    frame.to_parquet(malformed, index=False)
    with pytest.raises(InputError, match=r"numeric feature 'age': 1 value\(s\) are not numbers"):
        scoring(ScoringRequest(batch=str(malformed), project_dir=str(workspace)))

    state = tmp_path / "state"
    out, err = capfd.readouterr()
    texts: list[tuple[str, str]] = [
        *_mlflow_texts(workspace, tmp_path / "downloaded"),
        *_files(tmp_path / "mlflow-artifacts"),
        *_prefect_texts(),
        # the state dir (reports, ledger, validation cache, MLflow's db), but not what is the data store
        *_files(state, skip=(state / "predictions", state / "privacy")),
        *_files(tmp_path / "mlflow.db"),
        ("caplog", caplog.text),
        ("stdout", out),
        ("stderr", err),
        ("notifications", json.dumps(posts)),
    ]
    hits = _hits(texts)
    assert not hits, f"{len(hits)} hit(s) of a sensitive marker outside the data store: {hits[:20]}"

    # the tokens reached the model: its spec lists them, and no category is the marker
    registry = registry_for(workspace)
    spec = registry.feature_spec("2")
    assert spec.tokenised == (SENSITIVE,) and spec.salt_id is not None
    assert all(category.startswith("tok_") for category in dict(spec.categories)[SENSITIVE])
    # the data store keeps the raw rows (it is the store)
    assert (pd.read_parquet(next(batches.glob("*.parquet")))[SENSITIVE] == MARKER).any()

    # reproduce rebuilds the model byte for byte: its logged contract withholds the value set, the
    # project's own contract file matches the recorded hash, the salt gives the same tokens
    rebuilt = reproduce(resolve_runtime(project_dir=workspace), registry, "2")
    assert rebuilt.identical
    contract = registry.load_document(registry.by_version("2").run_id, "contract.json")
    assert MARKER not in json.dumps(contract) and contract["meta"]["redacted"]

    # under another salt the champion's tokens cannot be reproduced: scoring refuses, naming the variable
    monkeypatch.setenv(SALT_ENV, "another salt than the models were trained with")
    with pytest.raises(PrivacyError, match=SALT_ENV):
        scoring(ScoringRequest(batch=str(scored_batch), project_dir=str(workspace)))
    # a training refuses a salt no registered version was trained with (before it trains anything),
    # naming the salt to restore; with --new-privacy-salt the gate leaves the comparison to reviewers
    with pytest.raises(PrivacyError, match=r"restore the salt .* that trained v2 \(salt id [0-9a-f]{12}\)"):
        training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest"))
    assert len(registry_for(workspace).versions()) == 2
