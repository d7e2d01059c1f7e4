"""The gate report: what a reviewer reads before deciding, and what stays on record after.

Pure rendering from typed values to markdown, so it is tested without a flow, and the training flow,
the reviewers' artifact and the decision artifact all show the same text. The gain of each metric
is :func:`retrain.domain.metrics.gain`, the one the gate judges on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from retrain.domain.evidence import Evidence, Snapshot
from retrain.domain.gate import ComparisonInterval, GateDecision
from retrain.domain.lifecycle import ModelVersionInfo
from retrain.domain.links import FigureRef, markdown_link, mlflow_run_url, mlflow_version_url, prefect_flow_run_url
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
    lineage_links: Mapping[str, str] = field(default_factory=dict)  # what -> URL of the value's page
    figures: tuple[FigureRef, ...] = ()  # the comparison plots in the challenger's run


@dataclass(frozen=True)
class ReportLinks:
    """Where a gate report sends its reader: the links section, the lineage ids' pages, the figures."""

    links: Mapping[str, str] = field(default_factory=dict)  # label -> URL
    lineage: Mapping[str, str] = field(default_factory=dict)  # lineage row -> URL of its value's page
    figures: tuple[FigureRef, ...] = ()


#: The lineage rows whose values have a page in a UI (see :func:`lineage_links`).
MLFLOW_RUN: Final = "MLflow run"
MODEL_VERSION: Final = "model version"
FLOW_RUN: Final = "flow run"


def training_lineage(
    snapshot: Snapshot,
    holdout_days: tuple[str, str],
    evidence: Evidence,
    mlflow_run_id: str,
    model_version: str | None = None,
) -> dict[str, str]:
    """What a reviewer needs to trace a challenger back to its data, contract, code and run, in the
    order the report shows it."""
    lineage = {
        "data md5 (DVC)": snapshot.md5,
        "rows / batches": f"{snapshot.rows} / {snapshot.batches}",
        "days": f"{snapshot.first_day} .. {snapshot.last_day}",
        "holdout days": " .. ".join(holdout_days),
        "contract": f"{evidence.contract_name} v{evidence.contract_version} ({evidence.contract_hash[:12]})",
        "training key": evidence.training_key,
        "code": evidence.code_version,
    }
    if model_version is not None:
        lineage[MODEL_VERSION] = f"v{model_version}"
    lineage[MLFLOW_RUN] = mlflow_run_id
    lineage[FLOW_RUN] = evidence.flow_run_id
    lineage["triggered by"] = f"{evidence.triggered_by} ({evidence.reason})"
    return lineage


def lineage_links(
    *,
    mlflow_ui: str | None,
    experiment_id: str,
    run_id: str,
    model_name: str,
    version: str,
    prefect_ui: str | None,
    flow_run_id: str,
) -> dict[str, str]:
    """The pages behind the lineage ids a reviewer follows (the run, the model version, the flow run),
    keyed as :func:`training_lineage` names them; only those whose UI URL is known (the others stay
    plain text)."""
    links: dict[str, str] = {}
    if mlflow_ui:
        links[MODEL_VERSION] = mlflow_version_url(mlflow_ui, model_name, version)
        links[MLFLOW_RUN] = mlflow_run_url(mlflow_ui, experiment_id, run_id)
    flow_run = prefect_flow_run_url(prefect_ui, flow_run_id)
    if flow_run is not None:
        links[FLOW_RUN] = flow_run
    return links


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


def _figure_line(figure: FigureRef) -> str:
    line = f"- {markdown_link(figure.path, figure.url)}"
    return f"{line}: file `{figure.location}`" if figure.location else line


def _figure_lines(context: ReportContext) -> list[str]:
    """The comparison plots, linked: a Prefect markdown artifact cannot show the images themselves."""
    if not context.figures:
        return []
    version, champion = context.challenger.version, context.champion
    folder = context.figures[0].path.rpartition("/")[0]
    if champion is None:
        shown = f"Challenger v{version} alone (no champion yet) on the same holdout rows"
    elif champion.version == version:  # judged again: its run keeps what its own gate drew
        shown = f"v{version} is the champion already: the comparison drawn when it was judged"
    else:
        shown = f"Champion v{champion.version} and challenger v{version} overlaid on the same holdout rows"
    return [
        "",
        "## Comparison plots",
        "",
        f"{shown}, in the challenger's MLflow run under `{folder}/`:",
        "",
        *(_figure_line(figure) for figure in context.figures),
    ]


def gate_report(
    model_name: str, mode: str, decision: GateDecision, verdict: str, summary: str, context: ReportContext
) -> str:
    """The gate report as markdown for ``model_name`` judged in gate ``mode`` (non-inferiority or
    superiority): the headline verdict and summary, metrics side by side, every check, the slices,
    the comparison plots, the lineage (ids linked to their pages where the UIs are known) and the links."""
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
    lines += _figure_lines(context)
    lines += ["", "## Lineage", "", "| what | value |", "|---|---|"]
    lines += [
        f"| {key} | {markdown_link(value, context.lineage_links.get(key))} |" for key, value in context.lineage.items()
    ]
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
