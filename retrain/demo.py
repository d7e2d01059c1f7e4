"""The embedded demo: the whole lifecycle on generated loan batches, from a fresh state each time.

Steps, each a real run of the ``training`` flow in a throw-away workspace (git + DVC repo):
1. the first days arrive → the first model passing the floor becomes ``champion``;
2. more days arrive → a ``challenger`` is trained, compared on the same holdout, promoted or refused;
3. a data scientist tries a much shallower model → the gate refuses it, the champion stays.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.adapters.workspace import create_workspace, write_params
from retrain.domain.demo_data import generate_day
from retrain.domain.settings import Settings
from retrain.environment import Runtime


@dataclass(frozen=True)
class DemoStep:
    title: str
    days: int
    overrides: Mapping[str, Any]


def demo_steps(settings: Settings) -> list[DemoStep]:
    demo = settings.demo
    return [
        DemoStep(f"first {demo.first_training_days} days", demo.first_training_days, {}),
        DemoStep(f"all {demo.days} days", demo.days, {}),
        DemoStep(
            f"all {demo.days} days, shallow model (max_depth 1, 15 rounds)",
            demo.days,
            {"model": {"xgboost": {"max_depth": 1, "num_boost_round": 15}}},
        ),
    ]


def write_demo_batches(batches_dir: Path, settings: Settings, days: int, file_format: str = "parquet") -> list[Path]:
    """Write days [0, days) as one file per day; existing days are left as they are."""
    batches_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(days):
        day = settings.demo.start_date + dt.timedelta(days=index)
        path = batches_dir / f"{settings.dataset.name}-{day.isoformat()}.{file_format}"
        if not path.exists():
            frame = generate_day(day, settings.demo.rows_per_day, settings.demo.seed)
            if file_format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
        written.append(path)
    return written


def reset_demo_state(runtime: Runtime) -> Path:
    """Remove what earlier demos left: the workspace, and the embedded MLflow store with its ledger.

    The ledger records decisions about the registry's versions, so the two go together: a ledger
    kept beside a fresh registry would name versions that no longer exist.
    """
    demo_home = runtime.state_dir / "demo"
    if demo_home.exists():
        shutil.rmtree(demo_home)
    if runtime.embedded_mlflow:
        shutil.rmtree(runtime.state_dir / "mlflow", ignore_errors=True)
        embedded_ledger = f"sqlite:///{runtime.state_dir / 'ledger.db'}"
        if runtime.ledger_url == embedded_ledger:
            (runtime.state_dir / "ledger.db").unlink(missing_ok=True)
    return demo_home


def run_demo(
    runtime: Runtime,
    settings: Settings,
    run_training: Callable[[Path, str], dict[str, Any]],
    on_step: Callable[[DemoStep, dict[str, Any]], None] | None = None,
) -> list[tuple[DemoStep, dict[str, Any]]]:
    """Run every step; ``run_training(workspace, reason)`` runs the training flow on a workspace."""
    demo_home = reset_demo_state(runtime)
    workspace = create_workspace(runtime.project_dir, demo_home / "workspace")
    results = []
    for step in demo_steps(settings):
        write_demo_batches(workspace / settings.dataset.batches, settings, step.days)
        if step.overrides:
            write_params(workspace, step.overrides)
        result = run_training(workspace, f"demo: {step.title}")
        results.append((step, result))
        if on_step is not None:
            on_step(step, result)
    return results
