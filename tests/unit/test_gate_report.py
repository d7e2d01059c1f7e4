"""The gate report renderer: the markdown reviewers read, from hand-made checks (no flow, no services)."""

from __future__ import annotations

from retrain.domain.gate import Check, ComparisonInterval, GateDecision, LatencyMeasure
from retrain.domain.gate_report import ReportContext, gate_report, review_instructions
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.settings import ApprovalSettings
from retrain.domain.slices import SliceResult

V1 = ModelVersionInfo("1", "run-1", {}, None, None)
V2 = ModelVersionInfo("2", "run-2", {}, None, None)
CHALLENGER = {"roc_auc": 0.81, "log_loss": 0.38}
CHAMPION = {"roc_auc": 0.80, "log_loss": 0.40}
LINEAGE = {"data md5 (DVC)": "0123abcd", "training key": "k" * 32, "flow run": "run-42"}
LINKS = {"MLflow run": "http://mlflow/#/runs/run-2", "plot: plots/roc.png": "http://mlflow/#/runs/run-2/plots/roc.png"}

FLOOR = Check("absolute_floor", True, 0.81, 0.7, "roc_auc 0.8100 meets the floor 0.7000")
INTERVAL = ComparisonInterval("roc_auc", 0.01, -0.002, 0.023, confidence=0.95, resamples=500, rows=1000)
COMPARISON = Check("non_inferiority", True, -0.002, -0.01, "lower bound exceeds -0.0100", (INTERVAL,))
CALIBRATION = Check("calibration", False, 0.12, 0.05, "expected calibration error 0.1200 > 0.0500")
LATENCY = Check(
    "latency_single",
    True,
    1.1,
    2.0,
    "ratio 1.10 ≤ 2.00",
    (LatencyMeasure("ratio to champion", 1.1, 2.0, True), LatencyMeasure("median ms", 1.0, 25.0, True)),
)
SLICES = Check(
    "slices",
    False,
    1.0,
    0.0,
    "3 of 3 slices judged: 1 regressed",
    (
        SliceResult("region=north", 400, 0.80, 0.82, 0.02, -0.01, 0.05, 0.9, False, True),
        SliceResult("region=east", 300, 0.81, 0.70, -0.11, -0.16, -0.06, 0.001, True, True),
        SliceResult("region=tiny", 12, None, None, None, None, None, None, False, False, "12 rows < 100"),
        SliceResult("region=south", 350, 0.79, 0.785, -0.005, -0.04, 0.03, 0.6, False, True),
    ),
)


def _report(decision: GateDecision, champion: bool = True, links: dict[str, str] | None = None) -> str:
    context = ReportContext(
        V2,
        CHALLENGER,
        V1 if champion else None,
        CHAMPION if champion else None,
        LINEAGE,
        LINKS if links is None else links,
    )
    return gate_report("credit-default", "non_inferiority", decision, "REFUSED", "Two checks failed.", context)


def test_the_whole_report_reads_as_before():
    decision = GateDecision((FLOOR, COMPARISON, CALIBRATION), "roc_auc")
    assert _report(decision, links={}) == "\n".join(
        [
            "# Gate report for `credit-default` v2: **REFUSED**",
            "",
            "Two checks failed. Primary metric: `roc_auc`, mode `non_inferiority`.",
            "",
            "## Champion vs challenger (same holdout rows)",
            "",
            "| metric | champion v1 | challenger v2 | gain | CI of the gain |",
            "|---|---|---|---|---|",
            "| roc_auc | 0.8000 | 0.8100 | +0.0100 | [-0.0020, +0.0230] (95%, paired) |",
            "| log_loss | 0.4000 | 0.3800 | +0.0200 | — |",
            "",
            "## Checks",
            "",
            "| check | result | value | threshold | reason |",
            "|---|---|---|---|---|",
            "| absolute_floor | pass | 0.8100 | 0.7000 | roc_auc 0.8100 meets the floor 0.7000 |",
            "| non_inferiority | pass | -0.0020 | -0.0100 | lower bound exceeds -0.0100 |",
            "| calibration | **FAIL** | 0.1200 | 0.0500 | expected calibration error 0.1200 > 0.0500 |",
            "",
            "## Slices",
            "",
            "_No slice comparison (no champion yet, or no slices configured)._",
            "",
            "## Lineage",
            "",
            "| what | value |",
            "|---|---|",
            "| data md5 (DVC) | `0123abcd` |",
            f"| training key | `{'k' * 32}` |",
            "| flow run | `run-42` |",
        ]
    )


