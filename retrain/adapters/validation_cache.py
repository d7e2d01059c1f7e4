"""Contract verdicts kept by content, so a batch judged once by a contract is not judged again.

A training run validates every batch it trains on. Without this, each nightly run re-runs the
contract over the whole history and its cost grows with every batch ever ingested; with it, a run
pays great-expectations only for the batches it has not seen (a read and a hash for the others).

The key is everything the verdict depends on: the sha256 of the file's bytes, the contract's
canonical hash, the batch's name (the period check reads the date in it), the read settings (time
column, missing-value tokens), the quarantine policy, the extra-columns policy, the sensitive
columns (their failures are kept without values) and the versions of great-expectations and of this
format. A verdict that depends on the clock is never kept: a row
dated after *now* may not be tomorrow. What is kept are the findings (failures, failing row
positions with their reasons, warnings), never the rows: a hit re-reads the file and splits it
again, so accepted and quarantined rows are exactly what a fresh validation gives.

One JSON file per key under the state directory, written to a temporary file and renamed, so a
crash leaves either the whole entry or none; an unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from retrain.adapters.contracts import contract_hash
from retrain.domain.settings import Settings
from retrain.domain.validation import REASONS_COLUMN, BatchValidation, ExpectationFailure, ValidationFindings

FORMAT: Final = 2  # 2: failures about sensitive columns are withheld when found, per the sensitive set
CLOCK_DEPENDENT: Final = frozenset({"time_not_after_now"})


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(path: Path, settings: Settings, contract_path: Path) -> str:
    """Everything a batch's verdict depends on, hashed."""
    parts = {
        "format": FORMAT,
        "great_expectations": metadata.version("great_expectations"),
        "file": _file_sha256(path),
        "batch": path.name,
        "contract": contract_hash(contract_path),
        "contract_name": settings.contract.name,
        "contract_version": settings.contract.version,
        "max_quarantine_share": settings.contract.max_quarantine_share,
        "extra_columns": settings.contract.extra_columns,
        "time_column": settings.dataset.time_column,
        "missing_values": {k: [str(v) for v in vs] for k, vs in sorted(settings.dataset.missing_values.items())},
        # the failures kept withhold the values of the columns sensitive when they were found
        "sensitive": sorted(settings.privacy.sensitive),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def findings_of(validation: BatchValidation) -> ValidationFindings | None:
    """What to keep of a fresh verdict, or None when it depends on the clock."""
    report = validation.report
    if any(failure.expectation in CLOCK_DEPENDENT for failure in report.failures):
        return None
    row_failures = {
        int(label): tuple(json.loads(reasons))
        for label, reasons in zip(validation.quarantined.index, validation.quarantined[REASONS_COLUMN], strict=True)
    }
    return ValidationFindings(
        rows=report.rows,
        expectations_evaluated=report.expectations_evaluated,
        failures=report.failures,
        row_failures=row_failures,
        warnings=report.warnings,
    )


def load(cache_dir: Path, key: str) -> ValidationFindings | None:
    try:
        data: dict[str, Any] = json.loads((cache_dir / f"{key}.json").read_text(encoding="utf-8"))
        return ValidationFindings(
            rows=int(data["rows"]),
            expectations_evaluated=int(data["expectations_evaluated"]),
            failures=tuple(ExpectationFailure(**failure) for failure in data["failures"]),
            row_failures={int(label): tuple(reasons) for label, reasons in data["row_failures"]},
            warnings=tuple(data["warnings"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(cache_dir: Path, key: str, findings: ValidationFindings) -> None:
    data = {
        "rows": findings.rows,
        "expectations_evaluated": findings.expectations_evaluated,
        "failures": [asdict(failure) for failure in findings.failures],
        "row_failures": [[label, list(reasons)] for label, reasons in sorted(findings.row_failures.items())],
        "warnings": list(findings.warnings),
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=cache_dir, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temporary, cache_dir / f"{key}.json")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
