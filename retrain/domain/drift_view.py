"""A drift report as people read it: every row named, each number at the precision that matters, and
the grid of per-feature distributions laid out.

The report itself (:mod:`retrain.domain.drift`) keeps raw values, and ``--json`` and ``drift.json``
print them as they are: a p-value of 4.467e-318 is a fact for a program, but a person reads
"< 0.001", and a PSI of 0.41237 reads "0.412". The prediction-drift row is profiled as
``<prediction>`` (a name no column can take), which Markdown renders as an unknown HTML tag, that is
blank: people read it as "prediction (model output)". Pure functions (numbers through
:mod:`retrain.domain.readable`), so the CLI, the Prefect artifact and the MLflow figure all say the
same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from retrain.domain.batch_counts import BatchCounts
from retrain.domain.drift import DistributionPair, DriftReport, FeatureDrift, distribution_pair
from retrain.domain.profile import PREDICTION, CategoricalProfile, NumericProfile, ReferenceProfile
from retrain.domain.readable import p_value_text, significant
from retrain.domain.settings import DriftSettings
from retrain.domain.task import prediction_summary

PREDICTION_LABEL: Final = "prediction (model output)"
#: The grid draws at most this many panels (the most severe first), in this many columns.
GRID_CAP: Final = 60
GRID_COLUMNS: Final = 4
#: With nothing drifted, the grid shows the features closest to their threshold: what to watch.
GRID_CLOSEST: Final = 4
#: A panel shows at most this many cells; a categorical feature with hundreds of categories keeps its
#: largest ones and pools the rest, so its bars stay readable.
PANEL_CELLS: Final = 12
CELL_CHARACTERS: Final = 14

#: The deciding statistics, in words.
STATISTICS: Final[Mapping[str, str]] = {
    "psi": "PSI",
    "ks": "KS distance",
    "jensen_shannon": "Jensen-Shannon distance",
    "missing_rate": "missing-share change",
}
#: Each feature kind's significance test: the detail holding its p-value, and its name.
TESTS: Final[Mapping[str, tuple[str, str]]] = {
    "numeric": ("ks_p", "Kolmogorov-Smirnov"),
    "categorical": ("chi2_p", "chi-square"),
}
#: The other statistics a row carries (``FeatureDrift.details``), in words; p-values end in ``_p``.
DETAILS: Final[Mapping[str, str]] = {
    "psi": "PSI",
    "ks": "KS distance",
    "ks_p": "KS p",
    "js": "Jensen-Shannon",
    "chi2_p": "chi-square p",
    "unseen_share": "unseen share",
}
_SAME_AS_DETAIL: Final[Mapping[str, str]] = {"psi": "psi", "ks": "ks", "jensen_shannon": "js"}


class FeatureVerdict(Protocol):
    """One row of a drift report: the domain's ``FeatureDrift`` and the flow result's copy of it alike."""

    @property
    def feature(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def statistic(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def drifted(self) -> bool: ...
    @property
    def details(self) -> Mapping[str, float | None]: ...


def feature_label(name: str) -> str:
    """What a row is called where people read it: the feature's name, or the prediction's in words."""
    return PREDICTION_LABEL if name == PREDICTION else name


def statistic_label(statistic: str) -> str:
    return STATISTICS.get(statistic, statistic)


def p_value_of(item: FeatureVerdict) -> tuple[float | None, str]:
    """The p-value of the row's significance test (KS for numeric, chi-square for categorical) and the
    test's name. PSI has no test of its own: a PSI verdict shows the KS test of the same column."""
    key, test = TESTS.get(item.kind, ("", ""))
    return item.details.get(key), test


def other_statistics(item: FeatureVerdict) -> str:
    """The row's other statistics in words (p-values as :func:`p_value_text`), the deciding one left out."""
    own = _SAME_AS_DETAIL.get(item.statistic)
    shown = []
    for key, value in item.details.items():
        if value is None or key == own:
            continue
        text = p_value_text(value) if key.endswith("_p") else significant(value)
        shown.append(f"{DETAILS.get(key, key)} {text}")
    return ", ".join(shown)


@dataclass(frozen=True)
class FeatureLine:
    """One drift row as people read it: every field text."""

    feature: str
    kind: str
    statistic: str
    value: str
    threshold: str
    p_value: str
    test: str
    drifted: bool

    def cells(self) -> tuple[str, ...]:
        return (self.feature, self.kind, self.statistic, self.value, self.threshold, self.p_value, self.test)


FEATURE_HEADERS: Final = ("feature", "kind", "statistic", "value", "threshold", "p-value", "test")


