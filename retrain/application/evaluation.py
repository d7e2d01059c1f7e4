"""Score both models on the same holdout rows and judge the challenger: the gate's evidence.

The registered models are loaded back from the registry (not the in-memory training objects), so
what is judged is what would serve. Every check of the gate runs on the same rows, predictions and
guardrail measurements; the decision is data (:class:`retrain.domain.gate.GateDecision`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.adapters import plots
from retrain.adapters.registry import ModelRegistry
from retrain.application.models import load_model
from retrain.domain.comparison import compared_models, slice_forest
from retrain.domain.gate import Check, GateDecision, GateInputs, decide, default_checks
from retrain.domain.gate_report import ReportLinks, lineage_links
from retrain.domain.lifecycle import CANDIDATE, CHALLENGER, ModelVersionInfo
from retrain.domain.links import figure_refs
from retrain.domain.privacy import NEW_SALT_FLAG, PrivacyError
from retrain.domain.settings import Settings
from retrain.domain.slices import SliceResult, slice_masks
from retrain.domain.tags import RUN_COMPARISON, TAG_DECISION
from retrain.domain.task import task_for

#: The check that fails when the champion cannot be scored (:func:`predict_champion`).
CHAMPION_COMPARISON = "champion_comparison"


@dataclass(frozen=True)
class Judgement:
    """The gate's decision and the metrics of both models it was taken on (the report shows them)."""

    decision: GateDecision
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None

    def on_same_rows(self, rows: int, challenger: str, champion: str | None) -> dict[str, object]:
        """Both models' metrics on the one holdout they were judged on (recorded with the decision:
        ``retrain status`` compares versions by it, never by each one's own holdout)."""
        return {
            "rows": rows,
            "challenger": {"version": challenger, "metrics": self.challenger_metrics},
            "champion": None if champion is None else {"version": champion, "metrics": self.champion_metrics},
        }


def current(registry: ModelRegistry, alias: str) -> ModelVersionInfo | None:
    """The version an alias points at now, or None."""
    return registry.by_alias(alias)


def mark_challenger(registry: ModelRegistry, version: ModelVersionInfo) -> None:
    """Point ``challenger`` at the version about to be judged (what a shadow scorer follows), unless it
    is already rolling out as ``candidate`` (it serves rows then, no need to shadow it)."""
    candidate = registry.by_alias(CANDIDATE)
    if candidate is not None and candidate.version == version.version:
        return
    if version.tags.get(TAG_DECISION):  # judged again (a re-run): the doctor must not take it for refused
        registry.clear_decision_tag(version.version)
    registry.set_alias(CHALLENGER, version.version)


def predict(
    registry: ModelRegistry, version: ModelVersionInfo, holdout: pd.DataFrame, settings: Settings
) -> np.ndarray:
    """Load the *registered* model (not the in-memory one) and predict the rows, as the task predicts
    (binary P(positive), multiclass rows x classes, regression values). ``holdout``: the rows as the
    data store holds them; each model reads them as it learnt them (its own sensitive columns as tokens)."""
    model = load_model(registry, version.version)
    return model.predict(holdout, task_for(settings.dataset), settings.model.threads)


def predict_champion(
    registry: ModelRegistry, version: ModelVersionInfo, holdout: pd.DataFrame, settings: Settings
) -> tuple[np.ndarray | None, str | None]:
    """The champion's predictions, or why it cannot be scored here (its privacy salt is not this
    environment's): then the comparison fails with that reason, never passes as if there were none."""
    try:
        return predict(registry, version, holdout, settings), None
    except PrivacyError as error:
        return None, f"the champion (version {version.version}) cannot be scored: {error}"


def judge(
    settings: Settings,
    holdout: pd.DataFrame,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    guardrails: dict[str, float],
    champion_problem: str | None = None,
    new_salt: bool = False,
) -> Judgement:
    """Metrics of both models on the same rows, then every gate check (bootstrap, slices, guardrails).
    ``champion_problem``: why the champion could not be scored, a failed comparison; trained under a
    new privacy salt on purpose (``new_salt``), the comparison is not made and reviewers decide (the
    check says why), else no model could ever follow a champion whose salt is lost."""
    task = task_for(settings.dataset)
    labels = task.encode(holdout[settings.dataset.target], "target of the holdout rows")
    challenger_metrics = task.metrics(labels, challenger)
    champion_metrics = None if champion is None else task.metrics(labels, champion)
    config = settings.gate.slices
    masks = slice_masks(holdout, config.categorical, config.numeric_bins)
    inputs = GateInputs(challenger_metrics, champion_metrics, labels, challenger, champion, guardrails, masks)
    checks = default_checks(settings.gate, settings.model.seed, task.kind)
    decision = decide(checks, inputs, settings.gate.primary_metric)
    if champion_problem is not None:
        reason = champion_problem
        if new_salt:
            reason = (
                f"not compared: {champion_problem}; trained under a new privacy salt on purpose "
                f"({NEW_SALT_FLAG}): reviewers decide without the comparison"
            )
        decision = decision.with_check(Check(CHAMPION_COMPARISON, new_salt, None, None, reason))
    return Judgement(decision, challenger_metrics, champion_metrics)


def log_comparison(
    registry: ModelRegistry,
    settings: Settings,
    holdout: pd.DataFrame,
    decision: GateDecision,
    challenger: ModelVersionInfo,
    challenger_predictions: np.ndarray,
    champion: ModelVersionInfo | None,
    champion_predictions: np.ndarray | None,
) -> list[str]:
    """Draw the champion and the challenger on the rows the gate judged them on (the predictions it
    judged, not a second scoring) and the slice check's forest, into the challenger's run under
    ``comparison/``; returns the paths logged.

    Nothing is drawn when the challenger *is* the champion (a re-run on the same data): its run keeps
    the comparison it was judged and promoted on.
    """
    if champion is not None and champion.version == challenger.version:
        return []
    task = task_for(settings.dataset)
    labels = task.encode(holdout[settings.dataset.target], "target of the holdout rows")
    models = compared_models(
        challenger.version,
        challenger_predictions,
        None if champion is None else champion.version,
        champion_predictions,
    )
    slices = [row for check in decision.checks for row in check.rows(SliceResult)]
    forest = slice_forest(slices, settings.gate.primary_metric, settings.gate.max_drop)
    return registry.log_figures(challenger.run_id, plots.comparison_figures(task, labels, models, forest))


def report_links(
    registry: ModelRegistry,
    ui_url: str | None,
    version: ModelVersionInfo,
    prefect_ui_url: str | None = None,
    flow_run_id: str = "",
) -> ReportLinks:
    """Where the gate report sends its reader: deep links into the tracking UI (the run, the version,
    each plot), the pages of the lineage ids (the run, the version, the Prefect flow run) and the
    comparison plots of the challenger's run (linked, and where the files are when no link can say)."""
    experiment = registry.experiment_id()
    figures = figure_refs(
        registry.artifact_paths(version.run_id, RUN_COMPARISON),
        ui_url,
        experiment,
        version.run_id,
        registry.artifact_uri(version.run_id),
    )
    lineage = lineage_links(
        mlflow_ui=ui_url,
        experiment_id=experiment,
        run_id=version.run_id,
        model_name=registry.model_name,
        version=version.version,
        prefect_ui=prefect_ui_url,
        flow_run_id=flow_run_id,
    )
    links = registry.ui_links(ui_url, version.run_id, version.version) if ui_url else {}
    return ReportLinks(links, lineage, figures)
