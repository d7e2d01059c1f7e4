"""A drift report as people read it: numbers at the precision that matters, every row named (never an
HTML tag), the CLI's table of drifted rows, and the grid of every drifted feature's distributions for
each task, on a batch as small as 300 rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retrain.domain import synthetic
from retrain.domain.batch_counts import count_batch
from retrain.domain.drift import DistributionPair, FeatureDrift, detect_drift
from retrain.domain.drift_view import (
    FEATURE_HEADERS,
    GRID_CAP,
    PREDICTION_LABEL,
    drift_grid,
    feature_label,
    feature_line,
    fewer_cells,
    grid_layout,
    other_statistics,
    text_table,
)
from retrain.domain.fitting import fit_snapshot
from retrain.domain.profile import PREDICTION, build_profile
from retrain.domain.readable import markdown_text, p_value_text, significant
from retrain.domain.settings import DatasetSettings, SplitSettings, TaskKind, load_settings
from retrain.domain.task import prediction_summary, task_for
from retrain.domain.training import predict
from tests.conftest import REPO_ROOT

SETTINGS = load_settings(REPO_ROOT / "params.yaml")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.41237, "0.412"),
        (0.2, "0.2"),
        (0.09996, "0.1"),  # rounded first, then as many decimals as three digits need
        (0.0345, "0.0345"),
        (0.00123, "0.00123"),
        (4.467e-318, "< 0.001"),
        (-0.01234, "-0.0123"),
        (123.456, "123"),
        (1234.5, "1,230"),
        (0.0, "0"),
        (None, "—"),
        (math.nan, "—"),
        (math.inf, "∞"),
    ],
)
def test_statistics_read_with_three_significant_digits_and_never_in_exponent_notation(value, shown):
    assert significant(value) == shown


@pytest.mark.parametrize(
    ("p", "shown"),
    [(4.467e-318, "< 0.001"), (0.00099, "< 0.001"), (0.001, "0.001"), (0.0344, "0.034"), (1.0, "1.000"), (None, "—")],
)
def test_p_values_read_as_people_compare_them_with_alpha(p, shown):
    assert p_value_text(p) == shown


def test_a_bin_edge_reads_as_itself_however_small_or_large():
    assert significant(0.000123, smallest=0) == "0.000123" and significant(25_213.7, smallest=0) == "25,200"


def test_every_row_has_a_readable_name_that_markdown_shows_as_written():
    assert feature_label(PREDICTION) == PREDICTION_LABEL == "prediction (model output)"
    assert feature_label("credit_score") == "credit_score"
    assert markdown_text("<prediction>") == "&lt;prediction&gt;"  # not a tag the renderer drops
    assert markdown_text("a|b\nc") == "a\\|b c"  # neither a new cell nor a new row


def _row(**changes: object) -> FeatureDrift:
    base: dict[str, object] = {
        "feature": "credit_score",
        "kind": "numeric",
        "statistic": "psi",
        "value": 0.41237,
        "threshold": 0.2,
        "drifted": True,
        "severity": 2.06,
        "rows": 300,
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "details": {"psi": 0.41237, "ks": 0.3112, "ks_p": 4.467e-318},
    }
    return FeatureDrift(**{**base, **changes})  # type: ignore[arg-type]


def test_a_row_reads_with_its_statistic_p_value_and_test():
    line = feature_line(_row())
    assert line.cells() == ("credit_score", "numeric", "PSI", "0.412", "0.2", "< 0.001", "Kolmogorov-Smirnov")
    assert other_statistics(_row()) == "KS distance 0.311, KS p < 0.001"  # PSI is the row's own
    categorical = _row(
        feature="channel",
        kind="categorical",
        statistic="jensen_shannon",
        value=0.1349,
        threshold=0.1,
        details={"js": 0.1349, "chi2_p": 0.0344, "unseen_share": 0.0},
    )
    assert feature_line(categorical).cells()[2:] == ("Jensen-Shannon distance", "0.135", "0.1", "0.034", "chi-square")
    untested = feature_line(_row(statistic="missing_rate", details={"psi": None, "ks": None, "ks_p": None}))
    assert (untested.p_value, untested.test) == ("—", "—")  # no row present: no test ran
    assert feature_line(_row(feature=PREDICTION)).feature == PREDICTION_LABEL


def test_the_cli_table_pads_each_column_to_its_widest_cell():
    lines = text_table(FEATURE_HEADERS, [feature_line(_row()).cells(), feature_line(_row(feature="x")).cells()])
    assert lines[0].split() == ["feature", "kind", "statistic", "value", "threshold", "p-value", "test"]
    assert len({line.index("numeric") for line in lines[1:]}) == 1  # one column, whatever the name's length
    assert lines[1].split() == ["credit_score", "numeric", "PSI", "0.412", "0.2", "<", "0.001", "Kolmogorov-Smirnov"]


@pytest.mark.parametrize(
    ("count", "rows", "columns", "shown", "more"),
    [(0, 0, 1, 0, 0), (1, 1, 1, 1, 0), (3, 1, 3, 3, 0), (4, 1, 4, 4, 0), (5, 2, 4, 5, 0), (60, 15, 4, 60, 0)],
)
def test_the_grid_has_four_columns_and_as_many_rows_as_the_panels_need(count, rows, columns, shown, more):
    layout = grid_layout(count)
    assert (layout.rows, layout.columns, layout.shown, layout.more) == (rows, columns, shown, more)


def test_hundreds_of_drifted_features_draw_the_first_sixty_and_say_how_many_more():
    layout = grid_layout(437)
    assert (layout.shown, layout.more, layout.rows) == (GRID_CAP, 437 - GRID_CAP, GRID_CAP // 4)
    assert grid_layout(10, columns=3, cap=7) == grid_layout(7, columns=3, cap=7).__class__(3, 3, 7, 3)


def test_a_feature_with_many_categories_keeps_its_largest_and_pools_the_rest():
    cells = tuple(f"category-{i:03d}-with-a-long-name" for i in range(30))
    reference = np.full(30, 1 / 30)
    current = np.zeros(30)
    current[[3, 17]] = 0.5  # the batch holds two categories only
    pair = fewer_cells(DistributionPair("shop", cells, tuple(reference), tuple(current)))
    assert len(pair.cells) == 12 and pair.cells[-1] == "19 others"
    assert all(len(cell) <= 14 for cell in pair.cells)
    assert pair.cells.index("category-003-…") < pair.cells.index("category-017-…")  # their own order
    assert math.isclose(sum(pair.reference), 1.0) and math.isclose(sum(pair.current), 1.0)
    short = DistributionPair("x", ("a", "b"), (0.5, 0.5), (0.2, 0.8))
    assert fewer_cells(short) == short


def _dataset(task: TaskKind) -> DatasetSettings:
    return DatasetSettings.model_validate(synthetic.dataset_params(task))


@pytest.fixture(scope="module", params=["binary", "multiclass", "regression"])
def checked(request: pytest.FixtureRequest):
    """A champion of each task, its profile, and a 300-row batch where x0, x1 and the segment moved."""
    task: TaskKind = request.param
    dataset = _dataset(task)
    model = SETTINGS.model.model_copy(
        update={"threads": 1, "xgboost": SETTINGS.model.xgboost.model_copy(update={"num_boost_round": 30})}
    )
    frame = synthetic.synthetic_frame(task, days=6, rows_per_day=250, seed=1)
    fitted = fit_snapshot(frame, dataset, SplitSettings(holdout_days=2, validation_days=1), model)
    profile = build_profile(
        frame,
        dataset.features.numeric,
        dataset.features.categorical,
        holdout_predictions=prediction_summary(fitted.holdout_predictions),
        metrics=fitted.holdout_metrics,
        quantiles=SETTINGS.drift.quantiles,
    )
    batch = synthetic.synthetic_frame(task, days=1, rows_per_day=300, seed=7, shift=2.0)
    batch["segment"] = np.where(np.arange(300) % 3 == 0, "west", "north")  # an unseen category, a new mix
    predictions = predict(fitted.model.booster, batch, fitted.model.spec, task_for(dataset))
    counts = count_batch(profile, batch)
    report = detect_drift(profile, counts, SETTINGS.drift, predictions=predictions, task=task)
    return task, profile, counts, predictions, report


def test_the_grid_draws_every_drifted_feature_of_each_task_on_300_rows(checked):
    from retrain.adapters.plots import drift_grid_figure

    task, profile, counts, predictions, report = checked
    drifted = {f.feature for f in report.features if f.drifted}
    assert {"x0", "x1", "segment"} <= drifted, task  # numeric and categorical alike
    grid = drift_grid(profile, counts, predictions, report, SETTINGS.drift, f"{task} check")
    titles = [panel.title for panel in grid.panels]
    expected = drifted | ({PREDICTION_LABEL} if report.prediction is not None and report.prediction.drifted else set())
    assert set(titles) == expected and grid.drifted == len(expected) and grid.layout.more == 0
    assert all(panel.drifted for panel in grid.panels) and "<" not in "".join(titles)
    severities = {f.feature: f.severity for f in report.features}
    if report.prediction is not None:
        severities[PREDICTION_LABEL] = report.prediction.severity
    assert [severities[title] for title in titles] == sorted(severities[title] for title in titles)[::-1]
    segment = next(panel for panel in grid.panels if panel.title == "segment")
    assert "<unseen>" in segment.pair.cells and segment.subtitle.startswith("Jensen-Shannon distance ")
    figure = drift_grid_figure(grid)
    drawn = [axes for axes in figure.axes if axes.patches]
    assert len(drawn) == len(grid.panels)
    assert sorted(axes.get_title().split("\n")[0] for axes in drawn) == sorted(titles)


def test_with_nothing_drifted_the_grid_shows_the_rows_closest_to_drifting(checked):
    _task, profile, _counts, _predictions, _report = checked
    same = synthetic.synthetic_frame("regression", days=1, rows_per_day=300, seed=3)
    counts = count_batch(profile, same)
    report = detect_drift(profile, counts, SETTINGS.drift)
    assert not any(f.drifted for f in report.features)
    grid = drift_grid(profile, counts, None, report, SETTINGS.drift, "stable")
    assert grid.drifted == 0 and len(grid.panels) == 4 and grid.note.startswith("nothing drifted")


def test_a_profile_of_hundreds_of_features_draws_the_sixty_most_severe():
    from retrain.adapters.plots import drift_grid_figure

    rng = np.random.default_rng(0)
    names = [f"f{i:03d}" for i in range(130)]
    reference = pd.DataFrame(rng.normal(0, 1, (2000, 130)), columns=names)
    profile = build_profile(reference, names, [], holdout_predictions=None, metrics={}, quantiles=100)
    shifts = np.linspace(0.5, 2.0, 130)  # each feature moved a little more than the one before
    batch = pd.DataFrame(rng.normal(0, 1, (300, 130)) + shifts, columns=names)
    counts = count_batch(profile, batch)
    report = detect_drift(profile, counts, SETTINGS.drift)
    grid = drift_grid(profile, counts, None, report, SETTINGS.drift, "wide")
    drifted = sum(f.drifted for f in report.features)
    assert drifted > GRID_CAP
    assert len(grid.panels) == GRID_CAP and grid.layout.more == drifted - GRID_CAP
    assert f"{drifted - GRID_CAP} more not drawn" in grid.note
    by_severity = sorted(report.features, key=lambda f: f.severity, reverse=True)
    assert [panel.title for panel in grid.panels] == [f.feature for f in by_severity[:GRID_CAP]]
    assert min(int(panel.title[1:]) for panel in grid.panels) > 30  # the ones that moved most
    assert len([axes for axes in drift_grid_figure(grid).axes if axes.patches]) == GRID_CAP


def test_the_report_artifact_names_every_row_formats_its_numbers_and_links_the_grid(checked):
    from retrain.application.monitoring import RecordedDrift, Window, drift_markdown, drift_outcome
    from retrain.domain.lifecycle import ModelVersionInfo

    task, profile, counts, predictions, report = checked
    window = Window(("day-7.parquet",), (300,), counts, predictions, None, None)
    grid = drift_grid(profile, counts, predictions, report, SETTINGS.drift, "check")
    recorded = RecordedDrift(
        "r1", grid, "http://mlflow/#/experiments/2/runs/r1/artifacts/plots/x.png", "file:///a/x.png"
    )
    champion = ModelVersionInfo(version="3", run_id="r", metrics={}, data_md5=None, contract=None)
    outcome = drift_outcome(report, None)  # not asked to act
    assert outcome.decision == "report_only" and outcome.position is None and not outcome.acted
    markdown = drift_markdown(report, outcome, champion, window, recorded)
    assert markdown.startswith("# Drift check: **report only**")
    assert "report only: nothing decided or started" in markdown and "run with --act to act" in markdown
    assert "(http://mlflow/#/experiments/2/runs/r1/artifacts/plots/x.png)" in markdown and "file:///a/x.png" in markdown
    table = markdown[markdown.index("| feature |") :].splitlines()
    rows = [line for line in table[2:] if line.startswith("| ")]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert len(rows) == len(report.features) + 1 and names[-1] == PREDICTION_LABEL, task
    assert all(names) and not any("<" in name or ">" in name for name in names)
    assert "e-" not in "\n".join(rows) and "e+" not in "\n".join(rows)  # 3 significant digits, "< 0.001"
    assert all(len(row.split(" | ")) == 10 for row in rows)  # no cell split by a stray "|"