def feature_line(item: FeatureVerdict) -> FeatureLine:
    p, test = p_value_of(item)
    return FeatureLine(
        feature=feature_label(item.feature),
        kind=item.kind,
        statistic=statistic_label(item.statistic),
        value=significant(item.value),
        threshold=significant(item.threshold),
        p_value=p_value_text(p),
        test=test if p is not None else "—",
        drifted=item.drifted,
    )


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell, for a terminal (left-aligned: names and numbers alike read
    from their first character)."""
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), *(line(row) for row in rows)]


@dataclass(frozen=True)
class GridLayout:
    """Where the grid's panels go: ``shown`` panels in ``rows`` x ``columns``; ``more`` were left out."""

    rows: int
    columns: int
    shown: int
    more: int


def grid_layout(count: int, columns: int = GRID_COLUMNS, cap: int = GRID_CAP) -> GridLayout:
    """``count`` panels, at most ``cap`` of them, ``columns`` to a row (fewer when there are fewer
    panels) and as many rows as they need."""
    shown = max(min(count, cap), 0)
    across = max(min(columns, shown), 1)
    return GridLayout(rows=math.ceil(shown / across), columns=across, shown=shown, more=max(count - shown, 0))


@dataclass(frozen=True)
class GridPanel:
    """One feature's reference and current distributions, with its name and verdict as titles."""

    title: str
    subtitle: str
    drifted: bool
    pair: DistributionPair


@dataclass(frozen=True)
class DriftGrid:
    """The per-feature drift figure: every drifted feature (and the prediction, when it drifted), the
    most severe first, up to the layout's cap; with nothing drifted, the few closest to drifting."""

    title: str
    note: str
    layout: GridLayout
    panels: tuple[GridPanel, ...]
    drifted: int  # rows that drifted (features and prediction), drawn or not


def fewer_cells(
    pair: DistributionPair, limit: int = PANEL_CELLS, characters: int = CELL_CHARACTERS
) -> DistributionPair:
    """At most ``limit`` cells: the largest (by the larger of their two shares) in their own order, the
    rest pooled into one "k others" cell; long cell names shortened to ``characters``."""
    cells, reference, current = list(pair.cells), list(pair.reference), list(pair.current)
    if len(cells) > limit:
        weight = np.maximum(np.asarray(reference), np.asarray(current))
        kept = sorted(int(i) for i in np.argsort(-weight, kind="stable")[: limit - 1])
        pooled = [i for i in range(len(cells)) if i not in set(kept)]
        cells = [cells[i] for i in kept] + [f"{len(pooled)} others"]
        reference = [reference[i] for i in kept] + [float(sum(reference[i] for i in pooled))]
        current = [current[i] for i in kept] + [float(sum(current[i] for i in pooled))]
    short = [cell if len(cell) <= characters else cell[: characters - 1] + "…" for cell in cells]
    return DistributionPair(pair.feature, tuple(short), tuple(reference), tuple(current))


def drift_grid(
    profile: ReferenceProfile,
    counts: BatchCounts,
    predictions: np.ndarray | None,
    report: DriftReport,
    settings: DriftSettings,
    title: str,
    *,
    cap: int = GRID_CAP,
    columns: int = GRID_COLUMNS,
) -> DriftGrid:
    """The grid of a drift check: ``counts`` are the window's, ``predictions`` the champion's on it
    (the task's shape; their panel is drawn on the same 1-D summary the profile holds)."""
    by_name: dict[str, NumericProfile | CategoricalProfile] = {p.name: p for p in profile.numeric}
    by_name.update({p.name: p for p in profile.categorical})
    rows: list[FeatureDrift] = [f for f in report.features if f.feature in by_name]
    prediction = report.prediction
    if prediction is not None and profile.prediction is not None and predictions is not None:
        rows.append(prediction)
    rows.sort(key=lambda f: (f.drifted, f.severity), reverse=True)
    drifted = [f for f in rows if f.drifted]
    chosen = drifted if drifted else rows[:GRID_CLOSEST]
    layout = grid_layout(len(chosen), columns, cap)
    panels = []
    for item in chosen[: layout.shown]:
        if item is prediction and profile.prediction is not None and predictions is not None:
            pair = distribution_pair(profile.prediction, prediction_summary(predictions), settings)
        else:
            pair = distribution_pair(by_name[item.feature], counts.columns[item.feature], settings)
        line = feature_line(item)
        subtitle = f"{line.statistic} {line.value} (drifts at {line.threshold})"
        panels.append(GridPanel(line.feature, subtitle, item.drifted, fewer_cells(pair)))
    return DriftGrid(title, grid_note(len(drifted), layout), layout, tuple(panels), len(drifted))


def grid_note(drifted: int, layout: GridLayout) -> str:
    """What the grid shows, in words: all of the drifted rows, the first of them, or (none drifted) the closest."""
    if drifted == 0:
        return f"nothing drifted: the {layout.shown} closest to their threshold"
    if layout.more:
        return (
            f"the {layout.shown} most severe of {drifted} drifted, {layout.more} more not drawn "
            "(every one is in the drift report's table)"
        )
    return f"every drifted row ({drifted}), the most severe first"
