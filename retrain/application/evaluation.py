"""Score both models on the same holdout rows and judge the challenger: the gate's evidence.

The registered models are loaded back from the registry (not the in-memory training objects), so
what is judged is what would serve. Every check of the gate runs on the same rows, predictions and
guardrail measurements; the decision is data (:class:`retrain.domain.gate.GateDecision`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.adapters.registry import ModelRegistry
from retrain.domain.gate import GateDecision, GateInputs, decide, default_checks
from retrain.domain.lifecycle import CHALLENGER, ModelVersionInfo
from retrain.domain.metrics import classification_metrics
from retrain.domain.settings import Settings
from retrain.domain.slices import slice_masks
from retrain.domain.training import predict_proba


@dataclass(frozen=True)
class Judgement:
    """The gate's decision and the metrics of both models it was taken on (the report shows them)."""

    decision: GateDecision
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None


def current(registry: ModelRegistry, alias: str) -> ModelVersionInfo | None:
    """The version an alias points at now, or None."""
    return registry.by_alias(alias)


def mark_challenger(registry: ModelRegistry, version: ModelVersionInfo) -> None:
    """Point ``challenger`` at the version about to be judged (what a shadow scorer follows)."""
    registry.set_alias(CHALLENGER, version.version)


def predict(registry: ModelRegistry, version: ModelVersionInfo, holdout: pd.DataFrame, threads: int) -> np.ndarray:
    """Load the *registered* model (not the in-memory one) and predict the holdout rows."""
    booster, spec = registry.load(version.version)
    return predict_proba(booster, holdout, spec, threads)


def judge(
    settings: Settings,
    holdout: pd.DataFrame,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    guardrails: dict[str, float],
) -> Judgement:
    """Metrics of both models on the same rows, then every gate check (bootstrap, slices, guardrails)."""
    labels = holdout[settings.dataset.target].to_numpy()
    challenger_metrics = classification_metrics(labels, challenger)
    champion_metrics = None if champion is None else classification_metrics(labels, champion)
    config = settings.gate.slices
    masks = slice_masks(holdout, config.categorical, config.numeric_bins)
    inputs = GateInputs(challenger_metrics, champion_metrics, labels, challenger, champion, guardrails, masks)
    decision = decide(default_checks(settings.gate, settings.model.seed), inputs, settings.gate.primary_metric)
    return Judgement(decision, challenger_metrics, champion_metrics)


def report_links(registry: ModelRegistry, ui_url: str, version: ModelVersionInfo) -> dict[str, str]:
    """Deep links into the tracking UI for the gate report: the run, the version, each plot."""
    return registry.ui_links(ui_url, version.run_id, version.version)
