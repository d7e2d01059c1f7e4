"""What ``retrain status`` reports: the versions behind each alias and the newest others, each with its
state; the gate's latest comparison on the same holdout rows; the rollout in progress (from the ledger)."""

from __future__ import annotations

from typing import Any

from retrain.adapters.ledger import Ledger
from retrain.adapters.registry import ModelRegistry
from retrain.domain.lifecycle import CANDIDATE, CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from retrain.domain.rollout import active_rollout
from retrain.domain.status import latest_gate, version_row

RECENT_VERSIONS = 10
ALIASES_SHOWN = (CHAMPION, CANDIDATE, CHALLENGER, PREVIOUS_CHAMPION)


def lifecycle_status(
    registry: ModelRegistry, ledger_url: str | None = None, primary_metric: str | None = None
) -> dict[str, Any]:
    """``champion``, ``candidate``, ``challenger`` and ``previous-champion`` (as MLflow spells the
    aliases): each null or the version's details; ``versions``: those and the newest others, newest
    first, each with its ``state``; with ``ledger_url``, ``latest_gate`` (the last comparison on the
    same rows, null before one) and ``rollout`` (the rollout in progress, null without one)."""
    versions = registry.recent_versions(RECENT_VERSIONS)
    status: dict[str, Any] = {"model": registry.model_name}
    for alias in ALIASES_SHOWN:
        holder = next((info for info in versions if alias in info.aliases), None)
        status[alias] = None if holder is None else holder.to_dict()
    rows = [version_row(info) for info in versions]
    status["versions"] = rows
    if ledger_url is not None:
        ledger = Ledger(ledger_url)
        try:
            entries = ledger.entries(registry.model_name)
        finally:
            ledger.dispose()
        decisions = {row["version"]: row["decision"] for row in rows if row["decision"]}
        status["latest_gate"] = latest_gate(entries, decisions, primary_metric)
        running = active_rollout(entries)
        status["rollout"] = None if running is None else running.to_dict()
    return status
