"""Time-ordered split: train on the past, stop early on the recent past, judge on the newest days.

A random split would leak tomorrow into today's training; the holdout (newest days) is never seen by
training nor by early stopping, so the comparison of champion and challenger on it is honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from retrain.domain.errors import InputError


class SplitError(InputError):
    """The data has too few distinct days for the configured split."""


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    train_days: tuple[str, str]
    validation_days: tuple[str, str]
    holdout_days: tuple[str, str]


def _span(days: list[pd.Timestamp]) -> tuple[str, str]:
    return (days[0].date().isoformat(), days[-1].date().isoformat())


def split_by_time(
    frame: pd.DataFrame,
    time_column: str,
    holdout_days: int,
    validation_days: int,
    min_train_days: int = 1,
    max_train_days: int | None = None,
) -> TimeSplit:
    """Split on calendar days of ``time_column``: [train | validation | holdout], oldest to newest;
    with ``max_train_days``, the older days before the training days are left out."""
    days_of_rows = pd.to_datetime(frame[time_column]).dt.normalize()
    days = sorted(days_of_rows.unique())
    needed = holdout_days + validation_days + min_train_days
    if len(days) < needed:
        raise SplitError(
            f"the data covers {len(days)} day(s) but the split needs at least {needed} "
            f"({min_train_days} train + {validation_days} validation + {holdout_days} holdout); "
            "add batches or lower split.* in params.yaml"
        )
    holdout = days[-holdout_days:]
    validation = days[-(holdout_days + validation_days) : -holdout_days]
    train = days[: -(holdout_days + validation_days)]
    if max_train_days is not None:
        train = train[-max_train_days:]
    return TimeSplit(
        train=frame.loc[days_of_rows.isin(train)],
        validation=frame.loc[days_of_rows.isin(validation)],
        holdout=frame.loc[days_of_rows.isin(holdout)],
        train_days=_span(train),
        validation_days=_span(validation),
        holdout_days=_span(holdout),
    )
