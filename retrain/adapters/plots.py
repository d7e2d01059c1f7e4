"""The evaluation plots logged with every model, per task, the champion-vs-challenger comparison, and
the drift grid.

Binary: ROC, precision-recall, calibration; multiclass: the confusion matrix and the top-class
calibration; regression: residuals against the prediction and predicted against actual. Every task:
feature importance. The comparison draws the same plots with the champion and the challenger on the
rows the gate compared them on (overlaid, or side by side where one panel holds one model), and the
slice check as a forest plot.

matplotlib is imported inside the functions (with the non-interactive Agg backend) so that the CLI
and the domain stay light. Figures are built without pyplot: nothing global holds them, nothing to close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from retrain.domain.comparison import ModelSeries, SliceForest, plotted_rows
from retrain.domain.tags import RUN_COMPARISON

if TYPE_CHECKING:
    import xgboost as xgb
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrain.domain.dashboard import Dashboard
    from retrain.domain.drift_view import DriftGrid
    from retrain.domain.task import Task

#: Points a curve or a scatter draws at most: past that, a line looks the same and a scatter shows
#: the same cloud, while drawing and PNG encoding grow with every point (a 1M-row holdout).
CURVE_POINTS = 2000
SCATTER_POINTS = 4000


def _figure(title: str) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _thin(x: np.ndarray, y: np.ndarray, limit: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` points of a curve, evenly along it, its two ends kept."""
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
    return x[keep], y[keep]


def _one(label: str, predictions: np.ndarray) -> tuple[ModelSeries]:
    return (ModelSeries(label, predictions),)


def roc_figure(y_true: np.ndarray, models: Sequence[ModelSeries], title: str = "ROC curve (holdout)") -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _figure(title)
    for model in models:
        fpr, tpr, _ = roc_curve(y_true, model.predictions)
        auc = roc_auc_score(y_true, model.predictions)
        axes.plot(*_thin(fpr, tpr), label=f"{model.label} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right")
    return figure


def precision_recall_figure(
    y_true: np.ndarray, models: Sequence[ModelSeries], title: str = "Precision-recall curve (holdout)"
) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure, axes = _figure(title)
    for model in models:
        precision, recall, _ = precision_recall_curve(y_true, model.predictions)
        ap = average_precision_score(y_true, model.predictions)
        axes.plot(*_thin(recall, precision), label=f"{model.label} (AP {ap:.3f})")
    axes.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="base rate")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.legend(loc="upper right")
    return figure


def calibration_figure(
    y_true: np.ndarray,
    models: Sequence[ModelSeries],
    bins: int = 10,
    title: str = "Calibration (holdout, quantile bins)",
) -> Figure:
    from sklearn.calibration import calibration_curve

    figure, axes = _figure(title)
    for model in models:
        observed, predicted = calibration_curve(y_true, model.predictions, n_bins=bins, strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=model.label)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("observed rate of the positive class")
    axes.legend(loc="upper left")
    return figure


def _confusion_axes(figure: Figure, axes: Axes, y_true: np.ndarray, y_prob: np.ndarray, classes: list[str]) -> None:
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    counts = confusion_matrix(y_true, np.asarray(y_prob).argmax(axis=1), labels=list(range(k)))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
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


def confusion_figure(y_true: np.ndarray, y_prob: np.ndarray, classes: list[str], label: str) -> Figure:
    """Rows: the true class; columns: the predicted (likeliest) class; cells: share of the true class."""
    figure, axes = _figure(f"Confusion matrix (holdout): {label}")
    _confusion_axes(figure, axes, y_true, y_prob, classes)
    figure.tight_layout()
    return figure


