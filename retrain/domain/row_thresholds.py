"""Do the thresholds counted in rows fit the project's batches?

``drift.min_rows`` and ``gate.slices.min_rows`` are counts of rows. Values that suit 20,000-row daily
batches silently switch features off for a 336-row weekly batch: a drift check on fewer rows than
``drift.min_rows`` is reported but never acted on, and a slice smaller than ``gate.slices.min_rows``
is reported but never judged. Nothing fails, so nobody notices. This module compares the
thresholds with the sizes of the project's batches and holdout and words a warning that names the
key, the size seen and a value that would work. Pure: the caller counts the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

import pandas as pd

#: The suggested ``drift.min_rows`` is this share of a typical batch, so a batch somewhat smaller
#: than usual is still judged.
BATCH_SHARE = 0.5
#: The suggested ``gate.slices.min_rows`` lets a slice of this share of the holdout be judged.
HOLDOUT_SHARE = 0.1


@dataclass(frozen=True)
class RowThresholdWarning:
    key: str
    message: str
    suggested: int


def nice_floor(value: float) -> int:
    """``value`` rounded down to two significant digits (at least 1): 168 -> 160, 4321 -> 4300."""
    if value < 1:
        return 1
    step = 10 ** max(math.floor(math.log10(value)) - 1, 0)
    return max(int(value // step * step), 1)


def holdout_rows(times: pd.Series, holdout_days: int) -> int:
    """Rows on the newest ``holdout_days`` calendar days that hold data: the holdout the split makes."""
    days = pd.to_datetime(times).dt.normalize()
    newest = sorted(days.dropna().unique())[-holdout_days:]
    return int(days.isin(newest).sum())


def row_threshold_warnings(
    batch_rows: Sequence[int],
    window_batches: int,
    drift_min_rows: int,
    slice_min_rows: int,
    holdout: int | None,
) -> list[RowThresholdWarning]:
    """Warnings for row thresholds the data can never (or only in a wide window) reach.

    ``batch_rows`` are the row counts of recent batches (the median is the typical batch);
    ``window_batches`` how many newest batches a drift check reads when no file is named;
    ``holdout`` the estimated holdout size, or None when unknown.
    """
    warnings: list[RowThresholdWarning] = []
    if batch_rows:
        typical = int(median(batch_rows))
        window = typical * window_batches
        suggested = nice_floor(typical * BATCH_SHARE)
        if drift_min_rows > window:
            warnings.append(
                RowThresholdWarning(
                    "drift.min_rows",
                    f"drift.min_rows is {drift_min_rows} but a typical batch has {typical} rows and a drift "
                    f"window of drift.window_batches={window_batches} about {window}: drift is reported but can "
                    f"never trigger retraining; set drift.min_rows to about {suggested}",
                    suggested,
                )
            )
        elif drift_min_rows > typical:
            warnings.append(
                RowThresholdWarning(
                    "drift.min_rows",
                    f"drift.min_rows is {drift_min_rows} but a typical batch has {typical} rows: a drift check "
                    f"of a single batch (`retrain drift FILE`, a new-batch trigger) is never acted on; set "
                    f"drift.min_rows to about {suggested}",
                    suggested,
                )
            )
    if holdout is not None and slice_min_rows > holdout:
        suggested = nice_floor(holdout * HOLDOUT_SHARE)
        warnings.append(
            RowThresholdWarning(
                "gate.slices.min_rows",
                f"gate.slices.min_rows is {slice_min_rows} but the holdout has about {holdout} rows: no slice is "
                f"ever judged by the gate; set gate.slices.min_rows to about {suggested}",
                suggested,
            )
        )
    return warnings
