"""What ``retrain status`` reports: the versions behind each alias, with metrics and lineage, and the
rollout in progress (from the ledger) when a candidate serves part of the traffic."""

from __future__ import annotations

from typing import Any

from retrain.adapters.ledger import Ledger
from retrain.adapters.registry import ModelRegistry
from retrain.domain.lifecycle import CANDIDATE, CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from retrain.domain.rollout import active_rollout


def lifecycle_status(registry: ModelRegistry, ledger_url: str | None = None) -> dict[str, Any]:
    """``champion``, ``candidate``, ``challenger`` and ``previous_champion``: each null or the version's
    details; with ``ledger_url``, ``rollout``: the rollout in progress (null without one)."""
    status: dict[str, Any] = {"model": registry.model_name}
    for alias in (CHAMPION, CANDIDATE, CHALLENGER, PREVIOUS_CHAMPION):
        info = registry.by_alias(alias)
        status[alias.replace("-", "_")] = None if info is None else info.to_dict()
    if ledger_url is not None:
        ledger = Ledger(ledger_url)
        try:
            running = active_rollout(ledger.entries(registry.model_name))
        finally:
            ledger.dispose()
        status["rollout"] = None if running is None else running.to_dict()
    return status
