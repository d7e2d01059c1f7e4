"""Plots that compare: champion and challenger drawn on the rows the gate judged, logged to the
challenger's MLflow run under comparison/, and named (linked) by the gate report.

Every task type through the use cases on a real MLflow (sqlite and file artifacts in a tmp dir), with
two real models fitted on generated rows; then the binary training flow with a champion, end to end,
under a real Prefect API.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from retrain.adapters.environment import resolve_runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application import evaluation
from retrain.domain import synthetic
from retrain.domain.fitting import fit_snapshot
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.settings import DatasetSettings, Settings, SplitSettings, TaskKind, load_settings
from tests.conftest import REPO_ROOT
from tests.integration.conftest import registry_for, reviewed, workspace_settings

pytestmark = pytest.mark.integration

FLOW_RUN = "0b6f7c1e-1f7a-4a53-9d3c-2f0c6a4e8b11"
GUARDRAILS = {"latency_single_ms": 1.0, "latency_batch_ms": 20.0, "model_mb": 0.3}
#: Per task: the gate's primary metric and a floor both models pass.
PRIMARY: dict[TaskKind, tuple[str, float]] = {
    "binary": ("roc_auc", 0.5),
    "multiclass": ("log_loss", 5.0),
    "regression": ("rmse", 100.0),
}
PLOTS: dict[TaskKind, set[str]] = {
    "binary": {"comparison/roc.png", "comparison/precision_recall.png", "comparison/calibration.png"},
    "multiclass": {"comparison/calibration.png", "comparison/confusion_matrix.png"},
    "regression": {"comparison/predicted_vs_actual.png", "comparison/residuals.png"},
}


def _settings(task: TaskKind) -> Settings:
    base = load_settings(REPO_ROOT / "params.yaml")
    metric, floor = PRIMARY[task]
    gate = base.gate.model_copy(
        update={
            "primary_metric": metric,
            "floor": floor,
            "bootstrap_resamples": 200,
            "slices": base.gate.slices.model_copy(
                update={"categorical": ("segment",), "numeric_bins": {}, "min_rows": 50}
            ),
        }
    )
    dataset = DatasetSettings.model_validate(synthetic.dataset_params(task))
    return base.model_copy(update={"dataset": dataset, "gate": gate})


def _fitted(settings: Settings, rounds: int, depth: int) -> Any:
    """A model fitted on the same generated days (so both are judged on the same holdout rows)."""
    frame = synthetic.synthetic_frame(settings.dataset.task, days=6, rows_per_day=250, seed=5)
    xgboost = settings.model.xgboost.model_copy(update={"num_boost_round": rounds, "max_depth": depth})
    model = settings.model.model_copy(update={"threads": 1, "xgboost": xgboost})
    return fit_snapshot(frame, settings.dataset, SplitSettings(holdout_days=2, validation_days=1), model)


def _version(registry: ModelRegistry, number: str) -> ModelVersionInfo:
    """A training run in the model's experiment standing for registered version ``number``."""
    run = registry.client.create_run(registry.experiment_id(), run_name=f"v{number}")
    registry.client.set_terminated(run.info.run_id)
    return ModelVersionInfo(number, str(run.info.run_id), {}, None, None)


