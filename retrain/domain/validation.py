"""What a contract check found, as plain data that flows, reports and the CLI can share.

A contract has two tiers. **Batch** expectations (schema, types, row count, target, unique ids)
judge the batch as a whole: one failure refuses it. **Row** expectations (ranges, categories,
not-null) judge rows: failing rows go to quarantine with the reasons, the others are accepted, and
the batch is refused only when the quarantined share passes the policy's limit. Nothing is lost:
every input row ends up, unchanged, in exactly one of accepted or quarantined.

The great-expectations adapter produces the raw findings; nothing here knows about great-expectations.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePath
from typing import Any, Literal

import pandas as pd

from retrain.domain.sensitive import WITHHELD

Tier = Literal["batch", "row"]
REASONS_COLUMN = "_quarantine_reasons"


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation: which one, on which column, and how badly."""

    expectation: str
    column: str | None
    unexpected_count: int | None = None
    details: str = ""
    tier: Tier = "batch"

    @property
    def label(self) -> str:
        return f"{self.expectation}({self.column})" if self.column else self.expectation


def withhold_values(failures: Iterable[ExpectationFailure], sensitive: Iterable[str]) -> tuple[ExpectationFailure, ...]:
    """The failures with nothing but counts on sensitive columns: no failing values, no observed value
    (what a report, an artifact, a log line or a notification may carry)."""
    hidden = set(sensitive)
    return tuple(
        replace(failure, details=_withheld(failure)) if failure.column in hidden and failure.details else failure
        for failure in failures
    )


def _withheld(failure: ExpectationFailure) -> str:
    if failure.details == "the column is missing from the batch":
        return failure.details
    count = "" if failure.unexpected_count is None else f"{failure.unexpected_count} unexpected values; "
    return f"{count}{WITHHELD}"


