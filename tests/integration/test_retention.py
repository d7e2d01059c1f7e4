"""`retrain purge`: what is past retention leaves the workspace, the DVC cache and the remote, except the
data a champion needs to reproduce; the ledger records it first; a second purge appends nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.training import TrainingRequest, training
from retrain.adapters import datastore
from retrain.adapters.environment import resolve_runtime
from retrain.adapters.workspace import write_params
from retrain.application.retention import purge
from retrain.cli import app
from retrain.cli.demo_run import write_demo_batches
from retrain.domain.lifecycle import chain_breaks
from retrain.domain.retention import purge_record_of
from tests.integration.conftest import ledger_entries, registry_for, workspace_settings

pytestmark = pytest.mark.integration

# The demo's days are 2026-01-01 (day 0) to 2026-01-06 (day 5) here; on this "today", a retention of 3
# days keeps 01-05 and 01-06 (ages 3 and 2) and takes 01-01 to 01-04.
TODAY = dt.date(2026, 1, 8)
RETENTION = {"batches_days": 3, "quarantine_days": 3, "predictions_days": 3, "snapshots_days": 0}


def _objects(root: Path, md5: str) -> tuple[bool, bool]:
    """Whether the DVC cache and the (local) remote hold ``md5``."""
    relative = Path("files", "md5", md5[:2], md5[2:])
    return (root / ".dvc" / "cache" / relative).is_file(), (root.parent / "dvc-remote" / relative).is_file()


def _refused_second_version(workspace: Path) -> str:
    """v2 from one more day, refused by a floor no model reaches: registered, holding no alias."""
    settings = workspace_settings(workspace)
    write_demo_batches(workspace / settings.dataset.batches, settings, 6)
    params = (workspace / "params.yaml").read_text()
    write_params(workspace, {"gate": {"floor": 0.999}})
    result = training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest", reason="test"))
    (workspace / "params.yaml").write_text(params)
    assert result.challenger.version == "2" and not result.outcome.promoted
    return registry_for(workspace).by_version("2").data_md5 or ""


def _stored_as_ingest_leaves_it(workspace: Path) -> tuple[Path, Path]:
    """The batches and a quarantine file tracked by DVC and pushed; a day's stored scores."""
    settings = workspace_settings(workspace)
    day = pd.Timestamp("2026-01-02 10:00")
    quarantine = workspace / settings.dataset.quarantine / "loans-2026-01-02.parquet"
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({settings.dataset.time_column: [pd.NaT, pd.NaT], "reason": ["x", "y"]}).to_parquet(quarantine)
    for tracked in (settings.dataset.batches, settings.dataset.quarantine):
        datastore.track(workspace, tracked)
        datastore.push(workspace, tracked)
    scores = resolve_runtime(project_dir=workspace).state_dir / "predictions" / "loans-2026-01-02.parquet"
    scores.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"loan_id": [1, 2, 3], settings.dataset.time_column: [day] * 3, "score": 0.5}).to_parquet(scores)
    return quarantine, scores