def _legends(figures: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per figure, what names a model: legend entries (overlays) or panel titles (side by side)."""
    named = {}
    for path, figure in figures.items():
        texts = [t.get_text() for axes in figure.axes if axes.get_legend() for t in axes.get_legend().get_texts()]
        texts += [axes.get_title() for axes in figure.axes]
        named[path] = [text.split(" (")[0] for text in texts if text.startswith(("champion v", "challenger v"))]
    return named


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.usefixtures("services")
def test_champion_and_challenger_are_drawn_on_the_judged_rows_into_the_challengers_run(
    task: TaskKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(task)
    registry = ModelRegistry.for_project(resolve_runtime(), settings)
    weak, strong = _fitted(settings, rounds=5, depth=1), _fitted(settings, rounds=60, depth=4)
    holdout = strong.split.holdout
    assert holdout.equals(weak.split.holdout)
    champion, challenger = _version(registry, "1"), _version(registry, "2")
    logged: dict[str, Any] = {}
    log_figures = registry.log_figures

    def recording(run_id: str, figures: Mapping[str, Any]) -> list[str]:
        logged.update(figures)  # the figures themselves, to read their legends back
        return log_figures(run_id, figures)

    monkeypatch.setattr(registry, "log_figures", recording)
    judged = evaluation.judge(settings, holdout, strong.holdout_predictions, weak.holdout_predictions, GUARDRAILS)
    slices = judged.decision.check("slices")
    assert slices is not None and slices.details, slices  # the gate judged the segments

    paths = evaluation.log_comparison(
        registry,
        settings,
        holdout,
        judged.decision,
        challenger,
        strong.holdout_predictions,
        champion,
        weak.holdout_predictions,
    )

    expected = PLOTS[task] | {"comparison/slices.png"}
    assert set(paths) == expected
    assert set(registry.artifact_paths(challenger.run_id, "comparison")) == expected
    assert registry.artifact_paths(champion.run_id, "comparison") == []  # the champion's run is left alone
    for path, names in _legends(logged).items():
        if path != "comparison/slices.png":
            assert names == ["champion v1", "challenger v2"], path

    links = evaluation.report_links(registry, "http://mlflow.test", challenger, "http://prefect.test", FLOW_RUN)
    assert {figure.path for figure in links.figures} == expected
    for figure in links.figures:
        assert figure.url == (
            f"http://mlflow.test/#/experiments/{registry.experiment_id()}/runs/{challenger.run_id}/artifacts/{figure.path}"
        )
        assert figure.location is not None and Path(figure.location).is_file()  # embedded: the PNG itself
    assert links.lineage["flow run"] == f"http://prefect.test/runs/flow-run/{FLOW_RUN}"
    unknown = evaluation.report_links(registry, None, challenger, None, FLOW_RUN)
    assert unknown.links == {} and unknown.lineage == {}
    assert all(figure.url is None and figure.location for figure in unknown.figures)


@pytest.mark.usefixtures("services")
def test_a_first_model_is_drawn_alone_and_a_champion_judged_again_keeps_its_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings("regression")
    registry = ModelRegistry.for_project(resolve_runtime(), settings)
    fitted = _fitted(settings, rounds=30, depth=3)
    holdout, predictions = fitted.split.holdout, fitted.holdout_predictions
    first = _version(registry, "1")
    logged: dict[str, Any] = {}
    log_figures = registry.log_figures
    monkeypatch.setattr(
        registry, "log_figures", lambda run, figures: logged.update(figures) or log_figures(run, figures)
    )
    judged = evaluation.judge(settings, holdout, predictions, None, GUARDRAILS)

    paths = evaluation.log_comparison(registry, settings, holdout, judged.decision, first, predictions, None, None)

    assert set(paths) == PLOTS["regression"]  # no champion: no slice compared, no forest
    assert set(logged) == PLOTS["regression"]
    assert all(names == ["challenger v1"] for names in _legends(logged).values())
    again = evaluation.log_comparison(
        registry, settings, holdout, judged.decision, first, predictions, first, predictions
    )
    assert again == [] and set(registry.artifact_paths(first.run_id, "comparison")) == PLOTS["regression"]


# --- the training flow ------------------------------------------------------------------------------


def _artifact(flow_run_id: str, key: str) -> str:
    """The newest version of one of the run's Prefect artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]), key=ArtifactFilterKey(any_=[key])
            )
        )
    assert found, f"no {key} artifact"
    return str(max(found, key=lambda artifact: artifact.created or 0).data)


@pytest.mark.template("champion")
@pytest.mark.usefixtures("prefect_api")
def test_a_training_with_a_champion_logs_the_comparison_and_the_gate_report_links_it(workspace: Path) -> None:
    from flows.training import TrainingRequest, training
    from retrain.adapters.prefect_api import ui_url
    from retrain.adapters.workspace import write_params

    # another model on the same days (a new training key), and a margin it cannot miss: it waits for review
    write_params(workspace, {"model": {"xgboost": {"max_depth": 3}}, "gate": {"max_drop": 0.5}})
    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))

    assert result.champion_before is not None and result.champion_before.version == "1"
    assert result.challenger.version == "2" and result.outcome.promoted, result.outcome.reasons
    registry = registry_for(workspace)
    run = result.challenger.run_id
    assert set(registry.artifact_paths(run, "comparison")) == PLOTS["binary"] | {"comparison/slices.png"}
    # v1's run keeps what its own gate drew: v1 alone, as the first model (no slices compared)
    assert set(registry.artifact_paths(registry.by_version("1").run_id, "comparison")) == PLOTS["binary"]

    report = _artifact(result.flow_run_id, "gate-report")
    page = f"http://127.0.0.1:5000/#/experiments/{registry.experiment_id()}/runs/{run}"
    assert "Champion v1 and challenger v2 overlaid on the same holdout rows" in report
    assert f"- [`comparison/roc.png`]({page}/artifacts/comparison/roc.png): file `" in report
    local = report.split("- [`comparison/slices.png`]")[1].split("file `")[1].split("`")[0]
    assert Path(local).is_file() and local.endswith(f"{run}/artifacts/comparison/slices.png")
    model = workspace_settings(workspace).model.registered_name
    assert f"| MLflow run | [`{run}`]({page}) |" in report
    assert f"| model version | [`v2`](http://127.0.0.1:5000/#/models/{model}/versions/2) |" in report
    prefect = ui_url()
    assert prefect is not None  # the test API's URL: its UI is known
    assert f"| flow run | [`{result.flow_run_id}`]({prefect}/runs/flow-run/{result.flow_run_id}) |" in report
    assert f"| data md5 (DVC) | `{result.snapshot.md5}` |" in report
    assert "plots/roc.png" in report  # the model's own plots are still linked
    comparison = next(check for check in result.decision.checks if check.name == "non_inferiority")
    assert comparison.value is not None and f"CI of the roc_auc gain, {comparison.value:+.4f}," in comparison.reason
