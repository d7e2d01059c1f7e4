"""Model fitting: XGBoost ``hist``, seeded and single-configuration, early-stopped on validation days.

Deterministic on purpose: the same rows, params, seed and thread count give a byte-identical model,
which is what lets a model version be rebuilt and proven identical later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xgboost as xgb

from retrain.domain.errors import InputError
from retrain.domain.features import FeatureSpec, encode_features
from retrain.domain.settings import ModelSettings
from retrain.domain.task import BINARY, Task


class TrainingDataError(InputError):
    """The rows cannot train a model (for example: a single class, or a constant target)."""


@dataclass(frozen=True)
class TrainedModel:
    booster: xgb.Booster
    spec: FeatureSpec
    best_iteration: int
    validation_curve: tuple[float, ...]


def booster_params(settings: ModelSettings, task: Task = BINARY) -> dict[str, Any]:
    """The full XGBoost parameter set, derived only from settings and the task (nothing implicit).

    The task's objective leads (binary: exactly the keys and order Retrain always used, so binary
    model files and run params do not change).
    """
    knobs = settings.xgboost
    return {
        **task.xgboost_params(),
        "tree_method": "hist",
        "seed": settings.seed,
        "nthread": settings.threads,
        "max_depth": knobs.max_depth,
        "learning_rate": knobs.learning_rate,
        "subsample": knobs.subsample,
        "colsample_bytree": knobs.colsample_bytree,
        "min_child_weight": knobs.min_child_weight,
        "reg_lambda": knobs.reg_lambda,
        "reg_alpha": knobs.reg_alpha,
        "max_cat_to_onehot": knobs.max_cat_to_onehot,
        "max_bin": knobs.max_bin,
    }


def _labels(frame: pd.DataFrame, target: str, part: str, task: Task = BINARY) -> np.ndarray:
    labels = frame[target]
    if labels.isna().any():
        raise TrainingDataError(f"the {part} rows have {int(labels.isna().sum())} missing target values")
    values = task.encode(labels, f"target of the {part} rows")
    if np.unique(values).size < 2:
        if task.kind == "regression":
            raise TrainingDataError(f"the {part} rows hold a constant target ({values[0]:g}); nothing to learn")
        raise TrainingDataError(
            f"the {part} rows hold a single target class ({labels.iloc[0]}); a classifier needs at least two"
        )
    return values


def to_dmatrix(
    frame: pd.DataFrame, spec: FeatureSpec, labels: np.ndarray | None = None, threads: int = 1
) -> xgb.DMatrix:
    return xgb.DMatrix(encode_features(frame, spec), label=labels, feature_types=spec.feature_types, nthread=threads)


@dataclass(frozen=True)
class LabelledRows:
    """Rows, the spec that encodes them and their encoded labels: what an engine boosts on.

    The model matrix is encoded when the engine asks (:meth:`features`), so it lives only while the
    engine builds its matrix from it, not for the whole training.
    """

    rows: pd.DataFrame
    spec: FeatureSpec
    labels: np.ndarray

    def features(self) -> pd.DataFrame:
        """The model matrix: float64 columns in spec order (categoricals as codes)."""
        return encode_features(self.rows, self.spec)


@dataclass(frozen=True)
class BoostingJob:
    """Everything the boosting rounds need, whichever engine runs them."""

    params: dict[str, Any]
    train: LabelledRows
    validation: LabelledRows
    feature_types: list[str]
    num_boost_round: int
    early_stopping_rounds: int
    eval_metric: str


class BoostingEngine(Protocol):
    """Where the boosting rounds run. Returns the whole booster (best iteration set) and the validation
    curve of the eval metric; :func:`train_model` keeps the trees up to the best round."""

    name: str

    def describe(self) -> str:
        """Where the rounds will run, in words (checked: a cluster's workers are there)."""
        ...

    def boost(self, job: BoostingJob) -> tuple[xgb.Booster, tuple[float, ...]]: ...


class InMemoryEngine:
    """``xgb.train`` in this process: byte-identical for the same rows, params, seed and thread count."""

    name = "in_memory"

    def describe(self) -> str:
        return "in memory, in this process"

    def boost(self, job: BoostingJob) -> tuple[xgb.Booster, tuple[float, ...]]:
        threads = int(job.params.get("nthread", 1))
        dtrain = xgb.DMatrix(
            job.train.features(), label=job.train.labels, feature_types=job.feature_types, nthread=threads
        )
        dvalid = xgb.DMatrix(
            job.validation.features(), label=job.validation.labels, feature_types=job.feature_types, nthread=threads
        )
        history: dict[str, dict[str, list[float]]] = {}
        booster = xgb.train(
            job.params,
            dtrain,
            num_boost_round=job.num_boost_round,
            evals=[(dvalid, "validation")],
            early_stopping_rounds=job.early_stopping_rounds,
            evals_result=history,
            verbose_eval=False,
        )
        return booster, tuple(history["validation"][job.eval_metric])


IN_MEMORY = InMemoryEngine()


def train_model(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    spec: FeatureSpec,
    target: str,
    settings: ModelSettings,
    task: Task = BINARY,
    engine: BoostingEngine = IN_MEMORY,
) -> TrainedModel:
    """Fit on ``train``, stop early on ``validation``; keep only the trees up to the best round.

    The labels are checked here and the rows encoded by one spec, the same way for every engine; only
    the boosting rounds run where ``engine`` says.
    """
    job = BoostingJob(
        params=booster_params(settings, task),
        train=LabelledRows(train, spec, _labels(train, target, "training", task)),
        validation=LabelledRows(validation, spec, _labels(validation, target, "validation", task)),
        feature_types=spec.feature_types,
        num_boost_round=settings.xgboost.num_boost_round,
        early_stopping_rounds=settings.xgboost.early_stopping_rounds,
        eval_metric=task.eval_metric,
    )
    booster, curve = engine.boost(job)
    best = int(booster.best_iteration)
    return TrainedModel(booster=booster[: best + 1], spec=spec, best_iteration=best, validation_curve=curve)


def predict_proba(booster: xgb.Booster, frame: pd.DataFrame, spec: FeatureSpec, threads: int = 1) -> np.ndarray:
    """Probability of the positive class for raw rows, encoded with the model's own spec."""
    return np.asarray(booster.predict(to_dmatrix(frame, spec, threads=threads)), dtype="float64")


def predict(
    booster: xgb.Booster, frame: pd.DataFrame, spec: FeatureSpec, task: Task = BINARY, threads: int = 1
) -> np.ndarray:
    """The task's predictions for raw rows (see :meth:`Task.predict`), encoded with the model's own spec."""
    return task.predict(booster, to_dmatrix(frame, spec, threads=threads))


def feature_gains(booster: xgb.Booster) -> dict[str, float]:
    """Each feature's total gain over all the model's splits (features it never splits on are absent):
    what the drift trigger weighs a feature's drift by, as a share of the sum."""
    scores = booster.get_score(importance_type="total_gain")
    return {str(name): float(value) for name, value in scores.items() if not isinstance(value, list)}
