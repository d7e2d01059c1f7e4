"""The promotion gate: a list of checks, each pass/fail with its value, threshold and reason.

A gate is data, not an if-statement, so later checks (bootstrap CIs, slices, guardrails, a human
reviewer) are added to the list without touching the others, and every decision can be reported
and stored exactly as it was taken.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

from retrain.domain.bootstrap import BOOTSTRAP_METRICS, paired_bootstrap
from retrain.domain.latency import LatencyComparison, judge_latency
from retrain.domain.metrics import (
    calibration_allowance,
    calibration_noise,
    expected_calibration_error,
    gain,
    meets_floor,
)
from retrain.domain.settings import GateSettings, TaskKind
from retrain.domain.slices import SliceResult, slice_regressions


@dataclass(frozen=True)
class ComparisonInterval:
    """The gain behind a champion-vs-challenger verdict: a paired bootstrap interval, or (no
    ``confidence``) a point estimate for a metric without a bootstrap form, whose bounds are then None."""

    metric: str
    gain: float
    lower: float | None
    upper: float | None
    confidence: float | None = None
    resamples: int | None = None
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """As stored in the ledger and gate.json: a point estimate has no confidence, resamples or rows."""
        data = asdict(self)
        if self.confidence is None:
            for key in ("confidence", "resamples", "rows"):
                del data[key]
        return data


@dataclass(frozen=True)
class LatencyMeasure:
    """One of a latency check's two comparisons: the ratio to the champion, or the absolute ceiling."""

    measure: str
    value: float | None
    threshold: float
    passed: bool | None  # None: no champion to compare the ratio with

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: A row behind a check's verdict; each kind knows its own fields and its JSON form.
CheckDetail = ComparisonInterval | LatencyMeasure | SliceResult
D = TypeVar("D", ComparisonInterval, LatencyMeasure, SliceResult)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    reason: str
    details: tuple[CheckDetail, ...] = ()  # rows behind the verdict (bootstrap interval, latency, slices)

    def rows(self, kind: type[D]) -> tuple[D, ...]:
        """The detail rows of one kind (a report reads the slices of the slice check, for instance)."""
        return tuple(row for row in self.details if isinstance(row, kind))

    def to_dict(self, details: bool = True) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "reason": self.reason,
            "details": [row.to_dict() for row in self.details] if details else [],
        }


@dataclass(frozen=True)
class GateInputs:
    """What the checks judge: both models scored on the same holdout rows (metrics and predictions)."""

    challenger: Mapping[str, float]
    champion: Mapping[str, float] | None
    labels: np.ndarray | None = None
    challenger_predictions: np.ndarray | None = None
    champion_predictions: np.ndarray | None = None
    # measured: model_mb and, per kind (single, batch), latency_<kind>_ms (challenger's median wall-clock),
    # latency_<kind>_cpu_ms (its median CPU time) and, with a champion, latency_<kind>_champion_ms and
    # latency_<kind>_champion_cpu_ms, latency_<kind>_ratio (median of the interleaved per-round ratios,
    # of CPU times when both were measured)
    guardrails: Mapping[str, float] | None = None
    slices: Mapping[str, np.ndarray] | None = None  # slice name -> row mask over the holdout


GateCheck = Callable[[GateInputs], Check]


