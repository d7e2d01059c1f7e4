"""The task strategy: what differs between binary, multiclass and regression, and nothing else.

Every recipe (fit, gate, slices, drift, shadow scoring) is written once and asks the :class:`Task`
for the few things that depend on the kind of target:

* **labels**: the target column's values as the model sees them. Classes are matched by
  :func:`~retrain.domain.settings.label_key` (1, 1.0, "1" and true are one class), encoded to their
  index in ``dataset.labels.classes`` (binary: 1 for the positive class, 0 for the other); a value
  outside the classes is a typed :class:`UnknownLabelError` naming the values, never a crash.
  Regression targets are floats.
* **XGBoost**: objective, evaluation metric and (multiclass) ``num_class``; binary keeps exactly the
  parameters it always had, so binary model files stay byte-identical.
* **predictions**: binary P(positive), one value per row; multiclass ``n x k`` class probabilities;
  regression the predicted value.
* **metrics**: the task's metric set (:data:`~retrain.domain.metrics.TASK_METRICS`).
* **a 1-D score per row** for the drift of predictions (:func:`prediction_summary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb

from retrain.domain.errors import InputError
from retrain.domain.metrics import METRICS, TASK_METRICS, MetricDefinition, task_metrics
from retrain.domain.settings import DatasetSettings, LabelValue, TaskKind, label_key

#: Binary when params.yaml has no ``dataset.labels``: the loan demo's 0/1 target.
DEFAULT_BINARY_CLASSES: tuple[LabelValue, ...] = (0, 1)


class UnknownLabelError(InputError):
    """The target holds values that are not among ``dataset.labels.classes``."""


def prediction_summary(predictions: np.ndarray) -> np.ndarray:
    """One number per row whose distribution the drift check follows.

    Binary: P(positive); regression: the prediction itself. Multiclass: the probability of the
    predicted class (the model's confidence). Why that and not, say, each class's probability: it is
    one distribution whatever the number of classes, it falls when the rows move away from what the
    model knows (new regions of feature space get flatter probabilities), and the *mix* of predicted
    classes is already visible through the features' drift and the performance check.
    """
    values = np.asarray(predictions, dtype="float64")
    summary: np.ndarray = values.max(axis=1) if values.ndim == 2 else values
    return summary


@dataclass(frozen=True)
class Task:
    """The kind of target and its classes (empty for regression)."""

    kind: TaskKind
    classes: tuple[LabelValue, ...] = ()
    positive: LabelValue | None = None

    @property
    def probabilistic(self) -> bool:
        """Predictions are probabilities (calibration applies)."""
        return self.kind != "regression"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return TASK_METRICS[self.kind]

    def metric(self, name: str) -> MetricDefinition:
        if name not in self.metric_names:
            raise ValueError(f"{name} is not a {self.kind} metric ({', '.join(self.metric_names)})")
        return METRICS[name]

    # --- labels -------------------------------------------------------------------------------------

    def _index(self) -> dict[tuple[str, object], int]:
        if self.kind == "binary":
            positive = label_key(self.positive)
            return {label_key(value): int(label_key(value) == positive) for value in self.classes}
        return {label_key(value): position for position, value in enumerate(self.classes)}

    def label_codes(
        self,
        values: pd.Series | np.ndarray | Sequence[Any],
        what: str = "target",
        unknown: Literal["refuse", "missing"] = "refuse",
    ) -> np.ndarray:
        """Encoded labels as floats, NaN where the value is missing (monitoring: labels arrive late).

        A value outside ``dataset.labels`` (not a number, for regression) is refused with a typed
        error, or with ``unknown="missing"`` read as missing: a scored batch's metrics then leave
        the row out, and :meth:`unknown_labels` says how many were. Each distinct value is looked
        up once, so a million rows cost one factorisation.
        """
        series = pd.Series(values) if not isinstance(values, pd.Series) else values
        if self.kind == "regression":
            numbers = pd.to_numeric(series, errors="coerce")
            bad = series[numbers.isna() & series.notna()]
            if len(bad) and unknown == "refuse":
                shown = sorted({str(v) for v in bad.unique()})[:5]
                raise UnknownLabelError(f"the {what} of a regression must be numbers, found {shown}")
            floats: np.ndarray = numbers.to_numpy(dtype="float64", na_value=np.nan, copy=True)
            return floats
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        index = self._index()
        keys = [label_key(value) for value in uniques]
        strange = [value for value, key in zip(uniques, keys, strict=True) if key not in index]
        if strange and unknown == "refuse":
            shown = sorted(str(value) for value in strange)
            raise UnknownLabelError(
                f"the {what} holds values that are not among dataset.labels.classes {list(self.classes)}: "
                f"{shown[:10]}{' …' if len(shown) > 10 else ''}"
            )
        lookup = np.array([float(index.get(key, np.nan)) for key in keys] + [np.nan], dtype="float64")
        encoded: np.ndarray = lookup[codes]  # the sentinel -1 picks the trailing NaN
        return encoded

    def unknown_labels(self, values: pd.Series | np.ndarray | Sequence[Any]) -> dict[str, int]:
        """Rows per present label value the task cannot encode (not in ``dataset.labels``; for
        regression, not a number), by the value as text: what ``unknown="missing"`` left out."""
        series = pd.Series(values) if not isinstance(values, pd.Series) else values
        present = series[series.notna()]
        if self.kind == "regression":
            strange = present[pd.to_numeric(present, errors="coerce").isna()]
        else:
            index = self._index()
            known = {value for value in present.unique() if label_key(value) in index}
            strange = present[~present.isin(known)]
        return {str(value): int(count) for value, count in strange.value_counts(sort=False).items()}

    def encode(self, values: pd.Series | np.ndarray | Sequence[Any], what: str = "target") -> np.ndarray:
        """Encoded labels without missing values: class indices (int64) or target values (float64)."""
        codes = self.label_codes(values, what)
        missing = int(np.isnan(codes).sum())
        if missing:
            raise UnknownLabelError(f"the {what} has {missing} missing values")
        return codes if self.kind == "regression" else codes.astype("int64")

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Class labels (as written in params.yaml) for class indices; regression values unchanged."""
        if self.kind == "regression":
            return np.asarray(indices, dtype="float64")
        if self.kind == "binary":
            negative = next(v for v in self.classes if label_key(v) != label_key(self.positive))
            ordered = np.array([negative, self.positive], dtype="object")
        else:
            ordered = np.array(self.classes, dtype="object")
        decoded: np.ndarray = ordered[np.asarray(indices, dtype="int64")]
        return decoded

    # --- model --------------------------------------------------------------------------------------

    @property
    def eval_metric(self) -> str:
        """XGBoost's name of the early-stopping metric (and of the validation curve)."""
        return {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}[self.kind]

    def xgboost_params(self) -> dict[str, Any]:
        """The task's leading XGBoost parameters; binary exactly as Retrain always trained it."""
        if self.kind == "binary":
            return {"objective": "binary:logistic", "eval_metric": "logloss"}
        if self.kind == "multiclass":
            return {"objective": "multi:softprob", "eval_metric": "mlogloss", "num_class": self.n_classes}
        return {"objective": "reg:squarederror", "eval_metric": "rmse"}

    def predict(self, booster: xgb.Booster, matrix: xgb.DMatrix) -> np.ndarray:
        """Binary P(positive) and regression values (1-D); multiclass ``n x k`` probabilities."""
        raw = np.asarray(booster.predict(matrix), dtype="float64")
        if self.kind == "multiclass":
            reshaped: np.ndarray = raw.reshape(-1, self.n_classes)
            return reshaped
        return raw

    def predicted_labels(self, predictions: np.ndarray) -> np.ndarray:
        """What a prediction says in the target's own values: the likeliest class, or the value."""
        values = np.asarray(predictions, dtype="float64")
        if self.kind == "multiclass":
            return self.decode(values.argmax(axis=1))
        if self.kind == "binary":
            return self.decode((values >= 0.5).astype("int64"))
        return values

    # --- evaluation ---------------------------------------------------------------------------------

    def metrics(self, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        """The task's metrics on encoded labels (see :meth:`encode`)."""
        return task_metrics(self.kind, labels, predictions)

    def score(self, predictions: np.ndarray) -> np.ndarray:
        """The 1-D score per row followed by the drift of predictions (see :func:`prediction_summary`)."""
        return prediction_summary(predictions)

    def evaluable(self, labels: np.ndarray) -> bool:
        """Whether encoded labels can carry the task's metrics: two classes for binary (AUC), two
        distinct values for regression (R²), any labelled row for multiclass."""
        known = np.asarray(labels, dtype="float64")
        known = known[~np.isnan(known)]
        if self.kind == "multiclass":
            return bool(known.size > 0)
        return bool(np.unique(known).size >= 2)


BINARY = Task("binary", DEFAULT_BINARY_CLASSES, 1)


def task_for(dataset: DatasetSettings) -> Task:
    """The task params.yaml describes (binary with classes 0/1 when ``dataset.labels`` is absent)."""
    if dataset.task == "regression":
        return Task("regression")
    if dataset.labels is None:
        return BINARY
    return Task(dataset.task, dataset.labels.classes, dataset.labels.positive)
