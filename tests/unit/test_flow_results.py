"""Flow results are frozen pydantic models that survive Prefect's JSON result serializer (the stack
client reads them back from the API) and keep the keys the flows always returned."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from retrain.application.results import (
    DeployedTraining,
    DriftResult,
    RollbackResult,
    TrainingResult,
    TriggeredTraining,
)
from retrain.deploy.client import StackRunError, _validated

OUTCOME: dict[str, Any] = {
    "promoted": True,
    "champion_version": "2",
    "previous_champion_version": "1",
    "challenger_version": "2",
    "reasons": (),
    "note": "promoted",
}


def _training() -> TrainingResult:
    return TrainingResult.model_validate(
        {
            "outcome": OUTCOME,
            "decision": {
                "promote": True,
                "primary_metric": "roc_auc",
                "checks": [
                    {
                        "name": "absolute_floor",
                        "passed": True,
                        "value": 0.71,
                        "threshold": 0.6,
                        "reason": "ok",
                        "details": [{"measure": "x", "value": None}],
                    }
                ],
                "reasons": [],
            },
            "challenger": {"version": "2", "run_id": "r", "metrics": {"roc_auc": 0.71, "ece": float("nan")}},
            "champion_before": {"version": "1", "metrics": {"roc_auc": 0.7}},
            "approval": {"state": "approved", "reviewers": ["ada"], "comment": ""},
            "snapshot": {
                "path": "data/training/loans.parquet",
                "md5": "f31ab9d3",
                "rows": 9000,
                "batches": 6,
                "first_day": "2026-01-01",
                "last_day": "2026-01-06",
            },
            "training_key": "k" * 64,
            "flow_run_id": "local",
        }
    )


def _drift(training: dict[str, Any] | None) -> dict[str, Any]:
    feature = {
        "feature": "credit_score",
        "kind": "numeric",
        "statistic": "psi",
        "value": 0.01,
        "threshold": 0.2,
        "drifted": False,
        "severity": 0.05,
        "rows": 1500,
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "details": {"ks": None},
    }
    return {
        "rows": 1500,
        "judged": True,
        "drift_share": 0.0,
        "drifted_features": [],
        "flagged": False,
        "reasons": ["nothing drifted"],
        "features": {"credit_score": feature},
        "prediction": feature,
        "performance": None,
        "estimated": None,
        "signal": "feature_drift",
        "decided_by": None,
        "signals": [
            {"name": "feature_drift", "value": 0.0, "threshold": 0.3, "verdict": "quiet", "text": "nothing drifted"}
        ],
        "not_counted": [],
        "weights": {"credit_score": 1.0},
        "change_baseline": None,
        "decision": "none",
        "batches": ["b.parquet"],
        "champion": "1",
        "decision_position": 3,
        "mlflow_run": "m",
        "training": training,
    }


def test_a_training_result_round_trips_through_prefects_json_serializer_nan_included():
    from prefect.serializers import JSONSerializer

    result = _training()
    serializer = JSONSerializer()
    back = serializer.loads(serializer.dumps(result))
    assert isinstance(back, TrainingResult)
    assert back.challenger.metrics["roc_auc"] == 0.71 and math.isnan(back.challenger.metrics["ece"])
    assert back.model_dump(exclude={"challenger"}) == result.model_dump(exclude={"challenger"})


def test_results_are_frozen():
    with pytest.raises(ValidationError):
        _training().outcome.promoted = False  # type: ignore[misc]


def test_drift_results_type_the_retraining_they_started():
    followed = DriftResult.model_validate(_drift({**OUTCOME, "flow_run_id": "f", "via": "in-process"}))
    assert isinstance(followed.training, TriggeredTraining) and followed.training.note == "promoted"
    started = DriftResult.model_validate(_drift({"flow_run_id": "f", "via": "training/nightly"}))
    assert isinstance(started.training, DeployedTraining) and started.training.via == "training/nightly"
    assert DriftResult.model_validate(_drift(None)).training is None
    # the keys (and their order) are the ones `retrain drift --json` always printed
    assert list(followed.model_dump()) == list(_drift(None))


def test_the_stack_client_validates_what_it_reads_back():
    assert _validated("run", {"demoted": "2", "restored": "1", "ledger_entry": 4}, RollbackResult).restored == "1"
    result = _training()
    assert _validated("run", result, TrainingResult) is result
    with pytest.raises(StackRunError, match="without a readable result"):
        _validated("run", {"demoted": "2"}, RollbackResult)
    with pytest.raises(StackRunError, match="without a readable result"):
        _validated("run", None, TrainingResult)
