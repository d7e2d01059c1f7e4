"""What ``retrain status`` says of each version, and the comparison it shows: the gate's, same rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from retrain.cli.render import gate_line
from retrain.domain.lifecycle import DecisionRecord, LedgerEntry, LedgerKind, ModelVersionInfo, version_state
from retrain.domain.status import latest_gate, version_row


@pytest.mark.parametrize(
    ("aliases", "decision", "state"),
    [
        (("champion",), "promoted", "champion"),
        (("champion",), "rolled back", "champion"),  # an alias says it first
        (("candidate",), "candidate", "rolling out"),
        (("challenger",), None, "challenger waiting"),
        (("previous-champion",), "promoted", "previous champion"),
        ((), "refused", "refused"),
        ((), "rejected", "rejected"),
        ((), "timed out", "timed out"),
        ((), "rolled back", "rolled back"),
        ((), "superseded", "superseded"),
        ((), "promoted", "retired"),
        ((), "candidate", "rollout interrupted"),
        ((), None, "registered"),
    ],
)
def test_a_version_state_reads_its_alias_first_then_its_decision(aliases, decision, state):
    assert version_state(aliases, decision) == state


def test_a_version_row_is_plain_json_with_mlflow_alias_spellings():
    info = ModelVersionInfo(
        "3", "run", {"roc_auc": 0.7}, "m" * 32, {"name": "c", "version": 1}, aliases=("previous-champion",)
    )
    row = version_row(info)
    assert row["aliases"] == ["previous-champion"] and row["state"] == "previous champion" and row["decision"] is None


def _entry(kind: LedgerKind, challenger: str, champion: str | None, gain: float) -> LedgerEntry:
    holdout = {
        "rows": 900,
        "challenger": {"version": challenger, "metrics": {"roc_auc": 0.7389, "log_loss": 0.5}},
        "champion": None if champion is None else {"version": champion, "metrics": {"roc_auc": 0.7379}},
    }
    details = [{"metric": "roc_auc", "gain": gain, "lower": gain - 0.01, "upper": gain + 0.01}]
    checks: list[dict[str, Any]] = [{"name": "absolute_floor"}, {"name": "non_inferiority", "details": details}]
    return LedgerEntry(
        "m",
        kind,
        champion,
        challenger,
        champion,
        "ci",
        checks=checks,
        evidence={"holdout": holdout},
        recorded_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )


def test_latest_gate_is_the_newest_comparison_on_the_same_rows_with_the_version_decision():
    entries = [
        _entry("promotion", "1", None, 0.0),
        _entry("refusal", "3", "2", 0.001),
        _entry("rollback", "2", None, 0.0),
    ]
    gate = latest_gate(entries, {"3": "rejected"}, "roc_auc")
    assert gate is not None
    assert (gate["challenger"], gate["champion"], gate["outcome"], gate["rows"]) == ("3", "2", "rejected", 900)
    assert (gate["challenger_value"], gate["champion_value"]) == (0.7389, 0.7379)
    assert gate["gain"] == pytest.approx(0.001) and gate["ci"] == pytest.approx([-0.009, 0.011])
    line = gate_line(gate)
    assert line.startswith("latest gate, on the same 900 holdout rows: v3 roc_auc 0.7389 vs champion v2 0.7379")
    assert line.endswith("(gain +0.0010, CI [-0.0090, +0.0110]): rejected")


def test_no_gate_line_before_a_comparison_and_the_kind_when_no_decision_is_known():
    assert latest_gate([_entry("promotion", "1", None, 0.0)], {}, "roc_auc") is None
    gate = latest_gate([_entry("timeout", "4", "2", 0.01)], {}, None)
    assert gate is not None and gate["outcome"] == "timeout" and gate["metric"] == "roc_auc"


def test_a_later_decision_keeps_the_earlier_one_in_its_history():
    first = DecisionRecord(
        "candidate",
        "all checks passed; rolling out",
        "1",
        ("ada",),
        decided_at="t1",
        rollout={"strategy": "canary", "share": 0.5},
    )
    ended = first.then("rolled back", "realized gain below the margin", "t2")
    assert (ended.decision, ended.reasons, ended.reviewers, ended.rollout) == (
        "rolled back",
        "realized gain below the margin",
        ("ada",),
        {"strategy": "canary", "share": 0.5},
    )
    assert ended.history == (
        {"decision": "candidate", "reasons": "all checks passed; rolling out", "decided_at": "t1"},
    )
    assert DecisionRecord.from_dict(ended.to_dict()) == ended
