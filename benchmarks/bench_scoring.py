"""Scoring a large batch a piece at a time against reading it whole: time and peak memory.

One Parquet batch of ``--rows`` demo loans widened to ``--features`` features (written in row groups of
100k rows, as an export writes them) and a model trained on a small sample of the same rows. Each mode
runs in a child process of its own, so its peak memory (VmHWM) is its own:

* **pieces**: what ``retrain score`` does (:func:`retrain.application.monitoring.score_batch` without the
  registry): the batch read ``--piece-rows`` rows at a time, each piece predicted and its predictions
  written as a row group of one file;
* **whole**: the bare way: ``pd.read_parquet`` of the whole batch, one prediction, one ``to_parquet``.

Prints one JSON line: seconds and peak MB of each. The memory of *pieces* stays that of one piece (plus a
prediction per row) however large the batch; *whole* grows with the batch.

Run: ``uv run python benchmarks/bench_scoring.py [--rows 1000000] [--features 50] [--piece-rows 100000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _settings(columns: list[str], piece_rows: int) -> Any:
    from retrain.domain.settings import load_settings

    settings = load_settings(HERE.parent / "params.yaml")
    extra = tuple(column for column in columns if column.startswith("extra_"))
    features = settings.dataset.features.model_copy(update={"numeric": settings.dataset.features.numeric + extra})
    return settings.model_copy(
        update={
            "dataset": settings.dataset.model_copy(update={"features": features}),
            "monitoring": settings.monitoring.model_copy(update={"piece_rows": piece_rows}),
        }
    )


def prepare(root: Path, rows: int, features: int) -> None:
    """The batch file and the model (native format) and its spec, under ``root``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from bench_flow import day_frames

    from retrain.domain import fitting

    frame = pd.concat(day_frames(rows, 6, features, 5), ignore_index=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), root / "batch.parquet", row_group_size=100_000)
    settings = _settings(list(frame.columns), 1)
    sample = frame.sample(n=min(len(frame), 60_000), random_state=0)
    fitted = fitting.fit_snapshot(sample, settings.dataset, settings.split, settings.model)
    (root / "model.ubj").write_bytes(fitted.model_bytes())
    (root / "spec.json").write_text(json.dumps(fitted.model.spec.to_dict()), encoding="utf-8")


def run_mode(root: Path, mode: str, piece_rows: int) -> dict[str, float]:
    import xgboost as xgb
    from bench_flow import peak_rss_mb

    from retrain.adapters import files
    from retrain.application.monitoring import Piece, prediction_frame, read_pieces
    from retrain.domain.features import FeatureSpec
    from retrain.domain.lifecycle import ModelVersionInfo
    from retrain.domain.task import task_for
    from retrain.domain.training import predict

    booster = xgb.Booster()
    booster.load_model(str(root / "model.ubj"))
    spec = FeatureSpec.from_dict(json.loads((root / "spec.json").read_text(encoding="utf-8")))
    batch, output = root / "batch.parquet", root / f"scores-{mode}.parquet"
    import pyarrow.parquet as pq

    settings = _settings(list(pq.read_schema(batch).names), piece_rows)
    task = task_for(settings.dataset)
    champion = ModelVersionInfo("1", "bench", {}, None, None)
    started = time.perf_counter()
    if mode == "pieces":
        scores: list[np.ndarray] = []

        def frames() -> Any:
            for piece in read_pieces([batch], settings):
                score = predict(booster, piece.frame, spec, task, settings.model.threads)
                scores.append(score)
                yield prediction_frame(piece, settings, champion, score, None, None)

        files.write_pieces(frames(), output)
    else:
        whole = pd.read_parquet(batch)
        score = predict(booster, whole, spec, task, settings.model.threads)
        prediction_frame(Piece(batch.name, 0, whole), settings, champion, score, None, None).to_parquet(output)
    return {"seconds": time.perf_counter() - started, "peak_mb": peak_rss_mb()}


def measure(rows: int, features: int, piece_rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="retrain-bench-scoring-") as scratch:
        root = Path(scratch)
        prepare(root, rows, features)
        found: dict[str, Any] = {"rows": rows, "features": features, "piece_rows": piece_rows}
        for mode in ("pieces", "whole"):
            command = [sys.executable, __file__, "--mode", mode, "--root", str(root), "--piece-rows", str(piece_rows)]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            found[mode] = json.loads(result.stdout.splitlines()[-1])
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--piece-rows", type=int, default=100_000)
    parser.add_argument("--mode", choices=["pieces", "whole"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode is not None:
        print(json.dumps(run_mode(args.root, args.mode, args.piece_rows)))
        return 0
    print(json.dumps(measure(args.rows, args.features, args.piece_rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
