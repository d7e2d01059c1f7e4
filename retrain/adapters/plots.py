"""The evaluation plots logged with every model, per task, and the drift grid.

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

    from retrain.domain.dashboard import Dashboard
    from retrain.domain.drift_view import DriftGrid
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


def drift_grid_figure(grid: DriftGrid) -> Figure:
    """Reference vs current shares of every row the grid holds, one small panel each, ``layout.columns``
    to a row: numeric features over the reference's equal-mass bins, categorical ones over their
    categories, missing values last; a drifted row's title in red."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    layout = grid.layout
    rows, columns = max(layout.rows, 1), max(layout.columns, 1)
    figure = Figure(figsize=(3.8 * columns, 2.9 * rows + 0.9), dpi=80)
    figure.suptitle(f"{grid.title}\n{grid.note}", fontsize=10)
    for index, panel in enumerate(grid.panels, start=1):
        axes = figure.add_subplot(rows, columns, index)
        positions = np.arange(len(panel.pair.cells))
        axes.bar(
            positions - 0.2, panel.pair.reference, width=0.4, color="tab:blue", label="reference (champion's data)"
        )
        axes.bar(positions + 0.2, panel.pair.current, width=0.4, color="tab:orange", label="current batch")
        axes.set_xticks(positions, panel.pair.cells, rotation=40, ha="right", fontsize=6)
        axes.yaxis.set_major_locator(MaxNLocator(3))
        axes.tick_params(axis="y", labelsize=6)
        # a fixed title position: placing it by the axes' extent measures every tick label (slow)
        colour = "tab:red" if panel.drifted else "black"
        axes.set_title(f"{panel.title}\n{panel.subtitle}", fontsize=8, color=colour, y=1.0, pad=3)
        if index == 1:
            axes.set_ylabel("share of rows", fontsize=7)
            axes.legend(fontsize=6)
    if not grid.panels:
        axes = figure.add_subplot(1, 1, 1)
        axes.axis("off")
        axes.text(0.5, 0.5, "no feature in the reference profile", ha="center", va="center")
    # fixed spacing in inches (tight_layout measures every label: seconds for sixty panels)
    height = 2.9 * rows + 0.9
    figure.subplots_adjust(
        left=0.45 / (3.8 * columns),
        right=1 - 0.15 / (3.8 * columns),
        bottom=0.75 / height,
        top=1 - 0.9 / height,
        wspace=0.25,
        hspace=1.45 / 2.15,
    )
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


def png(figure: Figure) -> bytes:
    """A figure as PNG bytes (for a page that carries its images inline)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def dashboard_figures(board: Dashboard) -> dict[str, bytes | None]:
    """The dashboard's figures as PNG (None where there is nothing to plot yet)."""
    return {
        "metrics": _metrics_figure(board),
        "drift": _drift_figure(board),
        "durations": _durations_figure(board),
        "resources": _resources_figure(board),
    }


def _metrics_figure(board: Dashboard) -> bytes | None:
    """Left: the primary metric per version (holdout at training, realized on labelled traffic);
    right: the realized metric over time, one line per model version."""
    holdout = [(int(v.version), v.holdout) for v in board.versions if v.holdout is not None]
    if not holdout and not board.realized:
        return None
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    metric = board.primary_metric
    figure = Figure(figsize=(11, 4), dpi=100)
    per_version, over_time = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    if holdout:
        per_version.plot([v for v, _ in holdout], [m for _, m in holdout], "o-", label="holdout (at training)")
    by_version: dict[str, list[tuple[float, float]]] = {}
    first = min((point.at for point in board.realized), default=None)
    for point in board.realized:
        hours = 0.0 if first is None else (point.at - first).total_seconds() / 3600
        by_version.setdefault(point.version, []).append((hours, point.value))
    for version, points in sorted(by_version.items()):
        per_version.scatter(
            [int(version)] * len(points), [v for _, v in points], marker="x", label=f"realized, v{version}"
        )
        over_time.plot([h for h, _ in points], [v for _, v in points], "x-", label=f"v{version}")
    per_version.set_title(f"{metric} per version")
    per_version.set_xlabel("model version")
    per_version.xaxis.set_major_locator(MaxNLocator(integer=True))
    over_time.set_title(f"{metric} realized on labelled traffic")
    over_time.set_xlabel(
        "hours since the first labelled batch" if first is None else f"hours since {first:%Y-%m-%d %H:%M} UTC"
    )
    for axes in (per_version, over_time):
        axes.set_ylabel(metric)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    figure.tight_layout()
    return png(figure)


def _drift_figure(board: Dashboard) -> bytes | None:
    if not board.drift:
        return None
    figure, axes = _figure("Share of the champion's importance in drifted features, per check")
    positions = np.arange(len(board.drift))
    colours = ["tab:red" if point.decision == "retrain" else "tab:blue" for point in board.drift]
    axes.bar(positions, [point.drift_share for point in board.drift], color=colours)
    axes.set_xticks(positions, [point.batches[-18:] for point in board.drift], rotation=45, ha="right", fontsize=6)
    axes.set_ylabel("drift share (red: retrained)")
    return png(figure)


def _durations_figure(board: Dashboard) -> bytes | None:
    if not board.durations:
        return None
    figure, axes = _figure("Run durations")
    first = min(run.at for run in board.durations)
    for kind in sorted({run.kind for run in board.durations}):
        runs = [run for run in board.durations if run.kind == kind]
        axes.plot([(run.at - first).total_seconds() for run in runs], [run.seconds for run in runs], "o-", label=kind)
    axes.set_xlabel(f"seconds since the first run ({first:%Y-%m-%d %H:%M} UTC)")
    axes.set_ylabel("run seconds")
    axes.legend(fontsize=7)
    return png(figure)


def _resources_figure(board: Dashboard) -> bytes | None:
    traces = [trace for trace in board.resources if trace.seconds]
    if not traces:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    cpu, memory = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for trace in traces:
        cpu.plot(trace.seconds, trace.cpu_percent, "o-", markersize=3, label=f"v{trace.version}")
        memory.plot(trace.seconds, trace.process_rss_mb, "o-", markersize=3, label=f"v{trace.version}")
    cpu.set_title("CPU while training (system %)")
    memory.set_title("Resident memory of the training process (MB)")
    for axes in (cpu, memory):
        axes.set_xlabel("seconds since the fit began")
        axes.legend(fontsize=7)
    figure.tight_layout()
    return png(figure)