def confusion_pair_figure(y_true: np.ndarray, models: Sequence[ModelSeries], classes: list[str]) -> Figure:
    """One confusion matrix per model, side by side on one colour scale (a matrix cannot be overlaid)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * len(models), 4.5), dpi=100)
    figure.suptitle("Confusion matrices (the gate's holdout rows)")
    for index, model in enumerate(models, start=1):
        axes = figure.add_subplot(1, len(models), index)
        axes.set_title(model.label)
        _confusion_axes(figure, axes, y_true, model.predictions, classes)
    figure.tight_layout()
    return figure


def top_class_calibration_figure(
    y_true: np.ndarray,
    models: Sequence[ModelSeries],
    bins: int = 10,
    title: str = "Calibration (holdout, quantile bins)",
) -> Figure:
    """Multiclass: the top-class probability against how often the top class is right."""
    from sklearn.calibration import calibration_curve

    labels = np.asarray(y_true)
    figure, axes = _figure(title)
    for model in models:
        probabilities = np.asarray(model.predictions)
        correct = (probabilities.argmax(axis=1) == labels).astype(int)
        observed, predicted = calibration_curve(correct, probabilities.max(axis=1), n_bins=bins, strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=model.label)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.set_xlabel("mean probability of the predicted class")
    axes.set_ylabel("share predicted right")
    axes.legend(loc="upper left")
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


def residual_distribution_figure(y_true: np.ndarray, models: Sequence[ModelSeries]) -> Figure:
    """Each model's residuals (actual − predicted) as a histogram on common bins, with its mean: a
    shifted level is a shifted peak, a worse fit a wider one."""
    y = np.asarray(y_true, dtype="float64")
    residuals = [(model.label, y - np.asarray(model.predictions, dtype="float64")) for model in models]
    edges = np.histogram_bin_edges(np.concatenate([r for _, r in residuals]), bins=40)
    figure, axes = _figure("Residuals (the gate's holdout rows)")
    for index, (label, residual) in enumerate(residuals):
        colour = f"C{index}"
        mean, spread = float(residual.mean()), float(residual.std())
        legend = f"{label} (mean {mean:+.3g}, sd {spread:.3g})"
        axes.hist(residual, bins=edges.tolist(), histtype="step", linewidth=1.5, color=colour, label=legend)
        axes.axvline(mean, color=colour, linestyle=":")
    axes.axvline(0.0, linestyle="--", color="grey")
    axes.set_xlabel("actual − predicted")
    axes.set_ylabel("rows")
    axes.legend(loc="upper right", fontsize=8)
    return figure


def predicted_actual_figure(
    y_true: np.ndarray, models: Sequence[ModelSeries], title: str = "Predicted vs actual (holdout)", bins: int = 20
) -> Figure:
    """Each model's predictions against the actual values: faint points (the same sampled rows for
    every model) and, as a line per model, the mean prediction in each quantile bin of the actual value,
    so that two models stay readable where their clouds overlap."""
    y = np.asarray(y_true, dtype="float64")
    rows = plotted_rows(len(y), SCATTER_POINTS)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, bins + 1)))
    cell = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, max(len(edges) - 2, 0))
    filled = np.flatnonzero(np.bincount(cell, minlength=max(len(edges) - 1, 1)))
    figure, axes = _figure(title)
    low, high = float(y.min()), float(y.max())
    for index, model in enumerate(models):
        colour = f"C{index}"
        p = np.asarray(model.predictions, dtype="float64")
        mae = float(np.mean(np.abs(y - p)))
        axes.scatter(y[rows], p[rows], s=3, alpha=0.15, color=colour)
        actual = np.array([y[cell == c].mean() for c in filled])
        predicted = np.array([p[cell == c].mean() for c in filled])
        axes.plot(actual, predicted, marker="o", markersize=3, color=colour, label=f"{model.label} (MAE {mae:.3g})")
        low, high = min(low, float(p.min())), max(high, float(p.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="perfect")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted (line: mean per bin of the actual)")
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
    model = _one(label, predictions)
    if task.kind == "regression":
        return {
            "plots/residuals.png": residuals_figure(y_true, predictions, label),
            "plots/predicted_vs_actual.png": predicted_actual_figure(
                y_true, model, f"Predicted vs actual (holdout): {label}"
            ),
        }
    if task.kind == "multiclass":
        classes = [str(value) for value in task.classes]
        return {
            "plots/confusion_matrix.png": confusion_figure(y_true, predictions, classes, label),
            "plots/calibration.png": top_class_calibration_figure(y_true, model),
        }
    return {
        "plots/roc.png": roc_figure(y_true, model),
        "plots/precision_recall.png": precision_recall_figure(y_true, model),
        "plots/calibration.png": calibration_figure(y_true, model),
    }


def slice_forest_figure(forest: SliceForest) -> Figure:
    """Gain and interval per slice, one row each: the zero line (no change), the tolerance line (a
    slice whose whole interval lies left of it regressed) and the regressed slices in red."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, forest.height), dpi=100)
    axes = figure.add_subplot()
    positions = np.arange(len(forest.rows))
    for regressed, colour, label in ((False, "tab:blue", "gain, CI"), (True, "tab:red", "regressed")):
        chosen = [i for i, row in enumerate(forest.rows) if row.regressed == regressed]
        if not chosen:
            continue
        gains = np.array([forest.rows[i].gain for i in chosen])
        below = gains - np.array([forest.rows[i].lower for i in chosen])
        above = np.array([forest.rows[i].upper for i in chosen]) - gains
        axes.errorbar(gains, positions[chosen], xerr=[below, above], fmt="o", color=colour, capsize=3, label=label)
    axes.axvline(0.0, color="grey", linestyle="--", label="no change")
    axes.axvline(forest.tolerance, color="tab:red", linestyle=":", label=f"tolerance {forest.tolerance:+.4f}")
    axes.set_yticks(positions, [row.label for row in forest.rows], fontsize=8)
    for tick, row in zip(axes.get_yticklabels(), forest.rows, strict=True):
        if row.regressed:
            tick.set_color("tab:red")
            tick.set_fontweight("bold")
    axes.set_ylim(len(forest.rows) - 0.5, -0.5)  # the first row on top
    axes.set_xlabel(f"{forest.metric} gain (challenger − champion)")
    axes.set_title(forest.title, fontsize=10)
    legend_inches = 0.35  # a strip of its own under the axes, whatever the height
    figure.legend(*axes.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=7, frameon=False)
    figure.tight_layout(rect=(0.0, legend_inches / forest.height, 1.0, 1.0))
    return figure


