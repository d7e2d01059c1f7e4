"""The gate report: what a reviewer reads before deciding, and what stays on record after.

Pure rendering from typed values to markdown, so it is tested without a flow, and the training flow,
the reviewers' artifact and the decision artifact all show the same text. The gain of each metric
is :func:`retrain.domain.metrics.gain`, the one the gate judges on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from retrain.domain.evidence import Evidence, Snapshot
from retrain.domain.gate import ComparisonInterval, GateDecision
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.metrics import gain
from retrain.domain.settings import ApprovalSettings
from retrain.domain.slices import SliceResult


@dataclass(frozen=True)
class ReportContext:
    """What a gate report names besides the checks: the versions, their metrics, lineage and links."""

    challenger: ModelVersionInfo
    challenger_metrics: Mapping[str, float]
    champion: ModelVersionInfo | None
    champion_metrics: Mapping[str, float] | None
    lineage: Mapping[str, str]  # what -> value, in the order shown
    links: Mapping[str, str]  # label -> URL (MLflow run, model version, plots)


def training_lineage(
    snapshot: Snapshot, holdout_days: tuple[str, str], evidence: Evidence, mlflow_run_id: str
) -> dict[str, str]:
    """What a reviewer needs to trace a challenger back to its data, contract, code and run, in the
    order the report shows it."""
    return {
        "data md5 (DVC)": snapshot.md5,
        "rows / batches": f"{snapshot.rows} / {snapshot.batches}",
        "days": f"{snapshot.first_day} .. {snapshot.last_day}",
        "holdout days": " .. ".join(holdout_days),
        "contract": f"{evidence.contract_name} v{evidence.contract_version} ({evidence.contract_hash[:12]})",
        "training key": evidence.training_key,
        "code": evidence.code_version,
        "MLflow run": mlflow_run_id,
        "flow run": evidence.flow_run_id,
        "triggered by": f"{evidence.triggered_by} ({evidence.reason})",
    }


def final_verdict(promoted: bool, note: str, reasons: tuple[str, ...], rollout: bool = False) -> tuple[str, str]:
    """The report's headline once the promotion step has answered: verdict and a one-line summary."""
    if promoted:
        return "PROMOTED", f"{note}."
    if rollout:
        return "ROLLING OUT", f"{note}: real traffic decides (retrain status shows the rollout)."
    return "REFUSED", f"{note}: {'; '.join(reasons)}."


class NamedCheck(Protocol):
    """What the outcome lines read of a check: a gate ``Check`` or its JSON form in a flow result."""

    @property
    def name(self) -> str: ...

    @property
    def passed(self) -> bool: ...

    @property
    def reason(self) -> str: ...


def outcome_lines(
    note: str,
    champion_version: str | None,
    challenger_version: str,
    reasons: Sequence[str],
    checks: Sequence[NamedCheck],
) -> list[str]:
    """What a training run says when it ends: the outcome, then one line per reason it was refused.

    Each reason of a failed check is prefixed with the check's name (its reason already gives the
    value against the threshold), so a user reads why without opening ``retrain history``; a reason
    no check gave (the champion moved meanwhile) stands alone. The CLI and the flow's last log line
    print the same lines.
    """
    champion = f"v{champion_version}" if champion_version else "none"
    lines = [f"{note}: champion {champion}, challenger v{challenger_version}"]
    failed = {check.reason: check.name for check in checks if not check.passed}
    for reason in reasons:
        name = failed.get(reason)
        lines.append(f"  - {name}: {reason}" if name else f"  - {reason}")
    return lines


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def _interval(decision: GateDecision) -> ComparisonInterval | None:
    """The champion-vs-challenger interval of the comparison check, if the gate compared at all."""
    return next((row for check in decision.checks for row in check.rows(ComparisonInterval)), None)


def _ci(interval: ComparisonInterval | None, metric: str) -> str:
    if interval is None or interval.metric != metric:
        return "—"
    lower, upper, confidence = interval.lower, interval.upper, interval.confidence
    if lower is None or upper is None or confidence is None:  # a point estimate: no interval to show
        return "—"
    return f"[{lower:+.4f}, {upper:+.4f}] ({confidence:.0%}, paired)"