@dataclass(frozen=True)
class ValidationReport:
    """The result of running one contract on one batch."""

    batch: str
    contract_name: str
    contract_version: int
    rows: int
    expectations_evaluated: int
    failures: tuple[ExpectationFailure, ...] = field(default_factory=tuple)
    quarantined: int = 0
    max_quarantine_share: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def accepted(self) -> int:
        return self.rows - self.quarantined

    @property
    def quarantine_share(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0

    @property
    def batch_failures(self) -> tuple[ExpectationFailure, ...]:
        return tuple(f for f in self.failures if f.tier == "batch")

    @property
    def refusal_reasons(self) -> tuple[str, ...]:
        reasons = [f"{f.label} failed" for f in self.batch_failures]
        if self.quarantine_share > self.max_quarantine_share:
            reasons.append(
                f"{self.quarantined} of {self.rows} rows ({self.quarantine_share:.1%}) failed row expectations, "
                f"more than the allowed {self.max_quarantine_share:.1%}"
            )
        return tuple(reasons)

    @property
    def passed(self) -> bool:
        return not self.refusal_reasons

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            rows_in=self.rows,
            accepted=self.accepted,
            quarantined=self.quarantined,
            quarantine_share=self.quarantine_share,
            passed=self.passed,
            refusal_reasons=list(self.refusal_reasons),
            failures=[{**asdict(f), "count": f.unexpected_count} for f in self.failures],
        )
        return data

    def summary(self) -> str:
        """One line per failure, naming the expectation and the column: the flow's error message."""
        contract = f"contract {self.contract_name} v{self.contract_version}"
        if self.passed:
            counts = f"{self.rows} rows in, {self.accepted} accepted, {self.quarantined} quarantined"
            head = f"{self.batch}: accepted by {contract}: {counts}"
        else:  # a refused batch stores no row, whatever the row checks alone would have kept
            head = f"{self.batch}: REFUSED by {contract}: {self.rows} rows in, none stored"
        if not self.failures:
            return head
        lines = [head + (f" ({'; '.join(self.refusal_reasons)})" if not self.passed else "") + ":"]
        for failure in self.failures:
            column = failure.column or "(table)"
            count = "" if failure.unexpected_count is None else f", {failure.unexpected_count} rows"
            details = f": {failure.details}" if failure.details else ""
            lines.append(f"  - [{failure.tier}] {failure.expectation} on column '{column}'{count}{details}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        status = "ACCEPTED" if self.passed else "REFUSED"
        lines = [
            f"### Contract `{self.contract_name}` v{self.contract_version} on `{self.batch}`: **{status}**",
            "",
            f"{self.rows} rows in, {self.accepted} accepted, {self.quarantined} quarantined "
            f"({self.quarantine_share:.2%}, policy allows {self.max_quarantine_share:.2%}); "
            f"{self.expectations_evaluated} expectations, {len(self.failures)} failed.",
        ]
        lines += [f"- refused: {reason}" for reason in self.refusal_reasons]
        lines += [f"- warning: {warning}" for warning in self.warnings]
        if self.failures:
            lines += [
                "",
                "| tier | expectation | column | unexpected rows | top failing values |",
                "|---|---|---|---|---|",
            ]
            for f in self.failures:
                count = "" if f.unexpected_count is None else str(f.unexpected_count)
                details = f.details.replace("|", "\\|")
                lines.append(f"| {f.tier} | `{f.expectation}` | `{f.column or '(table)'}` | {count} | {details} |")
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidationFindings:
    """What a contract found on a batch, without the rows: enough to split the same file again into
    the same accepted and quarantined rows (``row_failures``: 0-based row position -> reasons)."""

    rows: int
    expectations_evaluated: int
    failures: tuple[ExpectationFailure, ...]
    row_failures: dict[int, tuple[str, ...]]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class BatchValidation:
    """A judged batch: the report and the rows split into accepted and quarantined."""

    report: ValidationReport
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    reused_verdict: bool = False  # the same file, contract and settings were judged before: findings applied again


def partition_rows(
    frame: pd.DataFrame, row_failures: Mapping[Hashable, Sequence[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accepted rows unchanged; quarantined rows unchanged plus a column listing what each failed.

    Every input row lands in exactly one of the two, so rows in = accepted + quarantined.
    """
    failing = frame.index.isin(list(row_failures))
    accepted = frame.loc[~failing]
    quarantined = frame.loc[failing].copy()
    quarantined[REASONS_COLUMN] = [json.dumps(sorted(set(row_failures[label]))) for label in quarantined.index]
    return accepted, quarantined


@dataclass(frozen=True)
class TimeBounds:
    """How a contract bounds its time column (``meta.time_bounds`` of the suite).

    * ``future_tolerance_hours``: no row may be dated after *now* plus this (clock skew, time zones);
      a batch dated years ahead is a broken upstream, not data.
    * ``period`` (``day`` or ``month``, optional): a batch holds one period, and the period is the
      date in the batch file's name (``loans-2026-01-03.parquet``: that day; ``loans-2026-01.csv``:
      that month; the last such date in the name counts). Every row must fall inside it. A file
      whose name carries no date is checked against the future bound only, and the report says so.
    * ``tier``: ``batch`` (default: refuse the batch) or ``row`` (quarantine the rows).
    """

    column: str
    future_tolerance_hours: float
    period: Literal["day", "month"] | None = None
    tier: Tier = "batch"

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> TimeBounds | None:
        """The bounds a contract's meta declares, or None; a malformed declaration raises ValueError."""
        raw = (meta or {}).get("time_bounds")
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("column"), str):
            raise ValueError("meta.time_bounds needs a 'column' (the time column's name)")
        unknown = set(raw) - {"column", "future_tolerance_hours", "period", "tier"}
        if unknown:
            raise ValueError(f"meta.time_bounds has unknown keys: {', '.join(sorted(unknown))}")
        tolerance = raw.get("future_tolerance_hours", 0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise ValueError("meta.time_bounds.future_tolerance_hours must be a number >= 0")
        period, tier = raw.get("period"), raw.get("tier", "batch")
        if period not in (None, "day", "month"):
            raise ValueError("meta.time_bounds.period must be 'day', 'month' or absent")
        if tier not in ("batch", "row"):
            raise ValueError("meta.time_bounds.tier must be 'batch' or 'row'")
        return cls(raw["column"], float(tolerance), period, tier)


_DAY_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_MONTH_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d{2})(?![\d-])")


def batch_period(batch_name: str, period: Literal["day", "month"]) -> tuple[dt.datetime, dt.datetime] | None:
    """[start, end) of the period a batch file's name declares, or None when its name has no such date."""
    stem = PurePath(batch_name).stem
    try:
        if period == "day":
            days = _DAY_IN_NAME.findall(stem)
            if not days:
                return None
            year, month, day = (int(part) for part in days[-1])
            start = dt.datetime(year, month, day)
            return start, start + dt.timedelta(days=1)
        months = _MONTH_IN_NAME.findall(stem)
        if not months:
            return None
        year, month = map(int, months[-1])
        start = dt.datetime(year, month, 1)
        return start, dt.datetime(year + month // 12, month % 12 + 1, 1)
    except ValueError:  # 2026-13-45: not a date
        return None


@dataclass(frozen=True)
class RowFindings:
    """Failures found outside great-expectations, with the row labels they point at (row tier)."""

    failures: tuple[ExpectationFailure, ...] = ()
    rows: Mapping[Hashable, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _as_naive_utc(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps


def _bound_failure(
    name: str, bounds: TimeBounds, outside: pd.Series, stamps: pd.Series, details: str
) -> tuple[ExpectationFailure, dict[Hashable, tuple[str, ...]]]:
    shown = ", ".join(dict.fromkeys(str(value) for value in stamps[outside].head(20)))
    failure = ExpectationFailure(
        name, bounds.column, int(outside.sum()), f"{details}; e.g. {shown}" if shown else details, bounds.tier
    )
    rows: dict[Hashable, tuple[str, ...]] = {}
    if bounds.tier == "row":
        rows = {label: (failure.label,) for label in outside[outside].index}
    return failure, rows


def check_time_bounds(frame: pd.DataFrame, bounds: TimeBounds, batch_name: str, now: dt.datetime) -> RowFindings:
    """Rows dated after now + tolerance, and rows outside the batch's period (from its file name)."""
    if bounds.column not in frame.columns:
        return RowFindings()  # the contract's column-set expectation reports a missing column
    stamps = _as_naive_utc(frame[bounds.column])
    reference = now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now
    latest = reference + dt.timedelta(hours=bounds.future_tolerance_hours)
    failures: list[ExpectationFailure] = []
    rows: dict[Hashable, tuple[str, ...]] = {}
    warnings: list[str] = []
    future = (stamps > latest).fillna(False)
    if future.any():
        failure, marked = _bound_failure(
            "time_not_after_now",
            bounds,
            future,
            stamps,
            f"dated after now + {bounds.future_tolerance_hours:g} h ({latest:%Y-%m-%d %H:%M} UTC)",
        )
        failures.append(failure)
        rows.update(marked)
    if bounds.period is not None:
        span = batch_period(batch_name, bounds.period)
        if span is None:
            pattern = "YYYY-MM-DD" if bounds.period == "day" else "YYYY-MM"
            warnings.append(
                f"the file name '{batch_name}' carries no {bounds.period} ({pattern}): "
                f"{bounds.column} checked against now only, not against the batch's period"
            )
        else:
            start, end = span
            outside = ((stamps < start) | (stamps >= end)).fillna(False)
            if outside.any():
                failure, marked = _bound_failure(
                    "time_within_batch_period",
                    bounds,
                    outside,
                    stamps,
                    f"outside the batch's {bounds.period} [{start:%Y-%m-%d}, {end:%Y-%m-%d}) named by its file",
                )
                failures.append(failure)
                for label, reasons in marked.items():
                    rows[label] = (*rows.get(label, ()), *reasons)
    return RowFindings(tuple(failures), rows, tuple(warnings))


def check_all_null_columns(frame: pd.DataFrame, already_failed: set[str]) -> RowFindings:
    """A column with no value at all is a broken feed, whatever the contract allows: a row-tier failure
    on every row (so they are quarantined and the report names the column), never silence."""
    if frame.empty:
        return RowFindings()
    empty = [str(c) for c in frame.columns if str(c) not in already_failed and frame[c].isna().all()]
    failures = tuple(
        ExpectationFailure("column_not_entirely_null", column, len(frame), "every value is null", "row")
        for column in empty
    )
    rows: dict[Hashable, tuple[str, ...]] = (
        {label: tuple(f.label for f in failures) for label in frame.index} if failures else {}
    )
    return RowFindings(failures, rows)
