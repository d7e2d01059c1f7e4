"""What the CLI prints about a retraining the drift flow started: words, never a dict."""

from __future__ import annotations

from retrain.application.results import DeployedTraining, TriggeredTraining
from retrain.cli.render import retraining_line


def test_a_followed_retraining_says_its_outcome_and_each_reason():
    refused = TriggeredTraining(
        promoted=False,
        champion_version="1",
        previous_champion_version=None,
        challenger_version="2",
        reasons=("r2 0.3100 misses the floor 0.4000",),
        note="refused: champion unchanged",
        flow_run_id="abc",
        via="in-process",
    )
    text = retraining_line(refused)
    assert text.splitlines() == [
        "retraining (flow run abc, in-process): refused: champion unchanged: champion v1, challenger v2",
        "  - r2 0.3100 misses the floor 0.4000",
    ]
    assert "{" not in text


def test_a_retraining_started_on_a_deployment_names_its_run():
    text = retraining_line(DeployedTraining(flow_run_id="abc", via="deployment training/nightly"))
    assert text.startswith("retraining: flow run abc started (deployment training/nightly)")


def _feature(name: str, statistic: str, value: float, drifted: bool, severity: float, **details: float | None):
    kind = "categorical" if statistic == "jensen_shannon" else "numeric"
    return {
        "feature": name,
        "kind": kind,
        "statistic": statistic,
        "value": value,
        "threshold": 0.1 if statistic != "psi" else 0.2,
        "drifted": drifted,
        "severity": severity,
        "rows": 300,
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "details": details,
    }


def _drift_result(decision: str, flagged: bool):
    from retrain.application.results import DriftResult

    features = {
        "credit_score": _feature("credit_score", "ks", 0.29412, True, 2.9, psi=0.81, ks=0.29412, ks_p=4.467e-318),
        "channel": _feature("channel", "jensen_shannon", 0.1349, True, 1.3, js=0.1349, chi2_p=0.0344),
        "age": _feature("age", "psi", 0.01, False, 0.05, psi=0.01, ks=0.02, ks_p=0.8),
    }
    return DriftResult.model_validate(
        {
            "rows": 300,
            "judged": True,
            "drift_share": 0.5,
            "drifted_features": ["credit_score", "channel"],
            "flagged": flagged,
            "reasons": ["2 of 3 counted features drifted"],
            "features": features,
            "prediction": _feature("<prediction>", "psi", 0.957, True, 4.4, psi=0.957, ks=0.3, ks_p=1e-40),
            "performance": None,
            "weights": {"credit_score": 0.4, "channel": 0.1, "age": 0.5},
            "signal": "feature_drift",
            "decision": decision,
            "batches": ["b.parquet"],
            "champion": "1",
            "decision_position": None if decision == "report_only" else 4,
            "mlflow_run": "m1",
            "training": None,
        }
    )


def test_the_drift_summary_tables_the_drifted_rows_as_people_read_them(capsys):
    from retrain.cli.render import drift_summary

    drift_summary(_drift_result("report_only", flagged=True))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        "drift share 50% of the champion's importance (2 of 3 counted features drifted); deciding signal feature_drift"
    )
    assert lines[1] == (
        "report only: nothing decided or started (the drift signals call for a retraining); run with --act to act"
    )
    table = lines[lines.index("drifted (3), the most severe first:") + 1 :]
    assert table[0].split() == ["feature", "kind", "statistic", "value", "threshold", "p-value", "test"]
    assert table[1].startswith("  prediction (model output)  numeric ") and "0.957" in table[1]  # most severe first
    assert table[2].split() == [
        "credit_score",
        "numeric",
        "KS",
        "distance",
        "0.294",
        "0.1",
        "<",
        "0.001",
        "Kolmogorov-Smirnov",
    ]
    assert table[3].split()[-3:] == ["0.1", "0.034", "chi-square"]
    assert "age" not in out and "e-" not in out  # only what drifted; never 4.467e-318


def test_a_drift_check_that_acted_says_its_decision_and_no_report_only_note(capsys):
    from retrain.cli.render import drift_summary

    drift_summary(_drift_result("cooldown", flagged=True))
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("decided by feature_drift: cooldown") and "report only" not in out