def comparison_figures(
    task: Task, y_true: np.ndarray, models: Sequence[ModelSeries], forest: SliceForest | None
) -> dict[str, Figure]:
    """The task's plots with every model in ``models`` (champion and challenger, or the challenger
    alone) on the gate's holdout rows, and the slice forest when slices were judged; by artifact path."""
    folder = RUN_COMPARISON
    title = "(the gate's holdout rows)"
    if task.kind == "regression":
        figures = {
            f"{folder}/predicted_vs_actual.png": predicted_actual_figure(
                y_true, models, f"Predicted vs actual {title}"
            ),
            f"{folder}/residuals.png": residual_distribution_figure(y_true, models),
        }
    elif task.kind == "multiclass":
        classes = [str(value) for value in task.classes]
        figures = {
            f"{folder}/calibration.png": top_class_calibration_figure(
                y_true, models, title=f"Top-class calibration {title}"
            ),
            f"{folder}/confusion_matrix.png": confusion_pair_figure(y_true, models, classes),
        }
    else:
        figures = {
            f"{folder}/roc.png": roc_figure(y_true, models, f"ROC curve {title}"),
            f"{folder}/precision_recall.png": precision_recall_figure(y_true, models, f"Precision-recall {title}"),
            f"{folder}/calibration.png": calibration_figure(y_true, models, title=f"Calibration {title}"),
        }
    if forest is not None:
        figures[f"{folder}/slices.png"] = slice_forest_figure(forest)
    return figures


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