def test_passed_and_failed_checks_each_get_a_row():
    report = _report(GateDecision((FLOOR, CALIBRATION, LATENCY), "roc_auc"))
    assert "| absolute_floor | pass | 0.8100 | 0.7000 | roc_auc 0.8100 meets the floor 0.7000 |" in report
    assert "| calibration | **FAIL** | 0.1200 | 0.0500 | expected calibration error 0.1200 > 0.0500 |" in report
    assert "| latency_single | pass | 1.1000 | 2.0000 | ratio 1.10 ≤ 2.00 |" in report


def test_gain_is_positive_when_better_whatever_the_metric_direction():
    report = _report(GateDecision((FLOOR,), "roc_auc"))
    assert "| roc_auc | 0.8000 | 0.8100 | +0.0100 | — |" in report  # no comparison check: no CI
    assert "| log_loss | 0.4000 | 0.3800 | +0.0200 | — |" in report  # a lower loss is a gain


def test_a_point_estimate_shows_no_interval():
    point = Check(
        "non_inferiority", True, 0.01, -0.01, "point estimate", (ComparisonInterval("roc_auc", 0.01, None, None),)
    )
    report = _report(GateDecision((FLOOR, point), "roc_auc"))
    assert "| roc_auc | 0.8000 | 0.8100 | +0.0100 | — |" in report


def test_without_a_champion_there_is_nothing_to_compare():
    no_champion = Check("non_inferiority", True, None, -0.01, "no champion yet: nothing to compare with")
    report = _report(GateDecision((FLOOR, no_champion), "roc_auc"), champion=False)
    assert "| metric | champion | challenger v2 | gain | CI of the gain |" in report
    assert "| roc_auc | — | 0.8100 | — | — |" in report
    assert "| non_inferiority | pass | — | -0.0100 | no champion yet: nothing to compare with |" in report
    assert "_No slice comparison (no champion yet, or no slices configured)._" in report


def test_slices_list_regressions_first_then_by_gain_and_unjudged_last():
    report = _report(GateDecision((FLOOR, SLICES), "roc_auc"))
    rows = [line for line in report.splitlines() if line.startswith("| region=")]
    assert rows == [
        "| region=east | 300 | 0.8100 | 0.7000 | -0.1100 | [-0.1600, -0.0600] | **REGRESSED** |",
        "| region=south | 350 | 0.7900 | 0.7850 | -0.0050 | [-0.0400, +0.0300] | ok |",
        "| region=north | 400 | 0.8000 | 0.8200 | +0.0200 | [-0.0100, +0.0500] | ok |",
        "| region=tiny | 12 | — | — | — | — | not judged: 12 rows < 100 |",
    ]
    assert "| slice | rows | champion roc_auc | challenger roc_auc | gain | CI | verdict |" in report


def test_lineage_and_links_are_listed_in_order():
    report = _report(GateDecision((FLOOR,), "roc_auc"))
    lineage = report.split("## Lineage")[1].split("## Links")[0]
    assert lineage.strip().splitlines()[2:] == [f"| {key} | `{value}` |" for key, value in LINEAGE.items()]
    assert report.endswith(
        "## Links\n\n- [MLflow run](http://mlflow/#/runs/run-2)\n"
        "- [plot: plots/roc.png](http://mlflow/#/runs/run-2/plots/roc.png)"
    )
    assert "## Links" not in _report(GateDecision((FLOOR,), "roc_auc"), links={})


