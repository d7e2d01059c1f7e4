"""``model.engine: dask`` against ``in_memory``: the same recipe, split and parameters, on a LocalCluster.

The demo's loans plus numeric noise columns up to ``--features`` features (as :mod:`bench_flow` makes
them) over six days, fitted through the one recipe (:func:`retrain.domain.fitting.fit_snapshot`)
in this process, then twice on a ``distributed.LocalCluster`` of ``--workers`` single-thread worker
processes started before the clock starts (a real cluster is already up when a flow runs).

Prints one JSON line: seconds of each, their ratio, the best iteration and holdout ROC AUC of each,
and whether the two Dask fits gave the same model bytes (the reproducibility docs/dask.md promises).
On one 2-core machine a cluster cannot be faster than one process: it moves the rows between
processes and sums histograms over TCP every level of every tree. The figure says what the engine
costs; the point of it is a cluster with more cores and memory than one machine.

Run: ``uv run python benchmarks/bench_dask.py [--rows 1000000] [--features 50] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def measure(rows: int, features: int, workers: int, seed: int = 11) -> dict[str, Any]:
    from bench_flow import day_frames
    from distributed import Client, LocalCluster

    from retrain.domain import fitting
    from retrain.domain.distributed import DaskEngine
    from retrain.domain.settings import load_settings

    settings = load_settings(HERE.parent / "params.yaml")
    frame = pd.concat(day_frames(rows, 6, features, seed), ignore_index=True)
    extra = tuple(column for column in frame.columns if column.startswith("extra_"))
    features_ = settings.dataset.features.model_copy(update={"numeric": settings.dataset.features.numeric + extra})
    dataset = settings.dataset.model_copy(update={"features": features_})
    split = settings.split.model_copy(update={"holdout_days": 1, "validation_days": 1})
    in_memory = settings.model
    on_dask = settings.model.model_copy(update={"engine": "dask", "dask_workers": workers})

    started = time.perf_counter()
    local = fitting.fit_snapshot(frame, dataset, split, in_memory)
    local_s = time.perf_counter() - started

    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            fitted = fitting.fit_snapshot(frame, dataset, split, on_dask, DaskEngine(client, workers))
            runs.append((time.perf_counter() - started, fitted))
    dask_s = min(seconds for seconds, _ in runs)
    hashes = {hashlib.sha256(fitted.model_bytes()).hexdigest() for _, fitted in runs}
    return {
        "rows": len(frame),
        "features": len(features_.all),
        "workers": workers,
        "in_memory_s": round(local_s, 2),
        "dask_s": round(dask_s, 2),
        "ratio": round(dask_s / local_s, 2),
        "dask_runs_identical": len(hashes) == 1,
        "best_iteration": {"in_memory": local.model.best_iteration, "dask": runs[0][1].model.best_iteration},
        "holdout_roc_auc": {
            "in_memory": round(local.holdout_metrics["roc_auc"], 4),
            "dask": round(runs[0][1].holdout_metrics["roc_auc"], 4),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rows, args.features, args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
