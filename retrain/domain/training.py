"""Model fitting: XGBoost ``hist``, seeded and single-configuration, early-stopped on validation days.

Deterministic on purpose: the same rows, params, seed and thread count give a byte-identical model,
which is what lets a model version be rebuilt and proven identical later.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import pandas as pd
import xgboost as xgb

from retrain.domain.errors import InputError
from retrain.domain.features import FeatureSpec, encode_features
from retrain.domain.rows import Rows, column_of, pieces_of, whole
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


def _labels(frame: Rows, target: str, part: str, task: Task = BINARY) -> np.ndarray:
    labels = column_of(frame, target)
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

    rows: Rows
    spec: FeatureSpec
    labels: np.ndarray

    def features(self) -> pd.DataFrame:
        """The model matrix, whole: float64 columns in spec order (categoricals as codes)."""
        return encode_features(whole(self.rows), self.spec)

    def pieces(self, piece_rows: int) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """The model matrix and labels ``piece_rows`` rows at a time, in row order: only one piece
        is ever encoded at once."""
        start = 0
        for piece in pieces_of(self.rows, piece_rows):
            yield encode_features(piece, self.spec), self.labels[start : start + len(piece)]
            start += len(piece)


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


#: Rows per piece handed to XGBoost's external-memory matrix: a piece of 50 features is about 100 MB
#: encoded. The model does not depend on it (the quantile sketch is the same however rows are cut).
EXTERNAL_PIECE_ROWS: Final = 250_000


def matrix_mb(rows: int, features: int) -> float:
    """The size of a model matrix (float64, one column per feature) if it were built whole."""
    return rows * features * 8 / 1e6


def _boost_on(job: BoostingJob, dtrain: xgb.DMatrix, threads: int) -> tuple[xgb.Booster, tuple[float, ...]]:
    """The boosting rounds on a built training matrix, stopped early on the validation rows."""
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


class _Pieces(xgb.DataIter):
    """Hands XGBoost the training rows a piece at a time, as often as it asks (it reads them twice:
    once to sketch the quantiles, once to write its quantized pages)."""

    def __init__(self, rows: LabelledRows, piece_rows: int, feature_types: list[str], cache_prefix: str) -> None:
        self._rows = rows
        self._piece_rows = piece_rows
        self._feature_types = feature_types
        self._pieces: Iterator[tuple[pd.DataFrame, np.ndarray]] = iter(())
        super().__init__(cache_prefix=cache_prefix, release_data=True)
        self.reset()

    def next(self, input_data: Any) -> bool:
        piece = next(self._pieces, None)
        if piece is None:
            return False
        features, labels = piece
        input_data(data=features, label=labels, feature_types=self._feature_types)
        return True

    def reset(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()  # a generator over a file: closes the file now, not when collected
        self._pieces = self._rows.pieces(self._piece_rows)


class LocalEngine:
    """``xgb.train`` in this process: byte-identical for the same rows, params, seed and thread count.

    A training matrix larger than ``external_above_mb`` goes through XGBoost's external memory
    (``ExtMemQuantileDMatrix``): the rows are encoded a piece at a time and XGBoost keeps its
    quantized pages in a temporary directory (``TMPDIR``), so neither the encoded matrix nor XGBoost's
    copy of it is ever held whole. It is the same model: the quantile sketch, and so every split, is
    what the in-memory matrix gives (tested byte for byte), only the memory differs.
    """

    name = "in_memory"

    def __init__(self, external_above_mb: float | None = None, piece_rows: int = EXTERNAL_PIECE_ROWS) -> None:
        self.external_above_mb = external_above_mb
        self.piece_rows = piece_rows

    def describe(self) -> str:
        if self.external_above_mb is None:
            return "in memory, in this process"
        if self.external_above_mb == 0:
            return "in this process, through external memory"
        return f"in this process; a training matrix over {self.external_above_mb:g} MB goes through external memory"

    def uses_external_memory(self, rows: int, features: int) -> bool:
        """Whether a training matrix of ``rows`` x ``features`` goes through external memory."""
        return self.external_above_mb is not None and matrix_mb(rows, features) > self.external_above_mb

    def boost(self, job: BoostingJob) -> tuple[xgb.Booster, tuple[float, ...]]:
        threads = int(job.params.get("nthread", 1))
        if not self.uses_external_memory(len(job.train.rows), len(job.feature_types)):
            dtrain = xgb.DMatrix(
                job.train.features(), label=job.train.labels, feature_types=job.feature_types, nthread=threads
            )
            return _boost_on(job, dtrain, threads)
        with tempfile.TemporaryDirectory(prefix="retrain-external-memory-") as cache:
            pieces = _Pieces(job.train, self.piece_rows, job.feature_types, os.path.join(cache, "train"))
            dtrain = xgb.ExtMemQuantileDMatrix(
                pieces, max_bin=int(job.params["max_bin"]), nthread=threads, enable_categorical=True
            )
            try:
                return _boost_on(job, dtrain, threads)
            finally:
                del dtrain  # its pages live in ``cache``: released before the directory goes


IN_MEMORY = LocalEngine()


def train_model(
    train: Rows,
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
