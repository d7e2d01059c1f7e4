"""What a contract check found, as plain data that flows, reports and the CLI can share.

The great-expectations adapter produces these; nothing here knows about great-expectations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation: which one, on which column, and how badly."""

    expectation: str
    column: str | None
    unexpected_count: int | None = None
    details: str = ""


@dataclass(frozen=True)
class ValidationReport:
    """The result of running one contract on one batch."""

    batch: str
    contract_name: str
    contract_version: int
    rows: int
    expectations_evaluated: int
    failures: tuple[ExpectationFailure, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["failures"] = [asdict(f) for f in self.failures]
        return data

    def summary(self) -> str:
        """One line per failure, naming the expectation and the column: the flow's error message."""
        if self.passed:
            return f"{self.batch}: {self.rows} rows passed {self.expectations_evaluated} expectations"
        lines = [
            f"{self.batch}: {len(self.failures)} of {self.expectations_evaluated} expectations of contract "
            f"{self.contract_name} v{self.contract_version} failed:"
        ]
        for failure in self.failures:
            column = failure.column or "(table)"
            count = "" if failure.unexpected_count is None else f", {failure.unexpected_count} rows"
            details = f": {failure.details}" if failure.details else ""
            lines.append(f"  - {failure.expectation} on column '{column}'{count}{details}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        lines = [
            f"### Contract `{self.contract_name}` v{self.contract_version} on `{self.batch}`: **{status}**",
            "",
            f"{self.rows} rows, {self.expectations_evaluated} expectations, {len(self.failures)} failed.",
        ]
        if self.failures:
            lines += ["", "| expectation | column | unexpected rows | details |", "|---|---|---|---|"]
            for f in self.failures:
                count = "" if f.unexpected_count is None else str(f.unexpected_count)
                details = f.details.replace("|", "\\|")
                lines.append(f"| `{f.expectation}` | `{f.column or '(table)'}` | {count} | {details} |")
        return "\n".join(lines)