@dataclass(frozen=True)
class GateDecision:
    checks: tuple[Check, ...]
    primary_metric: str

    @property
    def promote(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(check.reason for check in self.checks if not check.passed)

    def with_check(self, check: Check) -> GateDecision:
        """The same decision with one more check (the reviewers' verdict comes after the automatic ones)."""
        return GateDecision(checks=(*self.checks, check), primary_metric=self.primary_metric)

    def check(self, name: str) -> Check | None:
        return next((check for check in self.checks if check.name == name), None)

    def to_dict(self, details: bool = True) -> dict[str, Any]:
        """Everything, or (``details=False``) one line per check, short enough for a registry tag."""
        return {
            "promote": self.promote,
            "primary_metric": self.primary_metric,
            "checks": [check.to_dict(details) for check in self.checks],
            "reasons": list(self.reasons),
        }


def floor_check(metric: str, floor: float) -> GateCheck:
    def check(inputs: GateInputs) -> Check:
        value = inputs.challenger[metric]
        ok = meets_floor(metric, value, floor)
        relation = "meets" if ok else "misses"
        return Check("absolute_floor", ok, value, floor, f"{metric} {value:.4f} {relation} the floor {floor:.4f}")

    return check


def comparison_check(settings: GateSettings, seed: int) -> GateCheck:
    """Champion vs challenger on the same rows, judged on the paired bootstrap's lower bound.

    non-inferiority: the lower bound of the gain must exceed −max_drop (not meaningfully worse);
    superiority: it must exceed min_gain (surely better). PR AUC and macro-F1 have no bootstrap form
    here, so they are judged on the point estimate, and the reason says so.

    The check's value is the number compared with the threshold (the lower bound, or the point
    estimate), and the reason states that very number first, then the gain and its interval: a
    reviewer reading "value −0.004, threshold −0.01" next to "gain +0.012" would otherwise take the
    gain for what was compared.
    """
    metric, mode = settings.primary_metric, settings.mode
    threshold = -settings.max_drop if mode == "non_inferiority" else settings.min_gain
    name = mode
    rule = mode.replace("_", "-")

    def check(inputs: GateInputs) -> Check:
        if inputs.champion is None:
            return Check(name, True, None, threshold, "no champion yet: nothing to compare with")
        labels, champion, challenger = inputs.labels, inputs.champion_predictions, inputs.challenger_predictions
        if metric in BOOTSTRAP_METRICS and labels is not None and champion is not None and challenger is not None:
            result = paired_bootstrap(
                metric,
                labels,
                champion,
                challenger,
                resamples=settings.bootstrap_resamples,
                confidence=settings.confidence,
                seed=seed,
            )
            bound = result.lower
            interval = ComparisonInterval(
                metric,
                result.gain,
                result.lower,
                result.upper,
                confidence=settings.confidence,
                resamples=result.resamples,
                rows=result.rows,
            )
            compared = f"the lower bound of the {settings.confidence:.0%} CI of the {metric} gain, {bound:+.4f},"
            evidence = (
                f"gain {result.gain:+.4f}, CI [{result.lower:+.4f}, {result.upper:+.4f}] over "
                f"{result.resamples} paired resamples of {result.rows} rows"
            )
        else:
            bound = gain(metric, inputs.challenger[metric], inputs.champion[metric])
            interval = ComparisonInterval(metric, bound, None, None)
            compared = f"the {metric} gain {bound:+.4f}"
            evidence = f"a point estimate: no bootstrap for {metric}"
        ok = bound > threshold
        verdict = "exceeds" if ok else "does not exceed"
        return Check(
            name, ok, bound, threshold, f"{rule}: {compared} {verdict} {threshold:+.4f} ({evidence})", (interval,)
        )

    return check


def calibration_check(limit: float, confidence: float) -> GateCheck:
    """Probabilistic tasks: binary ECE of P(positive); multiclass ECE of the top-class probability.

    The ECE of even a perfectly calibrated model is not zero on a finite holdout (about 0.06 on 300
    rows, 0.002 on a million), so a fixed limit would refuse every good model of a small weekly batch.
    The check refuses when the measured ECE shows, at the gate's ``confidence``, an error above the
    limit (:func:`calibration_allowance`); on large holdouts that is the limit itself.
    """

    def check(inputs: GateInputs) -> Check:
        if inputs.labels is None or inputs.challenger_predictions is None:
            return Check("calibration", False, None, limit, "no holdout predictions to measure calibration on")
        ece = expected_calibration_error(inputs.labels, inputs.challenger_predictions)
        noise = calibration_noise(inputs.challenger_predictions)
        allowed = calibration_allowance(limit, noise, confidence)
        ok = ece <= allowed
        chance = (
            f" (limit {limit:.4f}; a calibrated model shows {noise.mean:.4f} ± {noise.sd:.4f} by chance on"
            f" {noise.rows} rows)"
            if allowed - limit >= 0.00005
            else ""
        )
        return Check(
            "calibration",
            ok,
            ece,
            allowed,
            f"expected calibration error {ece:.4f} {'≤' if ok else '>'} {allowed:.4f}{chance}",
        )

    return check


def bias_check(limit: float) -> GateCheck:
    """Regression: the holdout's mean residual (actual − predicted) in units of the target's standard
    deviation. A model can rank and fit well yet sit systematically high or low (a shifted level after
    a drift); that is invisible in R² when small and costly in sums (stock, budgets)."""

    def check(inputs: GateInputs) -> Check:
        if inputs.labels is None or inputs.challenger_predictions is None:
            return Check("bias", False, None, limit, "no holdout predictions to measure the bias on")
        y = np.asarray(inputs.labels, dtype="float64")
        residual = float(np.mean(y - np.asarray(inputs.challenger_predictions, dtype="float64")))
        spread = float(np.std(y))
        value = abs(residual) / spread if spread > 0 else (0.0 if residual == 0 else float("inf"))
        ok = value <= limit
        return Check(
            "bias",
            ok,
            value,
            limit,
            f"mean residual {residual:+.4g} = {value:.3f} standard deviations of the target "
            f"{'≤' if ok else '>'} {limit:.3f}",
        )

    return check


def limit_check(name: str, measure: str, limit: float, unit: str) -> GateCheck:
    """A measured guardrail (latency, size) against its ceiling; unmeasured counts as failed."""

    def check(inputs: GateInputs) -> Check:
        value = (inputs.guardrails or {}).get(measure)
        if value is None:
            return Check(name, False, None, limit, f"{measure} was not measured")
        ok = value <= limit
        return Check(name, ok, value, limit, f"{measure} {value:.2f} {unit} {'≤' if ok else '>'} {limit:.2f} {unit}")

    return check


def latency_check(name: str, kind: str, max_ratio: float, ceiling_ms: float) -> GateCheck:
    """Challenger vs champion timed in the same run (ratio limit), plus a generous absolute ceiling.

    The check's value and threshold are the ratio and its limit when there is a champion, else the
    challenger's median and the ceiling; ``details`` carries both comparisons.
    """

    def check(inputs: GateInputs) -> Check:
        measured = inputs.guardrails or {}
        milliseconds = measured.get(f"latency_{kind}_ms")
        if milliseconds is None:
            return Check(name, False, None, ceiling_ms, f"latency_{kind}_ms was not measured")
        ratio, champion_ms = measured.get(f"latency_{kind}_ratio"), measured.get(f"latency_{kind}_champion_ms")
        rounds = int(measured.get(f"latency_{kind}_rounds", 0))
        cpu_ms = measured.get(f"latency_{kind}_cpu_ms")
        champion_cpu_ms = measured.get(f"latency_{kind}_champion_cpu_ms")
        comparison = LatencyComparison(milliseconds, champion_ms, ratio, rounds, cpu_ms, champion_cpu_ms)
        verdict = judge_latency(comparison, max_ratio, ceiling_ms, f"latency_{kind}")
        rows = (
            LatencyMeasure("ratio to champion", ratio, max_ratio, verdict.ratio_passed),
            LatencyMeasure(
                "median ms" if cpu_ms is None else "median CPU ms",
                comparison.ceiling_ms,
                ceiling_ms,
                verdict.ceiling_passed,
            ),
        )
        if ratio is None:
            return Check(name, verdict.passed, comparison.ceiling_ms, ceiling_ms, verdict.reason, rows)
        return Check(name, verdict.passed, ratio, max_ratio, verdict.reason, rows)

    return check


def slices_check(settings: GateSettings, seed: int) -> GateCheck:
    """No Holm-significant regression past max_drop in any slice big enough to judge."""
    metric, config = settings.primary_metric, settings.slices

    def check(inputs: GateInputs) -> Check:
        arrays = (inputs.labels, inputs.champion_predictions, inputs.challenger_predictions)
        if inputs.champion is None:
            return Check("slices", True, None, None, "no champion yet: nothing to compare with")
        labels, champion, challenger = arrays
        if not inputs.slices or labels is None or champion is None or challenger is None:
            return Check("slices", True, None, None, "no slices configured or no predictions to slice")
        if metric not in BOOTSTRAP_METRICS:
            return Check("slices", True, None, None, f"no per-slice bootstrap for {metric}: slices not judged")
        results = slice_regressions(
            metric,
            labels,
            champion,
            challenger,
            inputs.slices,
            max_drop=settings.max_drop,
            min_rows=config.min_rows,
            alpha=config.alpha,
            resamples=settings.bootstrap_resamples,
            confidence=settings.confidence,
            seed=seed,
        )
        judged = [r for r in results if r.judged]
        regressed = [r for r in judged if r.regressed]
        summary = f"{len(judged)} of {len(results)} slices judged (Holm, alpha {config.alpha})"
        details = tuple(results)
        if not regressed:
            return Check(
                "slices",
                True,
                float(len(regressed)),
                0.0,
                f"{summary}: no regression past -{settings.max_drop}",
                details,
            )
        ranked = sorted(regressed, key=lambda r: r.gain if r.gain is not None else 0.0)
        worst = "; ".join(f"{r.name}: gain {r.gain:+.4f}, CI [{r.lower:+.4f}, {r.upper:+.4f}]" for r in ranked[:3])
        more = f" and {len(ranked) - 3} more" if len(ranked) > 3 else ""
        return Check(
            "slices",
            False,
            float(len(regressed)),
            0.0,
            f"{summary}: {len(regressed)} regressed, worst {worst}{more}",
            details,
        )

    return check


def default_checks(settings: GateSettings, seed: int = 0, task: TaskKind = "binary") -> list[GateCheck]:
    """The automatic checks of this release, all thresholds from params.yaml.

    The task picks the fit guardrail: calibration for probabilistic predictions, bias for regression.
    """
    guard = settings.guardrails
    fit = (
        bias_check(guard.max_bias)
        if task == "regression"
        else calibration_check(guard.max_calibration_error, settings.confidence)
    )
    return [
        floor_check(settings.primary_metric, settings.floor),
        comparison_check(settings, seed),
        slices_check(settings, seed),
        fit,
        latency_check("latency_single", "single", guard.max_latency_ratio, guard.max_latency_single_ms),
        latency_check("latency_batch", "batch", guard.max_latency_ratio, guard.max_latency_batch_ms),
        limit_check("model_size", "model_mb", guard.max_model_mb, "MB"),
    ]


def decide(checks: Sequence[GateCheck], inputs: GateInputs, primary_metric: str) -> GateDecision:
    return GateDecision(checks=tuple(check(inputs) for check in checks), primary_metric=primary_metric)
