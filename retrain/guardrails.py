"""Measure a registered model as it will serve: loaded from the registry, timed, weighed.

Latency is measured through the loaded registered model (native booster plus its feature spec,
the way scoring loads it), not the in-memory training object: what is timed is what will run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.adapters.registry import ModelRegistry
from retrain.domain.training import predict_proba

SINGLE_CALLS = 200
BATCH_ROWS = 10_000
BATCH_CALLS = 10


def _p95_ms(call: object, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(timings, 95))


def measure(registry: ModelRegistry, version: str, rows: pd.DataFrame, threads: int, scratch: Path) -> dict[str, float]:
    """p95 single-row and 10k-row latency (ms) and model file size (MB) of one registered version."""
    booster, spec = registry.load(version)
    one = rows.head(1)
    batch = rows.sample(n=BATCH_ROWS, replace=len(rows) < BATCH_ROWS, random_state=0)
    predict_proba(booster, batch, spec, threads)  # warm-up: first call allocates
    size = registry.model_file(version, scratch).stat().st_size
    return {
        "latency_single_ms": _p95_ms(lambda: predict_proba(booster, one, spec, 1), SINGLE_CALLS),
        "latency_batch_ms": _p95_ms(lambda: predict_proba(booster, batch, spec, threads), BATCH_CALLS),
        "model_mb": size / 1_000_000,
    }
