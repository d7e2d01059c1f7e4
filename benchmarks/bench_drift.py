"""Drift check speed: N batch rows x 50 features (40 numeric, 10 categorical) against a reference
profile, plus prediction drift and performance drift (labels present, 1000 bootstrap resamples).

Run: ``uv run python benchmarks/bench_drift.py [rows ...]``; one JSON line per size. The profile is
built once from another sample of the same size (not timed: it is made at training time).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.domain.drift import detect_drift
from retrain.domain.profile import build_profile
from retrain.domain.settings import load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[1] / "params.yaml")
NUMERIC = [f"x{i:02d}" for i in range(40)]
CATEGORICAL = [f"c{i}" for i in range(10)]
LEVELS = np.array([f"level_{i}" for i in range(12)], dtype=object)


def frame(rows: int, seed: int, shift: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for index, name in enumerate(NUMERIC):
        values = rng.normal(shift * (index % 3), 1 + index % 5, rows)
        values[rng.random(rows) < 0.02] = np.nan
        data[name] = values
    for name in CATEGORICAL:
        weights = np.linspace(1, 2 + shift, LEVELS.size)
        data[name] = pd.array(rng.choice(LEVELS, size=rows, p=weights / weights.sum()), dtype="str")
    labels = (rng.random(rows) < 0.2).astype("int64")
    scores = 1 / (1 + np.exp(-(labels * 1.2 + rng.normal(shift, 1, rows))))
    return pd.DataFrame(data), labels, scores


def measure(rows: int) -> dict[str, object]:
    reference, _, ref_scores = frame(rows, 1, 0.0)
    profile = build_profile(
        reference,
        NUMERIC,
        CATEGORICAL,
        holdout_predictions=ref_scores,
        metrics={"roc_auc": 0.8},
        quantiles=SETTINGS.drift.quantiles,
    )
    batch, labels, scores = frame(rows, 2, 0.3)
    started = time.perf_counter()
    report = detect_drift(profile, batch, SETTINGS.drift, predictions=scores, labels=labels)
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "features": len(NUMERIC) + len(CATEGORICAL),
        "seconds": round(seconds, 3),
        "drift_share": round(report.drift_share, 3),
        "profile_bytes": len(json.dumps(profile.to_dict())),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    for size in [int(arg) for arg in sys.argv[1:]] or [100_000, 1_000_000]:
        print(json.dumps(measure(size)), flush=True)
