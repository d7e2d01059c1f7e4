"""The platform's overhead: the training flow against a bare XGBoost script on the same files.

A project is made as a new user makes one (``retrain init`` from the first day's file, a reviewer's
key committed), with ``--days`` daily parquet files of the demo's loans plus extra numeric columns up
to ``--features`` features. Then, each in a child process of its own so that its peak memory is its
own:

* **flow**: the training flow on those files (validate, snapshot under DVC, split, train, log and
  register in MLflow, guardrails, gate, approval, promotion), with the Prefect API started before the
  clock starts, a reviewer answering at once, and the time spent paused for that answer left out;
* **bare**: read the same files with pandas, the same time split (newest ``holdout_days`` days held
  out, the ``validation_days`` before them for early stopping), the same XGBoost parameters, train,
  predict the holdout.

Prints one JSON line per size (seconds, peak RSS, their ratios, the flow's slowest tasks, and the
best iteration and holdout ROC AUC of both, which should agree: the same work was done).

Run: ``uv run python benchmarks/bench_flow.py [--rows 100000] [--features 50]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGET = "defaulted"
TIME_COLUMN = "application_date"
ID_COLUMN = "loan_id"
REVIEWER = "bench-reviewer"
START = dt.date(2026, 1, 1)


def day_frames(rows: int, days: int, features: int, seed: int) -> list[pd.DataFrame]:
    """``days`` days of loans, each with numeric noise columns added up to ``features`` features."""
    return list(each_day(rows, days, features, seed))


def each_day(rows: int, days: int, features: int, seed: int) -> Iterator[pd.DataFrame]:
    """:func:`day_frames` one day at a time (10M rows are never all in this process at once)."""
    from retrain.domain.demo_data import generate_day

    for index in range(days):
        frame = generate_day(START + dt.timedelta(days=index), rows // days, seed)
        base = len(frame.columns) - 3  # id, time and target are not features
        rng = np.random.default_rng(seed * 1000 + index)
        extra = {f"extra_{i:02d}": rng.normal(0.0, 1.0, len(frame)) for i in range(max(features - base, 0))}
        yield pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)


def make_project(
    root: Path, frames: Iterable[pd.DataFrame], engine: str = "in_memory", ingest: dict[str, str] | None = None
) -> Path:
    """``retrain init`` from the first day, the bench reviewer's key, every day in the batch directory:
    copied there, or with ``ingest`` (the environment to run it in) stored by ``retrain ingest`` as
    each day would arrive (validated on arrival, so a training run finds the verdicts known)."""
    from retrain.adapters.reviewer_keys import create_private_key, write_public_key
    from retrain.adapters.workspace import commit_all, write_params
    from retrain.application.scaffold import init_project
    from retrain.domain.settings import load_settings

    export = root / "export"
    export.mkdir(parents=True)
    paths = []
    for frame in frames:
        path = export / f"bench-{frame[TIME_COLUMN].iloc[0]:%Y-%m-%d}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    project = root / "project"
    init_project(project, paths[0], target=TARGET, id_column=ID_COLUMN, name="bench", reviewers=(REVIEWER,))
    # the reviewer answers at once and the run looks for the answer often: the time a person takes
    # to answer is theirs, not the platform's
    write_params(project, {"approval": {"poll_seconds": 0.1}, "model": {"engine": engine}})
    settings = load_settings(project / "params.yaml")
    key = create_private_key(root / "keys" / f"{REVIEWER}.key")
    write_public_key(project, settings.approval, REVIEWER, key)
    commit_all(project, "the bench reviewer's public key")
    batches = project / settings.dataset.batches
    batches.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if ingest is None:
            (batches / path.name).write_bytes(path.read_bytes())
            continue
        command = [sys.executable, "-m", "retrain.cli", "ingest", str(path), "--project", str(project)]
        subprocess.run(command, env=ingest, check=True, capture_output=True)
    return project


def peak_rss_mb() -> float:
    """This process's own peak resident memory. Linux's VmHWM starts afresh at exec; ``ru_maxrss``
    of a child started from a large parent would report the parent's size at the fork."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler(threading.Thread):
    """This process's resident memory every 50 ms, with the wall-clock time: which task the peak
    belongs to is read afterwards from the task runs' start and end times."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()

    def run(self) -> None:
        status = Path("/proc/self/status")
        while not self._done.wait(0.05) and status.exists():
            for line in status.read_text(encoding="utf-8").splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak_between(self, start: float, end: float) -> float:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0.0)


def run_flow(project: Path, keys: Path) -> dict[str, Any]:
    """The training flow, timed from its start to its end less the time it waited for the reviewer."""
    from prefect.client.orchestration import get_client

    from flows.training import TrainingRequest, training
    from retrain.adapters.prefect_api import Signing, run_with_reviewers, start_api_once
    from retrain.adapters.reviewer_keys import load_private_key

    start_api_once()
    memory = RssSampler()
    memory.start()
    answer = Signing("approve", REVIEWER, load_private_key(keys / f"{REVIEWER}.key"), "bench")
    started = time.perf_counter()
    result = run_with_reviewers(
        lambda: training(TrainingRequest(project_dir=str(project), triggered_by="bench", reason="bench")),
        [answer],
        poll_seconds=0.05,
    )
    seconds = time.perf_counter() - started
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        states = sorted(client.read_flow_run_states(uuid.UUID(result.flow_run_id)), key=lambda s: s.timestamp)
        paused = sum(
            (after.timestamp - state.timestamp).total_seconds()
            for state, after in itertools.pairwise(states)
            if state.type.value == "PAUSED"
        )
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(result.flow_run_id)]))
        )
    by_task: dict[str, float] = {}
    for run in task_runs:  # a task run is named after its task, then "-" and three hex digits
        name = re.sub(r"-[0-9a-f]{3}$", "", run.name)
        name = re.sub(r"-\d{4}-\d{2}-\d{2}.*$", "-<day>", name)  # one line for all the days' tasks
        by_task[name] = by_task.get(name, 0.0) + run.total_run_time.total_seconds()
    slowest = dict(sorted(by_task.items(), key=lambda item: -item[1])[:8])
    memory.stop()
    peaks: dict[str, float] = {}
    for run in task_runs:  # the highest resident memory sampled while each task ran: where the peak is
        if run.start_time is None or run.end_time is None:
            continue
        name = re.sub(r"-\d{4}-\d{2}-\d{2}.*$", "-<day>", re.sub(r"-[0-9a-f]{3}$", "", run.name))
        during = memory.peak_between(run.start_time.timestamp(), run.end_time.timestamp())
        peaks[name] = max(peaks.get(name, 0.0), during)
    memory_by_task = dict(sorted(peaks.items(), key=lambda item: -item[1])[:6])
    from mlflow import MlflowClient

    metrics = MlflowClient().get_run(result.challenger.run_id).data.metrics
    return {
        "seconds": round(seconds - paused, 3),
        "paused_s": round(paused, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "promoted": result.outcome.promoted,
        "roc_auc": round(float(result.challenger.metrics["roc_auc"]), 4),
        "best_iteration": int(metrics.get("best_iteration", -1)),
        "slowest_tasks_s": {name: round(value, 2) for name, value in slowest.items()},
        "peak_rss_by_task_mb": {name: round(value, 1) for name, value in memory_by_task.items()},
        # what judging the batches cost: contract runs and the replay of verdicts known before
        "validation_s": round(
            sum(t for name, t in by_task.items() if name.startswith(("validate-", "reuse-known-verdicts"))), 3
        ),
    }


def run_bare(project: Path) -> dict[str, Any]:
    """What a data scientist's own script does with the same files, split and XGBoost parameters."""
    import xgboost as xgb
    import yaml
    from scipy.stats import rankdata

    started = time.perf_counter()
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    dataset, split, model = params["dataset"], params["split"], params["model"]
    files = sorted((project / dataset["batches"]).glob("*.parquet"))
    frame = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    loaded = time.perf_counter()
    numeric, categorical = dataset["features"]["numeric"], dataset["features"].get("categorical", [])
    features = frame[[*numeric, *categorical]].copy()
    for name in categorical:
        features[name] = features[name].astype("category")
    labels = frame[dataset["target"]].astype("int64").to_numpy()
    days = pd.to_datetime(frame[dataset["time_column"]]).dt.normalize()
    ordered = np.sort(days.unique())
    holdout_from = ordered[-split["holdout_days"]]
    validation_from = ordered[-split["holdout_days"] - split["validation_days"]]
    train = (days < validation_from).to_numpy()
    validation = ((days >= validation_from) & (days < holdout_from)).to_numpy()
    holdout = (days >= holdout_from).to_numpy()
    knobs, threads = model["xgboost"], model["threads"]

    def matrix(mask: np.ndarray, with_labels: bool = True) -> xgb.DMatrix:
        return xgb.DMatrix(
            features[mask], label=labels[mask] if with_labels else None, enable_categorical=True, nthread=threads
        )

    booster = xgb.train(
        {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "seed": model["seed"],
            "nthread": threads,
            **{k: v for k, v in knobs.items() if k not in ("num_boost_round", "early_stopping_rounds")},
        },
        matrix(train),
        num_boost_round=knobs["num_boost_round"],
        evals=[(matrix(validation), "validation")],
        early_stopping_rounds=knobs["early_stopping_rounds"],
        verbose_eval=False,
    )
    trained = time.perf_counter()
    best = int(booster.best_iteration)
    scores = booster.predict(matrix(holdout, with_labels=False), iteration_range=(0, best + 1))
    y = labels[holdout]
    ranks = rankdata(scores)
    positives = int(y.sum())
    auc = (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(y) - positives))
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "load_s": round(loaded - started, 3),
        "train_s": round(trained - loaded, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "roc_auc": round(float(auc), 4),
        "best_iteration": best,
    }


