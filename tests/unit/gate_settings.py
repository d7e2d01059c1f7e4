"""Gate settings shared by the gate unit tests: one baseline, each test overriding what it is about."""

from __future__ import annotations

from typing import Any

from retrain.domain.settings import GateSettings, GuardrailSettings, SliceSettings

BASELINE = GateSettings(
    primary_metric="roc_auc",
    floor=0.7,
    mode="non_inferiority",
    max_drop=0.01,
    min_gain=0.0,
    bootstrap_resamples=500,
    confidence=0.95,
    guardrails=GuardrailSettings(
        max_calibration_error=0.5,
        max_latency_ratio=2.0,
        max_latency_single_ms=25,
        max_latency_batch_ms=500,
        max_model_mb=20,
    ),
    slices=SliceSettings(categorical=(), numeric_bins={}, min_rows=100, alpha=0.05),
)
#: Guardrail measurements well within the baseline's limits.
FAST = {"latency_single_ms": 1.0, "latency_batch_ms": 20.0, "model_mb": 0.3}


def gate_settings(**changes: Any) -> GateSettings:
    return BASELINE.model_copy(update=changes)
