"""great-expectations adapter: run a versioned contract (a GX 1.x suite stored as JSON) on a batch.

The only module that imports great_expectations, and only inside functions: the import alone takes
seconds. Contracts are data (``data_contracts/<name>/v<N>.json``), never built in code, and nothing
here knows a column name: what a failure means comes out of the suite itself.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from retrain.domain.lifecycle import canonical_hash
from retrain.domain.validation import ExpectationFailure, ValidationReport

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

_SHOWN_VALUES = 5


class ContractError(ValueError):
    """The contract file is missing or is not a valid great-expectations suite."""


def load_contract_json(path: Path) -> dict[str, Any]:
    """The suite as plain JSON (what the contract hash and the evidence are computed from)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(
            f"contract file {path} does not exist: check contract.name/version in params.yaml"
        ) from None
    except (OSError, json.JSONDecodeError) as error:
        raise ContractError(f"contract file {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ContractError(f"contract file {path} is not a great-expectations suite (no 'expectations' list)")
    return data


@lru_cache(maxsize=1)
def _batch_definition() -> BatchDefinition[Any]:
    """One ephemeral GX context per process: building it per batch would cost more than validating."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("retrain").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole-batch")


def _suite(path: Path) -> ExpectationSuite:
    import great_expectations as gx

    data = load_contract_json(path)
    try:
        return gx.ExpectationSuite(**{key: data[key] for key in ("name", "expectations", "meta") if key in data})
    except Exception as error:  # GX raises many types for a malformed suite
        raise ContractError(f"contract file {path} is not a valid great-expectations suite: {error}") from error


def _short(values: list[Any]) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    more = ", ..." if len(unique) > _SHOWN_VALUES else ""
    return ", ".join(unique[:_SHOWN_VALUES]) + more


def _details(result: dict[str, Any], exception: dict[str, Any] | None) -> str:
    """A short human summary of why one expectation failed."""
    if exception and exception.get("raised_exception"):
        message = str(exception.get("exception_message") or "").splitlines()
        return f"could not be evaluated: {message[0] if message else 'error'}"
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        parts = [f"{kind}: {', '.join(map(str, cols))}" for kind, cols in mismatched.items() if cols]
        return "; ".join(parts)
    if result.get("partial_unexpected_list"):
        return f"unexpected values: {_short(result['partial_unexpected_list'])}"
    if "observed_value" in result:
        return f"observed: {result['observed_value']}"
    return ""


def _failure(
    expectation_type: str, kwargs: dict[str, Any], result: dict[str, Any], exception: Any, columns: pd.Index
) -> ExpectationFailure:
    column = kwargs.get("column")
    count = result.get("unexpected_count")
    missing = column is not None and column not in columns
    return ExpectationFailure(
        expectation=expectation_type,
        column=column,
        unexpected_count=None if count is None else int(count),
        details="the column is missing from the batch" if missing else _details(result, exception or None),
    )


def validate_batch(
    frame: pd.DataFrame, contract_path: Path, *, batch_name: str, contract_name: str, contract_version: int
) -> ValidationReport:
    """Run the contract on one batch; every failed expectation is named with its column."""
    suite = _suite(contract_path)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(suite, result_format="SUMMARY")
    failures = tuple(
        _failure(
            r.expectation_config.type,
            dict(r.expectation_config.kwargs),
            dict(r.result or {}),
            dict(r.exception_info or {}),
            frame.columns,
        )
        for r in outcome.results
        if not r.success and r.expectation_config is not None
    )
    return ValidationReport(
        batch=batch_name,
        contract_name=contract_name,
        contract_version=contract_version,
        rows=len(frame),
        expectations_evaluated=len(outcome.results),
        failures=failures,
    )


def contract_hash(path: Path) -> str:
    """sha256 of the contract's canonical JSON: the same rules hash the same whatever the formatting."""
    return canonical_hash(load_contract_json(path))