def _metric_rows(decision: GateDecision, context: ReportContext) -> list[str]:
    champion_label = f"champion v{context.champion.version}" if context.champion else "champion"
    lines = [
        f"| metric | {champion_label} | challenger v{context.challenger.version} | gain | CI of the gain |",
        "|---|---|---|---|---|",
    ]
    interval = _interval(decision)
    for metric, value in context.challenger_metrics.items():
        base = context.champion_metrics.get(metric) if context.champion_metrics else None
        improvement = None if base is None else gain(metric, value, base)
        lines.append(f"| {metric} | {_fmt(base)} | {_fmt(value)} | {_signed(improvement)} | {_ci(interval, metric)} |")
    return lines


def _slice_verdict(row: SliceResult) -> str:
    if row.regressed:
        return "**REGRESSED**"
    return "ok" if row.judged else f"not judged: {row.note}"


def _slice_rows(decision: GateDecision, metric: str) -> list[str]:
    slices = [row for check in decision.checks for row in check.rows(SliceResult)]
    if not slices:
        return ["_No slice comparison (no champion yet, or no slices configured)._"]
    lines = [
        f"| slice | rows | champion {metric} | challenger {metric} | gain | CI | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    # regressions first, worst first; then the judged ones by gain; slices without a gain last
    ranked = sorted(slices, key=lambda row: (not row.regressed, row.gain is None, row.gain or 0.0))
    for row in ranked:
        ci = "—" if row.lower is None or row.upper is None else f"[{row.lower:+.4f}, {row.upper:+.4f}]"
        lines.append(
            f"| {row.name} | {row.rows} | {_fmt(row.champion)} | {_fmt(row.challenger)} | "
            f"{_signed(row.gain)} | {ci} | {_slice_verdict(row)} |"
        )
    return lines


def gate_report(
    model_name: str, mode: str, decision: GateDecision, verdict: str, summary: str, context: ReportContext
) -> str:
    """The gate report as markdown for ``model_name`` judged in gate ``mode`` (non-inferiority or
    superiority): the headline verdict and summary, metrics side by side, every check, the slices,
    the lineage and the links."""
    lines = [
        f"# Gate report for `{model_name}` v{context.challenger.version}: **{verdict}**",
        "",
        f"{summary} Primary metric: `{decision.primary_metric}`, mode `{mode}`.",
        "",
        "## Champion vs challenger (same holdout rows)",
        "",
        *_metric_rows(decision, context),
        "",
        "## Checks",
        "",
        "| check | result | value | threshold | reason |",
        "|---|---|---|---|---|",
    ]
    for check in decision.checks:
        lines.append(
            f"| {check.name} | {'pass' if check.passed else '**FAIL**'} | {_fmt(check.value)} | "
            f"{_fmt(check.threshold)} | {check.reason} |"
        )
    lines += ["", "## Slices", "", *_slice_rows(decision, decision.primary_metric)]
    lines += ["", "## Lineage", "", "| what | value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in context.lineage.items()]
    if context.links:
        lines += ["", "## Links", ""]
        lines += [f"- [{label}]({url})" for label, url in context.links.items()]
    return "\n".join(lines)


def review_instructions(flow_run_id: str, policy: ApprovalSettings) -> str:
    """The part of the gate report that tells a listed reviewer the one command to run."""
    names = " | ".join(policy.reviewers)
    return (
        "\n\n## How to decide\n\n"
        f"Listed reviewers: {', '.join(policy.reviewers)} (quorum {policy.quorum}); whoever triggered the run "
        "cannot decide. Each answer is signed with the reviewer's own key (`retrain reviewer keygen NAME`).\n\n"
        "From a terminal (signs and sends in one step):\n\n"
        f"```\nretrain approve {flow_run_id} --reviewer {names} --comment '…'\n"
        f"retrain reject {flow_run_id} --reviewer {names} --reason '…'\n```\n\n"
        "In this UI (*Resume*): print the signature, then paste it with the very same decision and comment:\n\n"
        f"```\nretrain sign {flow_run_id} --reviewer {names} --decision approve --comment '…'\n```\n"
    )
