"""The evaluation plots logged with every model, per task, and the drift plot.

Binary: ROC, precision-recall, calibration; multiclass: the confusion matrix and the top-class
calibration; regression: residuals against the prediction and predicted against actual. Every task:
feature importance.

matplotlib is imported inside the functions (with the non-interactive Agg backend) so that the CLI
and the domain stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xgboost as xgb
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrain.domain.drift import DistributionPair
    from retrain.domain.task import Task


def _figure(title: str) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def roc_figure(y_true: np.ndarray, y_prob: np.ndarray, label: str) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y_true, y_prob)
    figure, axes = _figure("ROC curve (holdout)")
    axes.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, y_prob):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right")
    return figure


def precision_recall_figure(y_true: np.ndarray, y_prob: np.ndarray, label: str) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y_true, y_prob)
    figure, axes = _figure("Precision-recall curve (holdout)")
    ap = average_precision_score(y_true, y_prob)
    axes.plot(recall, precision, label=f"{label} (AP {ap:.3f})")
    axes.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="base rate")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.legend(loc="upper right")
    return figure


def calibration_figure(y_true: np.ndarray, y_prob: np.ndarray, label: str, bins: int = 10) -> Figure:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y_true, y_prob, n_bins=bins, strategy="quantile")
    figure, axes = _figure("Calibration (holdout, quantile bins)")
    axes.plot(predicted, observed, marker="o", label=label)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("observed default rate")
    axes.legend(loc="upper left")
    return figure


def confusion_figure(y_true: np.ndarray, y_prob: np.ndarray, classes: list[str], label: str) -> Figure:
    """Rows: the true class; columns: the predicted (likeliest) class; cells: share of the true class."""
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    counts = confusion_matrix(y_true, np.asarray(y_prob).argmax(axis=1), labels=list(range(k)))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = _figure(f"Confusion matrix (holdout): {label}")
    image = axes.imshow(shares, vmin=0, vmax=1, cmap="Blues")
    for row in range(k):
        for column in range(k):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, f"{counts[row, column]}", ha="center", va="center", fontsize=8, color=colour)
    axes.set_xticks(range(k), classes, rotation=30, ha="right")
    axes.set_yticks(range(k), classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.colorbar(image, ax=axes, label="share of the true class")
    figure.tight_layout()
    return figure


def top_class_calibration_figure(y_true: np.ndarray, y_prob: np.ndarray, label: str, bins: int = 10) -> Figure:
    """Multiclass: the top-class probability against how often the top class is right."""
    probabilities = np.asarray(y_prob)
    correct = (probabilities.argmax(axis=1) == np.asarray(y_true)).astype(int)
    figure = calibration_figure(correct, probabilities.max(axis=1), label, bins)
    axes = figure.axes[0]
    axes.set_xlabel("mean probability of the predicted class")
    axes.set_ylabel("share predicted right")
    return figure


def residuals_figure(y_true: np.ndarray, y_pred: np.ndarray, label: str) -> Figure:
    """Residual (actual − predicted) against the prediction: bias shows as an offset, heteroscedasticity as a fan."""
    residual = np.asarray(y_true, dtype="float64") - np.asarray(y_pred, dtype="float64")
    figure, axes = _figure(f"Residuals (holdout): {label}")
    axes.scatter(y_pred, residual, s=4, alpha=0.4)
    axes.axhline(0.0, linestyle="--", color="grey")
    axes.axhline(float(residual.mean()), color="red", label=f"mean residual {residual.mean():+.3g}")
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual − predicted")
    axes.legend(loc="upper right")
    return figure


def predicted_actual_figure(y_true: np.ndarray, y_pred: np.ndarray, label: str) -> Figure:
    y, p = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    figure, axes = _figure(f"Predicted vs actual (holdout): {label}")
    axes.scatter(y, p, s=4, alpha=0.4)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="perfect")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.legend(loc="upper left")
    return figure


def importance_figure(booster: xgb.Booster, top: int = 20) -> Figure:
    gains = {name: float(value) for name, value in booster.get_score(importance_type="gain").items()}  # type: ignore[arg-type]
    ranked = sorted(gains.items(), key=lambda item: item[1])[-top:]
    figure, axes = _figure("Feature importance (total gain share)")
    total = sum(gains.values()) or 1.0
    names = [name for name, _ in ranked]
    axes.barh(names, [value / total for _, value in ranked])
    axes.set_xlabel("share of gain")
    figure.tight_layout()
    return figure


def drift_figure(pairs: list[DistributionPair], title: str) -> Figure:
    """Reference vs current shares for the most drifted features, one panel each."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 2.6 * max(len(pairs), 1)), dpi=100)
    figure.suptitle(title)
    for index, pair in enumerate(pairs, start=1):
        axes = figure.add_subplot(max(len(pairs), 1), 1, index)
        positions = np.arange(len(pair.cells))
        axes.bar(positions - 0.2, pair.reference, width=0.4, label="reference (champion's data)")
        axes.bar(positions + 0.2, pair.current, width=0.4, label="current batch")
        axes.set_xticks(positions, pair.cells, rotation=30, ha="right", fontsize=7)
        axes.set_ylabel("share")
        axes.set_title(pair.feature, fontsize=9)
        if index == 1:
            axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def evaluation_figures(task: Task, y_true: np.ndarray, predictions: np.ndarray, label: str) -> dict[str, Figure]:
    """The holdout plots that fit the task, by artifact path (feature importance is added by the caller)."""
    if task.kind == "regression":
        return {
            "plots/residuals.png": residuals_figure(y_true, predictions, label),
            "plots/predicted_vs_actual.png": predicted_actual_figure(y_true, predictions, label),
        }
    if task.kind == "multiclass":
        classes = [str(value) for value in task.classes]
        return {
            "plots/confusion_matrix.png": confusion_figure(y_true, predictions, classes, label),
            "plots/calibration.png": top_class_calibration_figure(y_true, predictions, label),
        }
    return {
        "plots/roc.png": roc_figure(y_true, predictions, label),
        "plots/precision_recall.png": precision_recall_figure(y_true, predictions, label),
        "plots/calibration.png": calibration_figure(y_true, predictions, label),
    }
