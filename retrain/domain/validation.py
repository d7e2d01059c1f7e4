"""What a contract check found, as plain data that flows, reports and the CLI can share.

A contract has two tiers. **Batch** expectations (schema, types, row count, target, unique ids)
judge the batch as a whole: one failure refuses it. **Row** expectations (ranges, categories,
not-null) judge rows: failing rows go to quarantine with the reasons, the others are accepted, and
the batch is refused only when the quarantined share passes the policy's limit. Nothing is lost:
every input row ends up, unchanged, in exactly one of accepted or quarantined.

The great-expectations adapter produces the raw findings; nothing here knows about great-expectations.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

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
        verdict = "accepted" if self.passed else "REFUSED"
        head = (
            f"{self.batch}: {verdict} by contract {self.contract_name} v{self.contract_version}: "
            f"{self.rows} rows in, {self.accepted} accepted, {self.quarantined} quarantined"
        )
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
class BatchValidation:
    """A judged batch: the report and the rows split into accepted and quarantined."""

    report: ValidationReport
    accepted: pd.DataFrame
    quarantined: pd.DataFrame


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
