"""``retrain fit``: the DVC ``train`` stage. Split, train and evaluate the snapshot outside Prefect.

The same recipe as the training flow and ``retrain reproduce`` (:func:`retrain.domain.fitting.fit_snapshot`),
so ``dvc repro`` and a flow run on the same snapshot and params produce the same model bytes. Writes
the model, its feature spec, ``metrics.json`` and plot data for ``dvc metrics show`` / ``dvc plots show``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.adapters import privacy_salt
from retrain.application.engines import fit_snapshot_file
from retrain.domain.evidence import FEATURE_SPEC_DOCUMENT
from retrain.domain.privacy import NEW_SALT_FLAG, PrivacyError
from retrain.domain.settings import Settings, TaskKind
from retrain.domain.task import Task, task_for

# What ``retrain fit`` writes under --plots for each task, as ``dvc.yaml`` declares it: file -> x and y
# columns and the DVC plot template. ``retrain init`` writes the project's ``plots:`` from this, so a
# regression or multiclass project's ``dvc repro`` finds exactly the files its stage declares.
PLOT_DECLARATIONS: dict[TaskKind, dict[str, dict[str, str]]] = {
    "binary": {
        "roc.csv": {"x": "fpr", "y": "tpr"},
        "precision_recall.csv": {"x": "recall", "y": "precision"},
        "calibration.csv": {"x": "predicted", "y": "observed"},
    },
    "multiclass": {
        "confusion.csv": {"template": "confusion", "x": "predicted", "y": "actual"},
        "calibration.csv": {"x": "predicted", "y": "observed"},
    },
    "regression": {
        "residuals.csv": {"template": "scatter", "x": "predicted", "y": "residual"},
        "predicted_actual.csv": {"template": "scatter", "x": "actual", "y": "predicted"},
    },
}


def dvc_plots_block(task: TaskKind, plots_dir: str = "plots") -> str:
    """The train stage's ``plots:`` entries for ``task``, as ``dvc.yaml`` text (stage indentation)."""
    lines = [f"    # plots: what `retrain fit` writes for a {task} task (retrain init writes a project's for its task)"]
    lines.append("    plots:")
    for name, fields in PLOT_DECLARATIONS[task].items():
        lines += [f"      - {plots_dir}/{name}:", "          cache: false"]
        lines += [f"          {key}: {value}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def _curves(y: Any, p: Any) -> dict[str, pd.DataFrame]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    return {
        "roc.csv": pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        "precision_recall.csv": pd.DataFrame({"recall": recall, "precision": precision}),
        "calibration.csv": pd.DataFrame({"predicted": predicted, "observed": observed}),
    }


def _task_curves(task: Task, y: Any, p: Any) -> dict[str, pd.DataFrame]:
    """Plot data that fits the task: binary as always (ROC, PR, calibration); multiclass the confusion
    pairs (``dvc plots`` draws them as a confusion matrix) and the top-class calibration; regression
    the residuals against the prediction and predicted against actual."""
    import numpy as np

    if task.kind == "binary":
        return _curves(y, p)
    if task.kind == "multiclass":
        predicted_class = p.argmax(axis=1)
        classes = np.array([str(value) for value in task.classes], dtype="object")
        calibration = _curves((predicted_class == y).astype(int), p.max(axis=1))["calibration.csv"]
        return {
            "confusion.csv": pd.DataFrame({"actual": classes[y], "predicted": classes[predicted_class]}),
            "calibration.csv": calibration,
        }
    return {
        "residuals.csv": pd.DataFrame({"predicted": p, "residual": y - p}),
        "predicted_actual.csv": pd.DataFrame({"actual": y, "predicted": p}),
    }


def fit(
    project: Path,
    settings: Settings,
    models_dir: Path,
    plots_dir: Path,
    metrics_path: Path,
    dask_scheduler: str | None = None,
    state_dir: Path | None = None,
    new_salt: bool = False,
) -> dict[str, Any]:
    """Fit the project's training snapshot and write what the DVC ``train`` stage declares as outputs
    (sensitive columns as tokens under the privacy salt of ``state_dir``). The salt is read, never
    created (``dvc repro`` on a fresh clone must not write models under other tokens), unless
    ``new_salt`` asks for one on purpose."""
    dataset = settings.dataset
    try:
        tokens = privacy_salt.tokeniser(state_dir or project / ".retrain", settings.tokenised_columns, create=new_salt)
    except PrivacyError as error:
        raise PrivacyError(f"{error}; or pass {NEW_SALT_FLAG} to create a new salt on purpose") from None
    fitted = fit_snapshot_file(
        project / dataset.training_set, dataset, settings.split, settings.model, dask_scheduler, tokens
    )
    split = fitted.split
    task = task_for(dataset)
    y = task.encode(split.holdout[dataset.target], "target of the holdout rows")
    p = fitted.holdout_predictions
    metrics = {
        "holdout": fitted.holdout_metrics,
        "best_iteration": fitted.model.best_iteration,
        "rows": {"train": len(split.train), "validation": len(split.validation), "holdout": len(split.holdout)},
    }
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / "model.ubj").write_bytes(fitted.model_bytes())
    (models_dir / FEATURE_SPEC_DOCUMENT).write_text(json.dumps(fitted.model.spec.to_dict(), indent=2), encoding="utf-8")
    metrics_path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name, curve in _task_curves(task, y, p).items():
        curve.round(6).to_csv(plots_dir / name, index=False)
    return metrics
