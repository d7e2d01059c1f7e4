"""The one fitting recipe: split by time, build the feature spec on the training days, train, evaluate.

The training flow, ``retrain fit`` (the DVC ``train`` stage) and ``retrain reproduce`` all fit through
:func:`fit_split` (``fit_snapshot`` is split + fit in one call). Byte-identical reproduction depends on
every path doing exactly the same thing with the same rows and settings, so the recipe is written once,
here, and nowhere else calls :func:`~retrain.domain.training.train_model` for a model version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from retrain.domain.features import build_feature_spec
from retrain.domain.settings import DatasetSettings, ModelSettings, SplitSettings
from retrain.domain.splitting import TimeSplit, split_by_time
from retrain.domain.task import task_for
from retrain.domain.training import IN_MEMORY, BoostingEngine, TrainedModel, predict, train_model


@dataclass(frozen=True)
class ResourceSample:
    """The machine and the process at one moment of a fit: seconds since it started, system CPU %,
    system memory in use and the process's resident memory (MB)."""

    seconds: float
    cpu_percent: float
    memory_mb: float
    process_rss_mb: float


@dataclass(frozen=True)
class FittedSnapshot:
    """A model fitted on one snapshot, with the split it saw and its scores on the unseen days."""

    split: TimeSplit
    model: TrainedModel
    validation_metrics: dict[str, float]
    holdout_metrics: dict[str, float]
    holdout_predictions: np.ndarray  # the task's predictions (multiclass: rows x classes)
    resources: tuple[ResourceSample, ...] = ()  # CPU and memory while it was fitted (the flow samples them)

    def model_bytes(self) -> bytes:
        """The native model file (UBJSON): what is registered, written by ``dvc repro`` and rebuilt."""
        return bytes(self.model.booster.save_raw("ubj"))


def split_snapshot(frame: pd.DataFrame, dataset: DatasetSettings, split: SplitSettings) -> TimeSplit:
    """Step one of the recipe: train on the past, stop early on the recent past, judge on the newest days."""
    return split_by_time(
        frame,
        dataset.time_column,
        split.holdout_days,
        split.validation_days,
        split.min_train_days,
        split.max_train_days,
    )


def fit_split(
    split: TimeSplit, dataset: DatasetSettings, model: ModelSettings, engine: BoostingEngine = IN_MEMORY
) -> FittedSnapshot:
    """Step two: the feature spec from the training days only, the model, and its validation/holdout scores.

    ``engine`` runs the boosting rounds (``model.engine``: this process or a Dask cluster); the spec,
    the encoding and the scoring of the validation and holdout days are the same whichever runs them.
    """
    task = task_for(dataset)
    spec = build_feature_spec(split.train, dataset.features.numeric, dataset.features.categorical)
    if split.tokenised:
        spec = replace(spec, tokenised=split.tokenised, salt_id=split.salt_id)
    trained = train_model(split.train, split.validation, spec, dataset.target, model, task, engine)
    validation_pred = predict(trained.booster, split.validation, spec, task, model.threads)
    holdout_pred = predict(trained.booster, split.holdout, spec, task, model.threads)
    validation_labels = task.encode(split.validation[dataset.target], "target of the validation rows")
    holdout_labels = task.encode(split.holdout[dataset.target], "target of the holdout rows")
    return FittedSnapshot(
        split=split,
        model=trained,
        validation_metrics=task.metrics(validation_labels, validation_pred),
        holdout_metrics=task.metrics(holdout_labels, holdout_pred),
        holdout_predictions=holdout_pred,
    )


def fit_snapshot(
    frame: pd.DataFrame,
    dataset: DatasetSettings,
    split: SplitSettings,
    model: ModelSettings,
    engine: BoostingEngine = IN_MEMORY,
) -> FittedSnapshot:
    """The whole recipe on one snapshot's rows (the flow runs the two steps as separate tasks)."""
    return fit_split(split_snapshot(frame, dataset, split), dataset, model, engine)