def test_review_instructions_name_the_run_and_every_listed_reviewer():
    policy = ApprovalSettings(
        reviewers=("ada", "grace"), quorum=1, timeout_minutes=5, poll_seconds=1, keys_dir="reviewers"
    )
    text = review_instructions("run-42", policy)
    assert text.startswith("\n\n## How to decide\n\nListed reviewers: ada, grace (quorum 1)")
    assert "retrain approve run-42 --reviewer ada | grace --comment '…'" in text
    assert "retrain reject run-42 --reviewer ada | grace --reason '…'" in text
    assert "retrain sign run-42 --reviewer ada | grace --decision approve --comment '…'" in text


def test_training_lineage_traces_the_challenger_to_data_contract_code_and_runs():
    from retrain.domain.evidence import Evidence, Snapshot
    from retrain.domain.gate_report import training_lineage

    snapshot = Snapshot("data/training.parquet", "0123abcd", 1500, 6, "2026-01-01", "2026-01-06")
    evidence = Evidence(
        "0123abcd", "loans", 3, "h" * 64, "p" * 64, "retrain==1", "k" * 32, "run-42", "alice", "nightly"
    )
    lineage = training_lineage(snapshot, ("2026-01-05", "2026-01-06"), evidence, "mlflow-run-7", "4")
    assert list(lineage) == [
        "data md5 (DVC)",
        "rows / batches",
        "days",
        "holdout days",
        "contract",
        "training key",
        "code",
        "model version",
        "MLflow run",
        "flow run",
        "triggered by",
    ]
    assert lineage["model version"] == "v4"
    assert "model version" not in training_lineage(snapshot, ("a", "b"), evidence, "mlflow-run-7")
    assert lineage["rows / batches"] == "1500 / 6"
    assert lineage["holdout days"] == "2026-01-05 .. 2026-01-06"
    assert lineage["contract"] == f"loans v3 ({'h' * 12})"
    assert lineage["MLflow run"] == "mlflow-run-7" and lineage["flow run"] == "run-42"
    assert lineage["triggered by"] == "alice (nightly)"


def test_final_verdict_names_the_reasons_of_a_refusal():
    from retrain.domain.gate_report import final_verdict

    assert final_verdict(True, "promoted v2", ()) == ("PROMOTED", "promoted v2.")
    assert final_verdict(False, "refused v3", ("slices", "calibration")) == (
        "REFUSED",
        "refused v3: slices; calibration.",
    )


def test_outcome_lines_name_each_failed_check_with_its_value_and_threshold():
    from retrain.application.results import GateCheckResult
    from retrain.domain.gate_report import outcome_lines

    moved = "champion moved from no champion to v4 while this challenger was judged; re-run to judge against v4"
    checks = (FLOOR, COMPARISON, CALIBRATION, LATENCY)
    lines = outcome_lines("refused: champion unchanged", None, "1", (moved, CALIBRATION.reason), checks)
    assert lines == [
        "refused: champion unchanged: champion none, challenger v1",
        f"  - {moved}",  # no check gave it: it stands alone
        "  - calibration: expected calibration error 0.1200 > 0.0500",
    ]
    # the flow result's JSON form of the checks reads the same (the CLI prints from it)
    as_results = [GateCheckResult.model_validate(check.to_dict(details=False)) for check in checks]
    assert outcome_lines("refused: champion unchanged", None, "1", (moved, CALIBRATION.reason), as_results) == lines
    promoted = outcome_lines("promoted", "2", "2", (), checks)
    assert promoted == ["promoted: champion v2, challenger v2"]


FLOW_RUN = "0b6f7c1e-1f7a-4a53-9d3c-2f0c6a4e8b11"


