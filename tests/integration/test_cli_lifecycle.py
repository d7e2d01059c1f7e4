"""The whole loop as a user runs it: `retrain demo`, then `retrain status --json`, through the real CLI.

The demo test runs the README's quickstart for real: `demo`, then each command of its "What to look
at" (`status`, `history`, `pending`, `report`); tests/unit/test_readme.py checks that it does."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrain.cli import app
from retrain.domain.settings import load_settings
from tests.conftest import REPO_ROOT, reviewed_project
from tests.integration.conftest import SMALL_DATA, reviewed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exactly what `make demo` uses: every service at its embedded default under RETRAIN_HOME."""
    names = ("MLFLOW_TRACKING_URI", "RETRAIN_MLFLOW_ARTIFACTS", "RETRAIN_DVC_REMOTE", "RETRAIN_LEDGER_URL")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


# The whole demo (14 days, two rollouts, a minute and a half of a two-core machine) runs in make test-all;
# make test keeps the whole loop in test_task_lifecycle (init, ingest, train, drift, retrain, score).
@pytest.mark.slow
def test_demo_then_status_shows_champion_with_metrics_md5_and_contract(embedded: Path):
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "--project", str(REPO_ROOT), "--rows-per-day", "1500"])
    assert demo.exit_code == 0, demo.output
    assert "first champion" in demo.output and "refused" in demo.output

    status = runner.invoke(app, ["status", "--project", str(REPO_ROOT), "--json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert set(report) >= {"champion", "candidate", "challenger", "previous-champion", "versions", "latest_gate"}
    champion = report["champion"]
    assert champion["version"] in {"1", "2"}
    assert {"roc_auc", "pr_auc", "log_loss", "brier"} <= set(champion["metrics"])
    assert len(champion["data_md5"]) == 32
    contract = load_settings(REPO_ROOT / "params.yaml").contract  # the contract params.yaml points at
    assert champion["contract"] == {"name": contract.name, "version": contract.version}
    # the shallow model, refused, is the newest version (after v1, v2 rolled out, v3 trained on the
    # newest days and rolled out, and any retraining a drifted day started)
    newest = report["versions"][0]
    assert int(newest["version"]) >= 4 and int(newest["version"]) > int(champion["version"])
    assert newest["state"] == "refused" and newest["aliases"] == [] and report["challenger"] is None
    states = {row["version"]: row["state"] for row in report["versions"]}
    assert states[champion["version"]] == "champion" and "rolled back" in states.values()
    gate = report["latest_gate"]  # the refusal's comparison, both models on the same rows
    assert gate["challenger"] == newest["version"] and gate["outcome"] == "refused"
    assert gate["champion"] == champion["version"] and gate["rows"] > 0
    table = runner.invoke(app, ["status", "--project", str(REPO_ROOT)])
    assert table.exit_code == 0 and "refused" in table.output and "latest gate, on the same" in table.output
    assert (embedded / "mlflow" / "mlflow.db").is_file() and (embedded / "ledger.db").is_file()
    history = json.loads(runner.invoke(app, ["history", "--project", str(REPO_ROOT), "--json"]).output)
    assert [entry["kind"] for entry in history][-1] == "refusal"
    # Each model that passed the automatic checks waited at the reviewer gate; the demo reviewer approved:
    # the first champion at once, the retrained ones as candidates rolling out on real traffic.
    events = [((entry["evidence"] or {}).get("rollout") or {}).get("event") for entry in history]
    reviewed = [e for e, event in zip(history, events, strict=True) if e["kind"] == "promotion" and event is None]
    starts = [e for e, event in zip(history, events, strict=True) if event == "start"]
    assert reviewed and all(entry["reviewers"] == ["demo-reviewer"] for entry in reviewed)
    assert [entry["challenger"] for entry in starts] == ["2", "3"]
    assert all(entry["reviewers"] == ["demo-reviewer"] for entry in starts)
    ends = [
        ((e["evidence"] or {}).get("rollout") or {}).get("outcome")
        for e in history
        if e["kind"] in ("promotion", "rollout")
    ]
    assert sorted(end for end in ends if end) in (  # each rollout ended on its labelled traffic
        ["completed", "rolled_back"],
        ["rolled_back", "rolled_back"],  # at 1500 rows a day (docs/demo.md says why)
    )
    approved = "paused for review; demo-reviewer answers: approve by 'demo-reviewer' recorded"
    assert demo.output.count(approved) == len(reviewed) + len(starts)
    # what people were told went to the demo's webhook receiver, and the dashboard was written
    assert "[told the reviewers] retrain-loans v2 waits for review" in demo.output
    assert "[told the team] retrain-loans: rollout of v2 " in demo.output
    dashboard = demo.output.split("Dashboard (open it in a browser): ")[1].split()[0]
    assert Path(dashboard).is_file() and 'data-plot="metrics"' in Path(dashboard).read_text(encoding="utf-8")
    # the rest of the README's "What to look at": the reviewers' inbox (the session's Prefect API may
    # hold other tests' paused runs, so only that it answers) and the dashboard written again
    pending = runner.invoke(app, ["pending", "--project", str(REPO_ROOT)])
    assert pending.exit_code == 0 and pending.output.strip(), pending.output
    again = runner.invoke(app, ["report", "--project", str(REPO_ROOT)])
    assert again.exit_code == 0, again.output
    rewritten = Path(again.output.split("dashboard: ")[1].split()[0])
    assert rewritten.is_relative_to(embedded) and 'data-plot="metrics"' in rewritten.read_text(encoding="utf-8")


def test_status_without_any_model_prints_nulls(services: Path):
    result = CliRunner().invoke(app, ["status", "--project", str(REPO_ROOT), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["champion"] is None and report["challenger"] is None and report["previous-champion"] is None
    assert report["versions"] == [] and report["latest_gate"] is None


def test_bad_params_stop_with_key_and_file(tmp_path: Path, services: Path):
    (tmp_path / "params.yaml").write_text(
        (REPO_ROOT / "params.yaml").read_text().replace("holdout_days: 2", "holdout_days: two")
    )
    result = CliRunner().invoke(app, ["status", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "split.holdout_days" in result.output and "params.yaml" in result.output


def test_help_is_instant_because_nothing_heavy_is_imported():
    probe = (
        "import sys, retrain.cli; heavy = [m for m in ('prefect', 'mlflow', 'great_expectations', 'dvc', 'xgboost')"
        " if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_generate_csv_batches_then_train_through_the_cli(tmp_path: Path, services: Path):
    overrides = {**SMALL_DATA, "demo": {"rows_per_day": 1200, "days": 5, "first_training_days": 4}}
    project = reviewed_project(tmp_path / "project", overrides)
    runner = CliRunner()
    generated = runner.invoke(app, ["generate", "--project", str(project), "--format", "csv"])
    assert generated.exit_code == 0, generated.output
    assert len(list((project / "data" / "batches").glob("*.csv"))) == 5

    trained = reviewed(lambda: runner.invoke(app, ["train", "--project", str(project), "--reason", "pytest"]))
    assert trained.exit_code == 0, trained.output
    assert "first champion" in trained.output


def test_train_without_batches_explains_what_to_do(tmp_path: Path, services: Path):
    project = reviewed_project(tmp_path / "project")
    result = CliRunner().invoke(app, ["train", "--project", str(project)])
    assert result.exit_code == 1
    assert "retrain generate" in result.output and "does not exist" in result.output


def test_single_class_target_is_a_clear_training_error(tmp_path: Path, services: Path):
    import pandas as pd

    project = reviewed_project(
        tmp_path / "project", {"demo": {"rows_per_day": 800, "days": 5, "first_training_days": 4}}
    )
    runner = CliRunner()
    assert runner.invoke(app, ["generate", "--project", str(project)]).exit_code == 0
    for path in (project / "data" / "batches").glob("*.parquet"):
        pd.read_parquet(path).assign(defaulted=0).to_parquet(path, index=False)

    result = runner.invoke(app, ["train", "--project", str(project)])
    assert result.exit_code == 1
    # Prefect logs the failed task (with its traceback, for the UI); the CLI ends on one clear line.
    assert result.output.strip().splitlines()[-1] == (
        "error: the training rows hold a single target class (0); a classifier needs at least two"
    )


@contextlib.contextmanager
def two_cpu_burners() -> Iterator[None]:
    """Two processes spinning on a CPU each, as on a busy machine or a shared CI runner."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _demo(project: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`retrain demo` as `make demo` runs it: its own process, both output streams kept."""
    command = [sys.executable, "-m", "retrain.cli", "demo", "--project", str(project), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False, env=env)


def _session_prefect_api() -> dict[str, str]:
    """This process's environment plus the session's Prefect API: a child process that only needs an
    API (not the embedded server's own start and stop) uses the one already running."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a loaded machine is the point: the demo takes longer, and must still pass
def test_a_second_demo_beside_two_cpu_burners_starts_fresh_and_takes_the_same_decisions(embedded: Path):
    """`make demo` twice, each a new process that wipes the demo state; the second on a busy machine.
    Both end in the same place: load never decides, and nothing of the first run is left over."""
    runner = CliRunner()
    histories, statuses = [], []
    for busy in (False, True):
        # the shorter demo (drift on its last day): a first champion (latency judged against the
        # generous ceiling alone), a drift-triggered challenger timed against that champion in the
        # same run and rolled out, a model on a 2-day window rolled out too, and the refused shallow
        # model (v4), with two drift checks fewer than the full ten days
        with two_cpu_burners() if busy else contextlib.nullcontext():
            done = _demo(REPO_ROOT, "--rows-per-day", "1500", "--days", "8", "--drift-day", "8")
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        assert "Traceback" not in output
        statuses.append(json.loads(runner.invoke(app, ["status", "--project", str(REPO_ROOT), "--json"]).output))
        histories.append(json.loads(runner.invoke(app, ["history", "--project", str(REPO_ROOT), "--json"]).output))
    first, second = statuses
    assert second["versions"][0]["version"] == "4" and second["versions"][0]["state"] == "refused"
    assert second["champion"]["version"] == first["champion"]["version"]
    assert [(e["kind"], e["champion_after"]) for e in histories[1]] == [
        (e["kind"], e["champion_after"]) for e in histories[0]
    ], [entry.get("comment") for history in histories for entry in history]  # the gates' reasons
    assert second["champion"]["data_md5"] == first["champion"]["data_md5"]
    # Every latency check of the busy run passed, and v2's was judged against v1 timed in the same
    # run; the check reports both comparisons.
    checks = [
        check
        for path in embedded.rglob("gate.json")
        for check in json.loads(path.read_text())["checks"]
        if check["name"] == "latency_single"
    ]
    assert len(checks) >= 2 and all(check["passed"] for check in checks), [check["reason"] for check in checks]
    compared = [check for check in checks if check["details"][0]["value"] is not None]
    assert compared and all("x the champion" in check["reason"] for check in compared)
    measures = {"ratio to champion", "median CPU ms"}  # the ceiling judges CPU time: waiting for a core is not cost
    assert all({row["measure"] for row in check["details"]} == measures for check in checks)


@pytest.mark.slow  # a demo in a subprocess: make test-all, beside the whole demo above
def test_a_failed_demo_step_stops_the_demo_with_one_message(embedded: Path, tmp_path: Path):
    from retrain.adapters.workspace import create_workspace

    # A floor no model reaches: the first model is refused, so nothing after it can work.
    project = create_workspace(REPO_ROOT, tmp_path / "project", {"gate": {"floor": 0.999}})
    done = _demo(project, "--rows-per-day", "1500", "--days", "8", env=_session_prefect_api())
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: demo step 'first 6 days': the model was not promoted"), last
    assert "absolute_floor" in last or "misses the floor" in last
    assert "drift check" not in done.stdout  # no later step ran
