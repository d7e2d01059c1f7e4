"""The comparison plots: who is drawn under which name, the slice forest's rows, and the figures the
plots adapter draws for every task (legends read back from the returned matplotlib figures)."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.adapters import plots
from retrain.domain import synthetic
from retrain.domain.comparison import (
    FRAME_INCHES,
    ROW_INCHES,
    compared_models,
    model_label,
    plotted_rows,
    slice_forest,
)
from retrain.domain.settings import DatasetSettings, TaskKind
from retrain.domain.slices import SliceResult
from retrain.domain.task import task_for


def _slice(name: str, gain: float, regressed: bool = False, rows: int = 600) -> SliceResult:
    return SliceResult(name, rows, 0.8, 0.8 + gain, gain, gain - 0.02, gain + 0.02, 0.5, regressed, True)


TINY = SliceResult("region=tiny", 12, None, None, None, None, None, None, False, False, "under 500 rows or one class")


def test_models_are_named_by_role_and_version_champion_first():
    champion, challenger = np.array([0.2]), np.array([0.3])
    pair = compared_models("4", challenger, "3", champion)
    assert [series.label for series in pair] == ["champion v3", "challenger v4"]
    assert pair[0].predictions is champion and pair[1].predictions is challenger
    assert model_label("challenger", "1") == "challenger v1"


def test_without_a_champion_only_the_challenger_is_drawn():
    assert [series.label for series in compared_models("1", np.array([0.3]), None, None)] == ["challenger v1"]


def test_the_forest_puts_regressions_first_then_the_lowest_gains_and_counts_the_unjudged():
    results = [
        _slice("region=north", 0.02),
        _slice("region=east", -0.11, regressed=True),
        TINY,
        _slice("region=south", -0.005),
    ]
    forest = slice_forest(results, "roc_auc", max_drop=0.01)
    assert forest is not None
    assert [row.name for row in forest.rows] == ["region=east", "region=south", "region=north"]
    assert [row.regressed for row in forest.rows] == [True, False, False]
    assert forest.rows[0].label == "region=east (600 rows)"
    assert (forest.rows[0].gain, forest.rows[0].lower, forest.rows[0].upper) == pytest.approx((-0.11, -0.13, -0.09))
    assert forest.tolerance == -0.01 and forest.unjudged == 1 and forest.hidden == 0
    assert "1 too small to judge" in forest.title


def test_no_judged_slice_means_no_forest():
    assert slice_forest([], "roc_auc", 0.01) is None
    assert slice_forest([TINY], "roc_auc", 0.01) is None


def test_many_slices_keep_every_regression_and_a_readable_height():
    results = [_slice(f"purpose=p{i}", 0.001 * i) for i in range(200)]
    results += [_slice(f"region=r{i}", -0.2 - 0.001 * i, regressed=True) for i in range(45)]
    forest = slice_forest(results, "roc_auc", 0.01, limit=40)
    assert forest is not None
    assert len(forest.rows) == 45 and all(row.regressed for row in forest.rows)  # never a regression left out
    assert forest.hidden == 200 and "200 higher-gain slices not drawn" in forest.title
    calm = slice_forest(results[:100], "roc_auc", 0.01, limit=40)
    assert calm is not None and len(calm.rows) == 40 and calm.rows[0].name == "purpose=p0"
    assert calm.height == pytest.approx(FRAME_INCHES + 40 * ROW_INCHES)  # a fixed step per row: no overlap
    few = slice_forest(results[:1], "roc_auc", 0.01)
    assert few is not None and few.height == pytest.approx(FRAME_INCHES + 3 * ROW_INCHES)


def test_a_scatter_draws_the_same_rows_for_every_model():
    assert plotted_rows(5, 10).tolist() == [0, 1, 2, 3, 4]
    sampled = plotted_rows(10_000, 100)
    assert len(sampled) == 100 and len(set(sampled.tolist())) == 100 and (np.diff(sampled) > 0).all()
    assert (plotted_rows(10_000, 100) == sampled).all()


# --- the figures (adapter), read back from matplotlib ---------------------------------------------


def _legend(figure) -> list[str]:
    return [text.get_text() for axes in figure.axes if axes.get_legend() for text in axes.get_legend().get_texts()]


def _predictions(task: TaskKind, rows: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    if task == "binary":
        y = rng.integers(0, 2, rows)
        return y, np.clip(0.3 * y + 0.7 * rng.random(rows), 0, 1), np.clip(0.5 * y + 0.5 * rng.random(rows), 0, 1)
    if task == "multiclass":
        y = rng.integers(0, 3, rows)
        return y, rng.dirichlet([1, 1, 1], rows), rng.dirichlet([1, 1, 1], rows)
    target = rng.normal(10, 3, rows)
    return target, target + rng.normal(0, 1, rows), target + rng.normal(0.5, 2, rows)


EXPECTED: dict[TaskKind, set[str]] = {
    "binary": {"comparison/roc.png", "comparison/precision_recall.png", "comparison/calibration.png"},
    "multiclass": {"comparison/calibration.png", "comparison/confusion_matrix.png"},
    "regression": {"comparison/predicted_vs_actual.png", "comparison/residuals.png"},
}


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_every_plot_of_the_task_shows_champion_and_challenger(kind: TaskKind):
    task = task_for(DatasetSettings.model_validate(synthetic.dataset_params(kind)))
    y, champion, challenger = _predictions(kind)
    forest = slice_forest([_slice("segment=north", 0.01), _slice("segment=east", -0.1, True)], "m", 0.01)
    figures = plots.comparison_figures(task, y, compared_models("2", challenger, "1", champion), forest)
    assert set(figures) == EXPECTED[kind] | {"comparison/slices.png"}
    for path, figure in figures.items():
        if path == "comparison/confusion_matrix.png":  # side by side: one panel per model, titled by it
            assert [axes.get_title() for axes in figure.axes if axes.get_title()] == ["champion v1", "challenger v2"]
        elif path != "comparison/slices.png":
            models = [label for label in _legend(figure) if label.split(" (")[0] in {"champion v1", "challenger v2"}]
            assert [label.split(" (")[0] for label in models] == ["champion v1", "challenger v2"], path
            assert not any("loans" in label for label in _legend(figure))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_the_first_model_is_drawn_alone_and_without_slices_no_forest(kind: TaskKind):
    task = task_for(DatasetSettings.model_validate(synthetic.dataset_params(kind)))
    y, _champion, challenger = _predictions(kind)
    figures = plots.comparison_figures(task, y, compared_models("1", challenger, None, None), None)
    assert set(figures) == EXPECTED[kind]
    for figure in figures.values():
        labels = _legend(figure) + [axes.get_title() for axes in figure.axes]
        assert any(label.startswith("challenger v1") for label in labels)
        assert not any("champion" in label for label in labels)


def test_the_forest_draws_each_slice_with_the_zero_and_tolerance_lines_and_regressions_in_red():
    forest = slice_forest([_slice("region=north", 0.02), _slice("region=east", -0.11, True), TINY], "roc_auc", 0.01)
    assert forest is not None
    figure = plots.slice_forest_figure(forest)
    (axes,) = figure.axes
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["region=east (600 rows)", "region=north (600 rows)"]
    red = [tick.get_text() for tick in axes.get_yticklabels() if tick.get_color() == "tab:red"]
    assert red == ["region=east (600 rows)"]
    lines = {
        str(line.get_label()): np.asarray(line.get_xdata()).tolist()
        for line in axes.get_lines()
        if not str(line.get_label()).startswith("_")
    }
    assert lines == {"no change": [0.0, 0.0], "tolerance -0.0100": [-0.01, -0.01]}  # vertical lines
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == ["no change", "tolerance -0.0100", "gain, CI", "regressed"]
    assert figure.get_figheight() == pytest.approx(forest.height)
