"""great-expectations adapter: run a versioned contract (a GX 1.x suite stored as JSON) on a batch.

The only module that imports great_expectations, and only inside functions: the import alone takes
seconds. Contracts are data (``data_contracts/<name>/v<N>.json``), never built in code, and nothing
here knows a column name: what a failure means comes out of the suite itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Hashable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from retrain.domain.errors import InputError
from retrain.domain.lifecycle import canonical_hash
from retrain.domain.sensitive import WITHHELD, contract_sensitive, mentions_sensitive
from retrain.domain.validation import (
    BatchValidation,
    ExpectationFailure,
    TimeBounds,
    ValidationFindings,
    ValidationReport,
    check_all_null_columns,
    check_time_bounds,
    partition_rows,
    withhold_values,
)

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

_SHOWN_VALUES = 5


class ContractError(InputError):
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


_GX_LOCK = threading.Lock()


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


def _check_expectation(entry: Any, index: int, path: Path) -> None:
    """Refuse an expectation GX cannot build, naming it.

    Needed because ``ExpectationSuite(expectations=...)`` only *logs* an unknown or malformed
    expectation and drops it: a typo in a contract would silently weaken it.
    """
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    kind = entry.get("type") if isinstance(entry, dict) else None
    try:
        if not isinstance(entry, dict):
            raise TypeError("an expectation must be a JSON object")
        ExpectationConfiguration(**entry).to_domain_obj()
    except Exception as error:  # GX raises many types for a malformed expectation
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise ContractError(f"contract file {path}: expectation #{index} ({kind!r}) is not valid: {first}") from error


def _suite(path: Path) -> ExpectationSuite:
    """The contract's suite, built once per process and contract text: checking and building every
    expectation took longer than validating a small batch, and a training validates many."""
    data = load_contract_json(path)
    return _built_suite(str(path), json.dumps(data, sort_keys=True))


@lru_cache(maxsize=8)
def _built_suite(path_text: str, canonical: str) -> ExpectationSuite:
    import great_expectations as gx

    path, data = Path(path_text), json.loads(canonical)
    for index, entry in enumerate(data["expectations"]):
        _check_expectation(entry, index, path)
    try:
        suite = gx.ExpectationSuite(**{key: data[key] for key in ("name", "expectations", "meta") if key in data})
    except Exception as error:  # GX raises many types for a malformed suite
        raise ContractError(f"contract file {path} is not a valid great-expectations suite: {error}") from error
    if len(suite.expectations) != len(data["expectations"]):
        raise ContractError(f"contract file {path}: great-expectations dropped some of its expectations")
    return suite


def _short(values: list[Any]) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    more = ", ..." if len(unique) > _SHOWN_VALUES else ""
    return ", ".join(unique[:_SHOWN_VALUES]) + more


def _raised(exception: dict[str, Any] | None) -> dict[str, Any] | None:
    """The exception an expectation hit, if any.

    GX 1.x reports it either flat (``{"raised_exception": True, ...}``) or, when a metric failed,
    keyed by metric id (``{"MetricConfigurationID(...)": {"raised_exception": True, ...}}``).
    """
    if not exception:
        return None
    if exception.get("raised_exception"):
        return exception
    nested = (info for info in exception.values() if isinstance(info, dict) and info.get("raised_exception"))
    return next(nested, None)


def _details(result: dict[str, Any], exception: dict[str, Any] | None) -> str:
    """A short human summary of why one expectation failed."""
    raised = _raised(exception)
    if raised:
        message = str(raised.get("exception_message") or "").splitlines()
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


_COMPLETE = {"result_format": "COMPLETE", "return_unexpected_index_query": False}


def _failed_suite(suite: ExpectationSuite, results: Any) -> ExpectationSuite | None:
    """A suite of just the expectations that failed, to ask GX for their details."""
    import great_expectations as gx

    failed = [r.expectation_config.to_json_dict() for r in results if not r.success and r.expectation_config]
    if not failed:
        return None
    return gx.ExpectationSuite(name=f"{suite.name}-failed", expectations=failed)


def _tier(meta: dict[str, Any] | None) -> str:
    """The tier an expectation declares in its ``meta``; undeclared means batch (the safe side)."""
    tier = (meta or {}).get("tier", "batch")
    return "row" if tier == "row" else "batch"


def _failure(
    config: Any, result: dict[str, Any], exception: dict[str, Any], columns: pd.Index, hidden: Iterable[str] = ()
) -> ExpectationFailure:
    """One failed expectation; about a sensitive column (any column it names, or its row condition),
    its count only: no failing values, pairs, observed value or exception text."""
    kwargs = dict(config.kwargs)
    column = kwargs.get("column")
    count = result.get("unexpected_count")
    missing = column is not None and column not in columns
    if not missing and mentions_sensitive(kwargs, hidden):
        shown = "" if count is None else f"{int(count)} unexpected values; "
        details = f"{shown}{WITHHELD}"
    else:
        details = "the column is missing from the batch" if missing else _details(result, exception or None)
    # A row expectation that cannot point at rows (missing column, error) judges the whole batch.
    tier = _tier(config.meta) if "unexpected_index_list" in result and not missing else "batch"
    return ExpectationFailure(
        expectation=config.type,
        column=column,
        unexpected_count=None if count is None else int(count),
        details=details,
        tier=tier,  # type: ignore[arg-type]
    )


def contract_columns(contract: dict[str, Any]) -> list[str] | None:
    """The column set the contract declares (its expect_table_columns_to_match_set), if any."""
    for expectation in contract["expectations"]:
        if expectation.get("type") == "expect_table_columns_to_match_set":
            return list(expectation["kwargs"]["column_set"])
    return None


def _drop_extra_columns(frame: pd.DataFrame, contract: dict[str, Any]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    declared = contract_columns(contract)
    extra = [c for c in frame.columns if declared is not None and c not in declared]
    if not extra:
        return frame, ()
    return frame.drop(columns=extra), (f"dropped columns the contract does not declare: {', '.join(map(str, extra))}",)


def validate_batch(
    frame: pd.DataFrame,
    contract_path: Path,
    *,
    batch_name: str,
    contract_name: str,
    contract_version: int,
    max_quarantine_share: float = 0.0,
    extra_columns: str = "refuse",
    now: dt.datetime | None = None,
    sensitive: Sequence[str] = (),
) -> BatchValidation:
    """Run both tiers of the contract on one batch and split its rows into accepted and quarantined.

    Besides the suite's expectations: the time bounds the contract declares in ``meta.time_bounds``
    (no row after ``now`` plus a tolerance, every row within the period the file name declares) and,
    for any contract, a column with no value at all (every row quarantined, the column named).
    """
    suite = _suite(contract_path)
    # a sensitive column's failures keep their counts only: the report leaves the store
    hidden = {*sensitive, *contract_sensitive(load_contract_json(contract_path))}
    try:
        bounds = TimeBounds.from_meta(load_contract_json(contract_path).get("meta"))
    except ValueError as error:
        raise ContractError(f"contract file {contract_path}: {error}") from None
    frame = frame.reset_index(drop=True)  # unique row labels: quarantine is addressed by label
    warnings: tuple[str, ...] = ()
    if extra_columns == "drop":
        frame, warnings = _drop_extra_columns(frame, load_contract_json(contract_path))
    # One GX context per process, and GX 1.x gives every in-memory batch the same id: two threads that
    # validated at once (a Dask worker with several threads) could each be handed the other's rows.
    # The lock makes a process validate one batch at a time; processes still validate side by side.
    with _GX_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        # Two passes: a cheap pass/fail over every expectation, then full details (values, failing row
        # labels) only for the ones that failed. A clean batch pays for the first pass alone.
        evaluated = batch.validate(suite, result_format="BOOLEAN_ONLY").results
        failed = _failed_suite(suite, evaluated)
        detailed = [] if failed is None else batch.validate(failed, result_format=_COMPLETE).results
    failures: list[ExpectationFailure] = []
    row_failures: dict[Any, list[str]] = {}
    for result in detailed:
        if result.success or result.expectation_config is None:
            continue
        details = dict(result.result or {})
        failure = _failure(result.expectation_config, details, dict(result.exception_info or {}), frame.columns, hidden)
        failures.append(failure)
        if failure.tier == "row":
            for label in details.get("unexpected_index_list") or []:
                row_failures.setdefault(label, []).append(failure.label)
    extra_findings = [check_all_null_columns(frame, {f.column for f in failures if f.column})]
    if bounds is not None:
        extra_findings.append(check_time_bounds(frame, bounds, batch_name, now or dt.datetime.now(dt.UTC)))
    for findings in extra_findings:
        failures.extend(findings.failures)
        warnings += findings.warnings
        for label, reasons in findings.rows.items():
            row_failures.setdefault(label, []).extend(reasons)
    accepted, quarantined = partition_rows(frame, row_failures)
    report = ValidationReport(
        batch=batch_name,
        contract_name=contract_name,
        contract_version=contract_version,
        rows=len(frame),
        expectations_evaluated=len(evaluated),
        failures=withhold_values(failures, hidden),
        quarantined=len(quarantined),
        max_quarantine_share=max_quarantine_share,
        warnings=warnings,
    )
    return BatchValidation(report=report, accepted=accepted, quarantined=quarantined)


def replay_validation(
    frame: pd.DataFrame,
    contract_path: Path,
    findings: ValidationFindings,
    *,
    batch_name: str,
    contract_name: str,
    contract_version: int,
    max_quarantine_share: float = 0.0,
    extra_columns: str = "refuse",
    sensitive: Sequence[str] = (),
) -> BatchValidation | None:
    """The verdict :func:`validate_batch` gave this batch before, applied to its rows again without
    great-expectations; None when the rows do not fit the findings (then validate afresh)."""
    frame = frame.reset_index(drop=True)
    if extra_columns == "drop":
        frame, _ = _drop_extra_columns(frame, load_contract_json(contract_path))
    if len(frame) != findings.rows or any(label >= len(frame) for label in findings.row_failures):
        return None
    row_failures: dict[Hashable, Sequence[str]] = {label: why for label, why in findings.row_failures.items()}
    accepted, quarantined = partition_rows(frame, row_failures)
    report = ValidationReport(
        batch=batch_name,
        contract_name=contract_name,
        contract_version=contract_version,
        rows=len(frame),
        expectations_evaluated=findings.expectations_evaluated,
        failures=withhold_values(
            findings.failures, {*sensitive, *contract_sensitive(load_contract_json(contract_path))}
        ),
        quarantined=len(quarantined),
        max_quarantine_share=max_quarantine_share,
        warnings=findings.warnings,
    )
    return BatchValidation(report=report, accepted=accepted, quarantined=quarantined, reused_verdict=True)


def contract_hash(path: Path) -> str:
    """sha256 of the contract's canonical JSON: the same rules hash the same whatever the formatting."""
    return canonical_hash(load_contract_json(path))


