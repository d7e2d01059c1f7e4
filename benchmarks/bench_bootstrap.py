"""Paired bootstrap speed: 1000 resamples of the challenger − champion gain on N holdout rows.

Run: ``uv run python benchmarks/bench_bootstrap.py [rows ...]``; one JSON line per size and metric.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from retrain.domain.bootstrap import BOOTSTRAP_METRICS, paired_bootstrap


def measure(rows: int, metric: str, resamples: int = 1000) -> dict[str, object]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.2).astype(int)
    champion = 1 / (1 + np.exp(-(y * 1.0 + rng.normal(0, 1, rows))))
    challenger = 1 / (1 + np.exp(-(y * 1.1 + rng.normal(0, 1, rows))))
    started = time.perf_counter()
    result = paired_bootstrap(metric, y, champion, challenger, resamples=resamples, seed=0)
    return {
        "rows": rows,
        "metric": metric,
        "resamples": resamples,
        "seconds": round(time.perf_counter() - started, 3),
        "gain": round(result.gain, 6),
        "ci": [round(result.lower, 6), round(result.upper, 6)],
    }


if __name__ == "__main__":
    for size in [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000, 1_000_000]:
        for name in BOOTSTRAP_METRICS:
            print(json.dumps(measure(size, name)), flush=True)
