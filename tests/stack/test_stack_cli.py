"""A person's shell on the team stack: ``retrain demo --stack``, ``retrain train --stack`` and
``retrain rollback --stack`` hand their runs to the worker (people hold READ on MLflow), answer the
reviewer gate through the Prefect API, and leave their decisions in the stack's ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from retrain.stack import load_profile, stack_config_at
from tests.conftest import reviewed_project
from tests.stack.conftest import LiveStack
from tests.stack.test_live_stack import SMALL, _mlflow_as

pytestmark = pytest.mark.stack

MODEL = "retrain-loans-cli"
# Six stable days make the first champion; day 7 is stable, day 8 drifted (0-based drift_day 7).
# --stack loads stack.env and this person's own profile (their Prefect login through the proxy).
AS_REVIEWER = {"RETRAIN_STACK_PERSON": "demo-reviewer"}
SMALL_DEMO = {**SMALL, "demo": {"rows_per_day": 3000, "days": 8, "first_training_days": 6, "drift_day": 7}}


def test_demo_train_and_rollback_from_a_person_shell_run_on_the_worker(
    live_stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    project = reviewed_project(tmp_path / "project", {**SMALL_DEMO, **live_stack.onboard_model(MODEL)})

    demo = live_stack.retrain("demo", "--stack", project=project, timeout=1500, env=AS_REVIEWER)
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    out = demo.stdout
    assert "first 6 days: first champion" in out, out
    assert "day 7: drift check" in out and "→ none" in out, out
    assert "day 8 (drifted): drift check" in out and "→ retrain" in out, out
    # the rollout, run by the worker: the retrained v2 serves half the applicants (sticky by loan id),
    # the late labels join its scores, and the two arms decide. At 3000 rows a day each arm's interval
    # (about ±0.03) cannot show non-inferiority within the 0.01 margin: it rolls back, as in-process
    assert "retraining (training/nightly): rolling out: v2 is candidate (canary, 50% of rows)" in out, out
    assert "day 9 (drifted): served, late labels: champion v1" in out and "candidate v2" in out, out
    assert "rollout rolled back: candidate v2 vs champion v1; v1 stays champion" in out, out
    assert "a 2-day training window" in out and "day 12: usual applicants, served" in out, out
    assert "shallow model" in out and "refused" in out, out
    assert out.count("demo-reviewer answers: approve by 'demo-reviewer' recorded") == 2, out

    person = _mlflow_as(live_stack, "demo-reviewer", live_stack.keys["mlflow_people"]["demo-reviewer"], monkeypatch)
    champion = person.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1" and champion.tags["retrain.gate.decision"] == "promoted"
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        person.get_model_version_by_alias(MODEL, "candidate")  # cleared by the rollback, on the worker
    scores = live_stack.home.parent / "demo" / "predictions"  # the worker's scores, every row with its arm
    files = sorted(scores.glob("*.parquet"))
    assert len(files) == 4, files  # four served days
    served = pd.read_parquet(files[0])
    assert {"model_version", "arm", "rollout"} <= set(served.columns)
    assert set(served["model_version"].astype(str)) == {"1", "2"}  # the canary's two arms

    # nothing to roll back to (v2 never became champion): refused by the worker's run, in one line
    rolled = live_stack.retrain(
        "rollback", "--stack", "--reason", "demo: back to the stable model", project=project, env=AS_REVIEWER
    )
    assert rolled.returncode == 1, rolled.stdout + rolled.stderr
    assert "nothing to roll back to" in rolled.stdout + rolled.stderr and "Traceback" not in rolled.stderr

    profile = load_profile(stack_config_at(live_stack.home.parent))  # what `source stack.env` gives a shell
    history = live_stack.retrain("history", "--json", project=project, env=profile)
    assert history.returncode == 0, history.stderr
    entries = json.loads(history.stdout)
    kinds = [entry["kind"] for entry in entries]
    assert kinds.count("promotion") == 1 and "rollout" in kinds, kinds
    assert any(entry["kind"] == "rollout" and "rolled" in json.dumps(entry) for entry in entries), entries

    workspace = live_stack.home.parent / "demo" / "workspace"  # the demo's project, with its batches
    started = live_stack.retrain(
        "train", "--stack", "--reason", "from a person's shell", project=workspace, env=AS_REVIEWER
    )
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = started.stdout.split("training run ", 1)[1].split()[0]
    with httpx.Client(base_url=live_stack.prefect_url, auth=live_stack.prefect_auth, timeout=30) as api:
        deadline = time.monotonic() + 600
        while (run := api.get(f"/flow_runs/{run_id}").raise_for_status().json())["state_type"] not in {
            "COMPLETED",
            "FAILED",
            "CRASHED",
            "CANCELLED",
        }:
            assert time.monotonic() < deadline, run["state"]
            time.sleep(1)
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["request"]["reason"] == "from a person's shell"
