"""What ``retrain status`` reports: the versions behind each alias, with metrics and lineage."""

from __future__ import annotations

from typing import Any

from retrain.adapters.registry import ModelRegistry
from retrain.domain.lifecycle import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION


def lifecycle_status(registry: ModelRegistry) -> dict[str, Any]:
    """``champion``, ``challenger`` and ``previous_champion``: each null or the version's details."""
    status: dict[str, Any] = {"model": registry.model_name}
    for alias in (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION):
        info = registry.by_alias(alias)
        status[alias.replace("-", "_")] = None if info is None else info.to_dict()
    return status
