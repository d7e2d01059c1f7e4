"""What ``retrain status`` says, from the registry's versions and the ledger: pure, so it is tested
without MLflow.

Each version's metrics are measured on its *own* holdout (the newest days of the data it was trained
on), so two versions' numbers side by side compare nothing. The comparison that means something is
the gate's, on the same rows: it is read from the newest ledger entry that recorded one.
"""

from __future__ import annotations

from typing import Any

from retrain.domain.lifecycle import ALIASES, LedgerEntry, ModelVersionInfo, version_state
from retrain.domain.tags import TAG_DECISION

COMPARISON_CHECKS = ("non_inferiority", "superiority")


def version_row(info: ModelVersionInfo) -> dict[str, Any]:
    """One version as ``status --json`` prints it: plain values, its state in a word."""
    decision = info.tags.get(TAG_DECISION) or None
    return {
        "version": info.version,
        "state": version_state(info.aliases, decision),
        "aliases": [alias for alias in ALIASES if alias in info.aliases],
        "decision": decision,
        "metrics": dict(info.metrics),
        "data_md5": info.data_md5,
        "contract": info.contract,
        "run_id": info.run_id,
    }


def latest_gate(
    entries: list[LedgerEntry], decisions: dict[str, str], primary_metric: str | None
) -> dict[str, Any] | None:
    """The newest gate comparison on the same holdout rows (entries oldest first), or None.

    ``decisions``: version -> its decision tag, so the line says how it ended (refused, rejected…);
    the entry's kind when the version has none.
    """
    for entry in reversed(entries):
        holdout = entry.evidence.get("holdout") if isinstance(entry.evidence, dict) else None
        if not holdout or not holdout.get("champion"):
            continue
        challenger, champion = holdout["challenger"], holdout["champion"]
        metric = primary_metric or _compared_metric(entry) or next(iter(challenger["metrics"]), None)
        if metric is None:
            continue
        interval = _interval(entry)
        return {
            "challenger": challenger["version"],
            "champion": champion["version"],
            "rows": holdout.get("rows"),
            "metric": metric,
            "challenger_value": challenger["metrics"].get(metric),
            "champion_value": champion["metrics"].get(metric),
            "gain": None if interval is None else interval.get("gain"),
            "ci": None if interval is None or interval.get("lower") is None else [interval["lower"], interval["upper"]],
            "outcome": decisions.get(str(challenger["version"]), entry.kind),
            "recorded_at": None if entry.recorded_at is None else entry.recorded_at.isoformat(timespec="seconds"),
        }
    return None


def _interval(entry: LedgerEntry) -> dict[str, Any] | None:
    for check in entry.checks:
        if check.get("name") in COMPARISON_CHECKS and check.get("details"):
            detail: dict[str, Any] = check["details"][0]
            return detail
    return None


def _compared_metric(entry: LedgerEntry) -> str | None:
    interval = _interval(entry)
    return None if interval is None else str(interval.get("metric"))