@pytest.mark.template("champion")
def test_purge_deletes_past_retention_everywhere_but_the_champions_data_and_proves_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    v2_md5 = _refused_second_version(workspace)
    v1_md5 = registry_for(workspace).by_version("1").data_md5 or ""
    quarantine, scores = _stored_as_ingest_leaves_it(workspace)
    write_params(workspace, {"retention": RETENTION})
    settings = workspace_settings(workspace)
    runtime = resolve_runtime(project_dir=workspace)
    batches = workspace / settings.dataset.batches
    old = [batches / f"loans-2026-01-0{day}.parquet" for day in (1, 2, 3, 4)]
    old_md5 = {path.name: datastore.file_md5(path) for path in old}
    before = len(ledger_entries(workspace))

    shown = CliRunner().invoke(app, ["purge", "--dry-run", "--project", str(workspace)])
    assert shown.exit_code == 0, shown.output
    assert f"kept: snapshot {v1_md5} for champion v1 (reproduce)" in shown.output
    assert f"would delete: snapshot {v2_md5} of v2" in shown.output and all(p.exists() for p in old)

    def remote_down(root: Path, md5s: list[str], **_: object) -> dict[str, list[str]]:
        raise datastore.DataStoreError("the remote went away mid-purge")

    with monkeypatch.context() as patch:  # the record comes first: a purge cut short is recorded in full
        patch.setattr(datastore, "remove_objects", remote_down)
        with pytest.raises(datastore.DataStoreError, match="went away"):
            purge(runtime, settings, registry_for(workspace), actor="pytest", reason="retention test", today=TODAY)
    assert len(ledger_entries(workspace)) == before + 1 and _objects(workspace, v2_md5) == (True, True)

    done = purge(runtime, settings, registry_for(workspace), actor="pytest", reason="retention test", today=TODAY)
    assert done.position is None and done.nothing and v2_md5 in " ".join(done.finished)  # finished, not recorded twice

    assert not any(path.exists() for path in (*old, quarantine, scores))
    assert sorted(p.name for p in batches.iterdir()) == ["loans-2026-01-05.parquet", "loans-2026-01-06.parquet"]
    assert sorted(datastore.tracked_files(workspace, settings.dataset.batches) or {}) == [
        "loans-2026-01-05.parquet",
        "loans-2026-01-06.parquet",
    ]  # the pointer names only what is left
    assert not (workspace / settings.dataset.training_set).exists()  # the workspace's copy was v2's
    assert all(_objects(workspace, md5) == (False, False) for md5 in [*old_md5.values(), v2_md5])
    assert _objects(workspace, v1_md5)[1]  # the champion's snapshot stays on the remote
    entries = ledger_entries(workspace)
    assert len(entries) == before + 1 and chain_breaks(entries) == []
    entry = entries[-1]
    record = purge_record_of(entry)
    assert record is not None
    assert (entry.kind, entry.champion_before, entry.champion_after, entry.actor) == ("purge", "1", "1", "pytest")
    assert record.reason == "retention test" and record.versions == ("2",)
    deleted = {item.path: item for item in record.files}
    assert {f"data/batches/{name}" for name in old_md5} | {"data/quarantine/loans-2026-01-02.parquet"} <= set(deleted)
    assert deleted["data/batches/loans-2026-01-01.parquet"].md5 == old_md5["loans-2026-01-01.parquet"]
    assert deleted["data/batches/loans-2026-01-01.parquet"].rows == settings.demo.rows_per_day
    assert deleted[str(scores)].kind == "predictions" and deleted[str(scores)].rows == 3
    assert [item["md5"] for item in record.snapshots] == [v2_md5]
    assert [item["text"] for item in record.kept] == [f"snapshot {v1_md5} for champion v1 (reproduce)"]

    again = purge(runtime, settings, registry_for(workspace), actor="pytest", reason="retention test", today=TODAY)
    assert again.position is None and again.nothing and len(ledger_entries(workspace)) == before + 1

    runner = CliRunner()
    refused = runner.invoke(app, ["reproduce", "2", "--project", str(workspace)])
    on = entry.recorded_at.date().isoformat() if entry.recorded_at else ""
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert f"the data of v2 (snapshot {v2_md5}) was purged on {on} by pytest (retention test)" in refused.output
    rebuilt = runner.invoke(app, ["reproduce", "1", "--project", str(workspace), "--json"])
    assert rebuilt.exit_code == 0 and json.loads(rebuilt.output)["identical"], rebuilt.output[-2000:]
    status = runner.invoke(app, ["status", "--project", str(workspace), "--json"])
    assert json.loads(status.output)["champion"]["version"] == "1"
    write_params(workspace, {"retention": dict.fromkeys(RETENTION)})  # whatever today is, nothing is past
    flowed = runner.invoke(app, ["purge", "--yes", "--project", str(workspace)])  # the flow, in this process
    assert flowed.exit_code == 0 and "nothing past retention: nothing deleted, nothing recorded" in flowed.output
    assert len(ledger_entries(workspace)) == before + 1
