"""The one fitting recipe: split by time, build the feature spec on the training days, train, evaluate.

The training flow, ``retrain fit`` (the DVC ``train`` stage) and ``retrain reproduce`` all fit through
:func:`fit_split` (``fit_snapshot`` is split + fit in one call). Byte-identical reproduction depends on
every path doing exactly the same thing with the same rows and settings, so the recipe is written once,
here, and nowhere else calls :func:`~retrain.domain.training.train_model` for a model version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.domain.features import build_feature_spec
from retrain.domain.metrics import classification_metrics
from retrain.domain.settings import DatasetSettings, ModelSettings, SplitSettings
from retrain.domain.splitting import TimeSplit, split_by_time
from retrain.domain.training import TrainedModel, predict_proba, train_model


@dataclass(frozen=True)
class FittedSnapshot:
    """A model fitted on one snapshot, with the split it saw and its scores on the unseen days."""

    split: TimeSplit
    model: TrainedModel
    validation_metrics: dict[str, float]
    holdout_metrics: dict[str, float]
    holdout_predictions: np.ndarray

    def model_bytes(self) -> bytes:
        """The native model file (UBJSON): what is registered, written by ``dvc repro`` and rebuilt."""
        return bytes(self.model.booster.save_raw("ubj"))


def split_snapshot(frame: pd.DataFrame, dataset: DatasetSettings, split: SplitSettings) -> TimeSplit:
    """Step one of the recipe: train on the past, stop early on the recent past, judge on the newest days."""
    return split_by_time(frame, dataset.time_column, split.holdout_days, split.validation_days, split.min_train_days)


def fit_split(split: TimeSplit, dataset: DatasetSettings, model: ModelSettings) -> FittedSnapshot:
    """Step two: the feature spec from the training days only, the model, and its validation/holdout scores."""
    spec = build_feature_spec(split.train, dataset.features.numeric, dataset.features.categorical)
    trained = train_model(split.train, split.validation, spec, dataset.target, model)
    validation_pred = predict_proba(trained.booster, split.validation, spec, model.threads)
    holdout_pred = predict_proba(trained.booster, split.holdout, spec, model.threads)
    return FittedSnapshot(
        split=split,
        model=trained,
        validation_metrics=classification_metrics(split.validation[dataset.target].to_numpy(), validation_pred),
        holdout_metrics=classification_metrics(split.holdout[dataset.target].to_numpy(), holdout_pred),
        holdout_predictions=holdout_pred,
    )


def fit_snapshot(
    frame: pd.DataFrame, dataset: DatasetSettings, split: SplitSettings, model: ModelSettings
) -> FittedSnapshot:
    """The whole recipe on one snapshot's rows (the flow runs the two steps as separate tasks)."""
    return fit_split(split_snapshot(frame, dataset, split), dataset, model)
