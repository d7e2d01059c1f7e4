"""The four evaluation plots logged with every model: ROC, precision-recall, calibration, importance.

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
