"""``retrain fit``: the DVC ``train`` stage. Split, train and evaluate the snapshot outside Prefect.

The same domain code as the training flow (split_by_time, build_feature_spec, train_model,
classification_metrics), so ``dvc repro`` and a flow run on the same snapshot and params produce
the same model bytes. Writes the model, its feature spec, ``metrics.json`` and plot data for
``dvc metrics show`` / ``dvc plots show``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.adapters import files
from retrain.domain.features import build_feature_spec
from retrain.domain.metrics import classification_metrics
from retrain.domain.settings import Settings
from retrain.domain.splitting import split_by_time
from retrain.domain.training import predict_proba, train_model


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


def fit(project: Path, settings: Settings, models_dir: Path, plots_dir: Path, metrics_path: Path) -> dict[str, Any]:
    dataset = settings.dataset
    frame = files.read_snapshot(project / dataset.training_set)
    split = split_by_time(
        frame,
        dataset.time_column,
        settings.split.holdout_days,
        settings.split.validation_days,
        settings.split.min_train_days,
    )
    spec = build_feature_spec(split.train, dataset.features.numeric, dataset.features.categorical)
    model = train_model(split.train, split.validation, spec, dataset.target, settings.model)
    y = split.holdout[dataset.target].to_numpy()
    p = predict_proba(model.booster, split.holdout, spec, settings.model.threads)
    metrics = {
        "holdout": classification_metrics(y, p),
        "best_iteration": model.best_iteration,
        "rows": {"train": len(split.train), "validation": len(split.validation), "holdout": len(split.holdout)},
    }
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / "model.ubj").write_bytes(bytes(model.booster.save_raw("ubj")))
    (models_dir / "feature_spec.json").write_text(json.dumps(spec.to_dict(), indent=2), encoding="utf-8")
    metrics_path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name, curve in _curves(y, p).items():
        curve.round(6).to_csv(plots_dir / name, index=False)
    return metrics
