"""What the champion-vs-challenger plots show, decided without matplotlib: labels and the slice forest.

The plots adapter draws; what it draws (which models under which names, which slices in which order,
where the tolerance line is, how tall the figure must be to stay readable) is decided here so that it
is unit-tested without rendering anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrain.domain.lifecycle import CHALLENGER, CHAMPION
from retrain.domain.slices import SliceResult


def model_label(role: str, version: str) -> str:
    """How a plot names a model: its role in this comparison and its registered version ("champion v3")."""
    return f"{role} v{version}"


@dataclass(frozen=True, eq=False)
class ModelSeries:
    """One model's predictions on the gate's holdout rows, under the name the legend shows."""

    label: str
    predictions: np.ndarray = field(repr=False)


def compared_models(
    challenger_version: str,
    challenger_predictions: np.ndarray,
    champion_version: str | None,
    champion_predictions: np.ndarray | None,
) -> tuple[ModelSeries, ...]:
    """The series a comparison plot draws, champion first (it is the reference the challenger is read
    against); the challenger alone when there is no champion yet."""
    challenger = ModelSeries(model_label(CHALLENGER, challenger_version), challenger_predictions)
    if champion_version is None or champion_predictions is None:
        return (challenger,)
    return (ModelSeries(model_label(CHAMPION, champion_version), champion_predictions), challenger)


@dataclass(frozen=True)
class ForestRow:
    """One judged slice: the gain of the challenger over the champion on its rows, with its interval."""

    name: str
    rows: int
    gain: float
    lower: float
    upper: float
    regressed: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.rows} rows)"


#: Inches per slice and around the rows (title, axis, legend): a row stays readable at any count.
ROW_INCHES = 0.32
FRAME_INCHES = 1.6


@dataclass(frozen=True)
class SliceForest:
    """A forest plot of the slice check: top to bottom, regressions first, then the lowest gains."""

    metric: str
    rows: tuple[ForestRow, ...]
    tolerance: float  # −max_drop: a slice whose whole interval lies below it regressed
    hidden: int = 0  # judged slices not drawn (only the ``limit`` first are)
    unjudged: int = 0  # slices too small (or of one class) to judge: no interval to draw

    @property
    def height(self) -> float:
        """Figure height in inches: a fixed frame plus a fixed step per slice, so labels never overlap."""
        return FRAME_INCHES + ROW_INCHES * max(len(self.rows), 3)

    @property
    def title(self) -> str:
        left_out = []
        if self.hidden:
            left_out.append(f"{self.hidden} higher-gain slices not drawn")
        if self.unjudged:
            left_out.append(f"{self.unjudged} too small to judge")
        note = f"\n({'; '.join(left_out)})" if left_out else ""
        return f"Gain in {self.metric} per slice, challenger − champion{note}"


def slice_forest(results: Sequence[SliceResult], metric: str, max_drop: float, limit: int = 40) -> SliceForest | None:
    """The forest of the judged slices, or None when no slice was judged (nothing to draw).

    Ordered as the report's table: regressions first, then by gain, lowest first; past ``limit`` rows
    the highest gains are left out (they are the least interesting), never a regression.
    """
    judged = [
        ForestRow(r.name, r.rows, r.gain, r.lower, r.upper, bool(r.regressed))
        for r in results
        if r.judged and r.gain is not None and r.lower is not None and r.upper is not None
    ]
    if not judged:
        return None
    ranked = sorted(judged, key=lambda row: (not row.regressed, row.gain))
    shown = ranked[: max(limit, sum(row.regressed for row in ranked))]
    return SliceForest(
        metric,
        tuple(shown),
        tolerance=-max_drop,
        hidden=len(ranked) - len(shown),
        unjudged=len(results) - len(judged),
    )


def plotted_rows(rows: int, limit: int, seed: int = 0) -> np.ndarray:
    """Indices of the rows a scatter draws: all up to ``limit``, else an even random sample (sorted),
    the same for every model, so the points of two models are the same rows and drawing stays fast."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
