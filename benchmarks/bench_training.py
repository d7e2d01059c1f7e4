"""How training cost grows with rows: generate N rows, split, encode, train; report seconds and peak RSS.

Run: ``uv run python benchmarks/bench_training.py [rows ...]``. Prints one JSON line per size, so
results can be compared across commits. Not a test: speed is measured here, never asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from retrain.domain.demo_data import generate_days
from retrain.domain.features import build_feature_spec
from retrain.domain.settings import load_settings
from retrain.domain.splitting import split_by_time
from retrain.domain.training import predict_proba, train_model

DAYS = 10


def measure(rows: int) -> dict[str, float]:
    settings = load_settings(Path(__file__).resolve().parents[1] / "params.yaml")
    started = time.perf_counter()
    frame = pd.concat(
        [f for _, f in generate_days(dt.date(2026, 1, 1), DAYS, rows // DAYS, settings.demo.seed)], ignore_index=True
    )
    generated = time.perf_counter()
    split = split_by_time(
        frame, settings.dataset.time_column, settings.split.holdout_days, settings.split.validation_days
    )
    features = settings.dataset.features
    spec = build_feature_spec(split.train, features.numeric, features.categorical)
    # Fixed rounds (no early stop) so that sizes are compared on equal work per row.
    fixed = settings.model.model_copy(
        update={
            "xgboost": settings.model.xgboost.model_copy(update={"num_boost_round": 100, "early_stopping_rounds": 1000})
        }
    )
    model = train_model(split.train, split.validation, spec, settings.dataset.target, fixed)
    trained = time.perf_counter()
    predict_proba(model.booster, split.holdout, spec, settings.model.threads)
    scored = time.perf_counter()
    return {
        "rows": rows,
        "generate_s": round(generated - started, 3),
        "train_s": round(trained - generated, 3),
        "predict_holdout_s": round(scored - trained, 3),
        "train_us_per_row": round(1e6 * (trained - generated) / len(split.train), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    sizes = [int(arg) for arg in sys.argv[1:]] or [50_000, 100_000, 200_000, 400_000]
    for size in sizes:
        print(json.dumps(measure(size)), flush=True)
