"""The promotion gate: a list of checks, each pass/fail with its value, threshold and reason.

A gate is data, not an if-statement, so later checks (bootstrap CIs, slices, guardrails, a human
reviewer) are added to the list without touching the others, and every decision can be reported
and stored exactly as it was taken.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from retrain.domain.metrics import gain, meets_floor
from retrain.domain.settings import GateSettings


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    reason: str


@dataclass(frozen=True)
class GateInputs:
    """What the checks judge: holdout metrics of both models, scored on the same rows."""

    challenger: Mapping[str, float]
    champion: Mapping[str, float] | None


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "primary_metric": self.primary_metric,
            "checks": [asdict(check) for check in self.checks],
            "reasons": list(self.reasons),
        }


def floor_check(metric: str, floor: float) -> GateCheck:
    def check(inputs: GateInputs) -> Check:
        value = inputs.challenger[metric]
        ok = meets_floor(metric, value, floor)
        relation = "meets" if ok else "misses"
        return Check("absolute_floor", ok, value, floor, f"{metric} {value:.4f} {relation} the floor {floor:.4f}")

    return check


def max_drop_check(metric: str, max_drop: float) -> GateCheck:
    def check(inputs: GateInputs) -> Check:
        if inputs.champion is None:
            return Check("max_drop", True, None, -max_drop, "no champion yet: nothing to drop from")
        change = gain(metric, inputs.challenger[metric], inputs.champion[metric])
        ok = change >= -max_drop
        verdict = "within" if ok else "worse than"
        return Check(
            "max_drop",
            ok,
            change,
            -max_drop,
            f"{metric} change versus champion {change:+.4f} is {verdict} the allowed drop {-max_drop:+.4f}",
        )

    return check


def min_gain_check(metric: str, min_gain: float) -> GateCheck:
    def check(inputs: GateInputs) -> Check:
        if inputs.champion is None:
            return Check("min_gain", True, None, min_gain, "no champion yet: the first model needs no gain")
        change = gain(metric, inputs.challenger[metric], inputs.champion[metric])
        ok = change >= min_gain
        verdict = "reaches" if ok else "falls short of"
        return Check(
            "min_gain",
            ok,
            change,
            min_gain,
            f"{metric} gain versus champion {change:+.4f} {verdict} the required {min_gain:+.4f}",
        )

    return check


def default_checks(settings: GateSettings) -> list[GateCheck]:
    """The automatic checks of this release, all thresholds from params.yaml."""
    metric = settings.primary_metric
    return [
        floor_check(metric, settings.floor),
        max_drop_check(metric, settings.max_drop),
        min_gain_check(metric, settings.min_gain),
    ]


def decide(checks: Sequence[GateCheck], inputs: GateInputs, primary_metric: str) -> GateDecision:
    return GateDecision(checks=tuple(check(inputs) for check in checks), primary_metric=primary_metric)