RELEASED_FILE = "RELEASED.json"
HASH_RULE = (
    "the hash is the sha256 of the contract's canonical JSON (keys sorted, no spaces: "
    "json.dumps(suite, sort_keys=True, separators=(',', ':'))), not of the file's bytes, so `sha256sum` "
    "gives another value"
)


def released_key(name: str, version: int) -> str:
    """The contract's entry in ``data_contracts/RELEASED.json``: ``<name>/v<version>.json``."""
    return f"{name}/v{version}.json"


def _released(contracts_dir: Path) -> dict[str, str] | None:
    path = contracts_dir / RELEASED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as error:
        raise ContractError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ContractError(f"{path} must map '<name>/v<N>.json' to its hash")
    return data


def release_contract(contracts_dir: Path, name: str, version: int, replace: bool = False) -> str:
    """Record a contract version's hash in ``RELEASED.json`` (created if missing); returns the hash.

    Releasing the same content again is a no-op. A version already released with another hash is
    refused: a released contract is never edited in place (its hash keys every training that used
    it), a change is a new version. ``replace`` overwrites a recorded hash that was never right
    (computed by hand with another rule).
    """
    key = released_key(name, version)
    digest = contract_hash(contracts_dir / key)
    released = _released(contracts_dir) or {}
    recorded = released.get(key)
    if recorded is not None and recorded != digest and not replace:
        raise ContractError(
            f"{key} was released with hash {recorded[:12]}… and has changed since ({digest[:12]}…): a released "
            f"contract is never edited; copy it to {released_key(name, version + 1)}, release that and set "
            "contract.version in params.yaml (--replace only if the recorded hash was computed by hand)"
        )
    released[key] = digest
    path = contracts_dir / RELEASED_FILE
    path.write_text(json.dumps(dict(sorted(released.items())), indent=2) + "\n", encoding="utf-8")
    return digest


def check_released(contracts_dir: Path, name: str, version: int) -> None:
    """Refuse a contract that ``RELEASED.json`` does not list with its current hash.

    A project without ``RELEASED.json`` does not use releases and is not checked.
    """
    released = _released(contracts_dir)
    if released is None:
        return
    key = released_key(name, version)
    command = f"`retrain contract release {name} {version}`"
    if key not in released:
        raise ContractError(
            f"contract {key} is not released: data_contracts/{RELEASED_FILE} does not list it. Read it, then run "
            f"{command} to record its hash ({HASH_RULE})"
        )
    digest = contract_hash(contracts_dir / key)
    if released[key] != digest:
        raise ContractError(
            f"contract {key} does not match its release: data_contracts/{RELEASED_FILE} records "
            f"{released[key][:12]}…, the file hashes to {digest[:12]}… ({HASH_RULE}). If it was edited after its "
            f"release, copy it to a new version instead; if the recorded value was computed by hand, run "
            f"{command[:-1]} --replace`"
        )