def test_lineage_ids_link_to_their_pages_where_the_uis_are_known():
    from retrain.domain.gate_report import lineage_links

    links = lineage_links(
        mlflow_ui="http://mlflow:5000",
        experiment_id="7",
        run_id="run-2",
        model_name="credit-default",
        version="2",
        prefect_ui="http://prefect:4200",
        flow_run_id=FLOW_RUN,
    )
    assert links == {
        "model version": "http://mlflow:5000/#/models/credit-default/versions/2",
        "MLflow run": "http://mlflow:5000/#/experiments/7/runs/run-2",
        "flow run": f"http://prefect:4200/runs/flow-run/{FLOW_RUN}",
    }
    lineage = {"data md5 (DVC)": "0123abcd", "model version": "v2", "MLflow run": "run-2", "flow run": FLOW_RUN}
    context = ReportContext(V2, CHALLENGER, V1, CHAMPION, lineage, {}, lineage_links=links)
    report = gate_report(
        "credit-default", "non_inferiority", GateDecision((FLOOR,), "roc_auc"), "PROMOTED", "", context
    )
    assert "| data md5 (DVC) | `0123abcd` |" in report  # no page of its own: plain, copyable
    assert "| model version | [`v2`](http://mlflow:5000/#/models/credit-default/versions/2) |" in report
    assert "| MLflow run | [`run-2`](http://mlflow:5000/#/experiments/7/runs/run-2) |" in report
    assert f"| flow run | [`{FLOW_RUN}`](http://prefect:4200/runs/flow-run/{FLOW_RUN}) |" in report


def test_without_uis_the_lineage_ids_stay_plain_text():
    from retrain.domain.gate_report import lineage_links

    common = {"experiment_id": "7", "run_id": "run-2", "model_name": "m", "version": "2"}
    assert lineage_links(mlflow_ui=None, prefect_ui=None, flow_run_id=FLOW_RUN, **common) == {}
    only_prefect = lineage_links(mlflow_ui="", prefect_ui="http://p", flow_run_id=FLOW_RUN, **common)
    assert list(only_prefect) == ["flow run"]
    assert lineage_links(mlflow_ui=None, prefect_ui="http://p", flow_run_id="local", **common) == {}


def test_the_comparison_plots_are_listed_linked_and_with_their_files():
    from retrain.domain.links import FigureRef

    figures = (
        FigureRef("comparison/roc.png", "http://mlflow/#/experiments/1/runs/run-2/artifacts/comparison/roc.png",
                  "/state/artifacts/run-2/artifacts/comparison/roc.png"),
        FigureRef("comparison/slices.png", None, "s3://bucket/run-2/artifacts/comparison/slices.png"),
    )  # fmt: skip
    context = ReportContext(V2, CHALLENGER, V1, CHAMPION, LINEAGE, {}, figures=figures)
    report = gate_report(
        "credit-default", "non_inferiority", GateDecision((FLOOR,), "roc_auc"), "PROMOTED", "", context
    )
    section = report.split("## Comparison plots\n\n")[1].split("\n\n## Lineage")[0]
    assert section.splitlines() == [
        "Champion v1 and challenger v2 overlaid on the same holdout rows, in the challenger's MLflow run under "
        "`comparison/`:",
        "",
        "- [`comparison/roc.png`](http://mlflow/#/experiments/1/runs/run-2/artifacts/comparison/roc.png): "
        "file `/state/artifacts/run-2/artifacts/comparison/roc.png`",
        "- `comparison/slices.png`: file `s3://bucket/run-2/artifacts/comparison/slices.png`",
    ]
    assert report.index("## Slices") < report.index("## Comparison plots") < report.index("## Lineage")
    first = ReportContext(V2, CHALLENGER, None, None, LINEAGE, {}, figures=figures[:1])
    alone = gate_report("credit-default", "non_inferiority", GateDecision((FLOOR,), "roc_auc"), "PROMOTED", "", first)
    assert "Challenger v2 alone (no champion yet) on the same holdout rows, in the challenger's MLflow" in alone
    again = ReportContext(V2, CHALLENGER, V2, CHALLENGER, LINEAGE, {}, figures=figures[:1])
    judged_before = gate_report("credit-default", "non_inferiority", GateDecision((FLOOR,), "roc_auc"), "", "", again)
    assert "v2 is the champion already: the comparison drawn when it was judged, in the challenger's" in judged_before
    assert "## Comparison plots" not in _report(GateDecision((FLOOR,), "roc_auc"))  # nothing logged, no section