def _child(mode: str, project: Path, keys: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--project", str(project), "--keys", str(keys)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {mode} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


def child_environment(root: Path) -> dict[str, str]:
    """The embedded default under ``root``: MLflow on sqlite, a local DVC remote, a Prefect home, no
    telemetry; the benchmark never touches the user's own state."""
    env = dict(os.environ)
    env.update(
        {
            "RETRAIN_HOME": str(root / "state"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "RETRAIN_MLFLOW_ARTIFACTS": (root / "mlflow-artifacts").as_uri(),
            "RETRAIN_DVC_REMOTE": str(root / "dvc-remote"),
            "PREFECT_HOME": str(root / "prefect"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "GX_ANALYTICS_ENABLED": "False",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
    )
    return env


def measure(
    rows: int, features: int, days: int, seed: int, engine: str = "in_memory", ingested: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="retrain-bench-flow-") as tmp:
        root = Path(tmp)
        env = child_environment(root)
        project = make_project(root, each_day(rows, days, features, seed), engine, env if ingested else None)
        # a bare run of a few seconds swings by a third from run to run: the fastest of three below 1M rows
        runs = [_child("bare", project, root / "keys", env) for _ in range(3 if rows < 1_000_000 else 1)]
        bare = min(runs, key=lambda run: float(run["seconds"]))
        flow = _child("flow", project, root / "keys", env)
    return {
        "rows": rows,
        "features": features,
        "engine": engine,
        "ingested": ingested,
        "flow_s": flow["seconds"],
        "bare_s": bare["seconds"],
        "time_ratio": round(flow["seconds"] / bare["seconds"], 3),
        "flow_peak_rss_mb": flow["peak_rss_mb"],
        "bare_peak_rss_mb": bare["peak_rss_mb"],
        "memory_ratio": round(flow["peak_rss_mb"] / bare["peak_rss_mb"], 3),
        "same_work": flow["best_iteration"] == bare["best_iteration"],
        "flow": flow,
        "bare": bare,
    }


def measure_nightly(history_days: int, rows_per_day: int, features: int, seed: int) -> dict[str, Any]:
    """A nightly run's validation after ``history_days`` days were trained on once: the first run
    validates every day, the next (one new day) should validate that day alone (the verdict cache),
    whatever the history; compared with the first run's validation of one day."""
    with tempfile.TemporaryDirectory(prefix="retrain-bench-nightly-") as tmp:
        root = Path(tmp)
        frames = day_frames(rows_per_day * (history_days + 1), history_days + 1, features, seed)
        project = make_project(root, frames[:-1])
        env = child_environment(root)
        first = _child("flow", project, root / "keys", env)
        newest = frames[-1]
        from retrain.domain.settings import load_settings

        batches = project / load_settings(project / "params.yaml").dataset.batches
        newest.to_parquet(batches / f"bench-{newest[TIME_COLUMN].iloc[0]:%Y-%m-%d}.parquet", index=False)
        nightly = _child("flow", project, root / "keys", env)
    one_day = first["validation_s"] / history_days
    return {
        "history_days": history_days,
        "rows_per_day": rows_per_day,
        "first_validation_s": first["validation_s"],
        "nightly_validation_s": nightly["validation_s"],
        "one_day_validation_s": round(one_day, 3),
        "nightly_over_one_day": round(nightly["validation_s"] / one_day, 3),
        "first_flow_s": first["seconds"],
        "nightly_flow_s": nightly["seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="rows in all (repeat for several sizes)")
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--engine",
        choices=("in_memory", "external_memory"),
        default="in_memory",
        help="model.engine of the project (in_memory switches to external memory past model.external_memory_above_mb)",
    )
    parser.add_argument(
        "--ingested",
        action="store_true",
        help="store each day with `retrain ingest` first (validated on arrival), as a nightly run finds them",
    )
    parser.add_argument(
        "--nightly", type=int, metavar="DAYS", help="instead: a nightly run's validation after DAYS days of history"
    )
    parser.add_argument("--child", choices=("flow", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        found = run_flow(args.project, args.keys) if args.child == "flow" else run_bare(args.project)
        print(json.dumps(found), flush=True)
        return 0
    if args.nightly is not None:
        rows_per_day = (args.rows or [2_000])[0]
        print(json.dumps(measure_nightly(args.nightly, rows_per_day, args.features, args.seed)), flush=True)
        return 0
    for rows in args.rows or [100_000]:
        found = measure(rows, args.features, args.days, args.seed, args.engine, args.ingested)
        print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
