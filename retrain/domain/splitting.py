"""Time-ordered split: train on the past, stop early on the recent past, judge on the newest days.

A random split would leak tomorrow into today's training; the holdout (newest days) is never seen by
training nor by early stopping, so the comparison of champion and challenger on it is honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from retrain.domain.errors import InputError
from retrain.domain.rows import Rows


class SplitError(InputError):
    """The data has too few distinct days for the configured split."""


@dataclass(frozen=True)
class TimeSplit:
    """The three parts of a snapshot. The training days are a frame, or rows left in the snapshot file
    (:class:`~retrain.domain.rows.StoredRows`) when they train through external memory."""

    train: Rows
    validation: pd.DataFrame
    holdout: pd.DataFrame
    train_days: tuple[str, str]
    validation_days: tuple[str, str]
    holdout_days: tuple[str, str]
    #: sensitive columns read as tokens in every part (:mod:`retrain.domain.privacy`), the salt's id, and
    #: the holdout days as stored: a champion trained under other declarations reads them its own way
    tokenised: tuple[str, ...] = ()
    salt_id: str | None = None
    raw_holdout: pd.DataFrame | None = None

    @property
    def stored_holdout(self) -> pd.DataFrame:
        """The holdout rows as the data store holds them (sensitive values raw)."""
        return self.holdout if self.raw_holdout is None else self.raw_holdout


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
    train, validation, holdout = _split_days(
        days_of_rows, holdout_days, validation_days, min_train_days, max_train_days
    )
    return TimeSplit(
        train=frame.loc[days_of_rows.isin(train)],
        validation=frame.loc[days_of_rows.isin(validation)],
        holdout=frame.loc[days_of_rows.isin(holdout)],
        train_days=_span(train),
        validation_days=_span(validation),
        holdout_days=_span(holdout),
    )


@dataclass(frozen=True)
class SplitRanges:
    """The parts of time-sorted rows as row positions: each part's days are one contiguous run."""

    train: range
    validation: range
    holdout: range
    train_days: tuple[str, str]
    validation_days: tuple[str, str]
    holdout_days: tuple[str, str]


def split_ranges(
    times: pd.Series,
    holdout_days: int,
    validation_days: int,
    min_train_days: int = 1,
    max_train_days: int | None = None,
) -> SplitRanges | None:
    """:func:`split_by_time` as row positions, for rows sorted by time (a snapshot): the same days, so
    the same rows in the same order; None when the rows are not sorted by time."""
    days_of_rows = pd.to_datetime(times).dt.normalize().reset_index(drop=True)
    if not days_of_rows.is_monotonic_increasing:
        return None
    train, validation, holdout = _split_days(
        days_of_rows, holdout_days, validation_days, min_train_days, max_train_days
    )

    def rows_of(days: list[pd.Timestamp]) -> range:
        # searched as Timestamps, so aware times compare with aware days
        start = int(days_of_rows.searchsorted(days[0], side="left"))
        stop = int(days_of_rows.searchsorted(days[-1], side="right"))
        return range(start, stop)

    return SplitRanges(
        train=rows_of(train),
        validation=rows_of(validation),
        holdout=rows_of(holdout),
        train_days=_span(train),
        validation_days=_span(validation),
        holdout_days=_span(holdout),
    )


def _split_days(
    days_of_rows: pd.Series,
    holdout_days: int,
    validation_days: int,
    min_train_days: int,
    max_train_days: int | None,
) -> tuple[list[pd.Timestamp], list[pd.Timestamp], list[pd.Timestamp]]:
    """The calendar days of each part: [train | validation | holdout], oldest to newest."""
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
    return train, validation, holdout
