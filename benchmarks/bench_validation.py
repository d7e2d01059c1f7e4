"""Validation speed: one contract (two tiers) on a batch of N rows x 50 columns.

The frame is the demo's 24 columns plus 26 extra numeric columns; the contract is the loans v2
contract extended with a type, a not-null and a range expectation for each extra column (about 150
expectations). Prints one JSON line per size with the first call (GX import + context) and the
steady-state time. Run: ``uv run python benchmarks/bench_validation.py [rows ...]``.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retrain.domain.demo_data import generate_day

ROOT = Path(__file__).resolve().parents[1]
EXTRA = [f"extra_{i:02d}" for i in range(26)]


def _frame(rows: int):  # type: ignore[no-untyped-def]
    frame = generate_day(dt.date(2026, 1, 1), rows, 1)
    rng = np.random.default_rng(0)
    for name in EXTRA:
        frame[name] = rng.normal(0, 1, rows)
    return frame


def _contract(directory: Path) -> Path:
    suite = json.loads((ROOT / "data_contracts" / "loans" / "v2.json").read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_table_columns_to_match_set":
            expectation["kwargs"]["column_set"] += EXTRA
    for name in EXTRA:
        suite["expectations"] += [
            {
                "type": "expect_column_values_to_be_of_type",
                "kwargs": {"column": name, "type_": "float64"},
                "meta": {"tier": "batch"},
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": name}, "meta": {"tier": "row"}},
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": name, "min_value": -10, "max_value": 10},
                "meta": {"tier": "row"},
            },
        ]
    path = directory / "bench.json"
    path.write_text(json.dumps(suite))
    return path


def measure(rows: int, contract: Path) -> dict[str, float]:
    from retrain.adapters.contracts import validate_batch

    frame = _frame(rows)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        result = validate_batch(frame, contract, batch_name="bench", contract_name="bench", contract_version=1)
        timings.append(time.perf_counter() - started)
    return {
        "rows": rows,
        "columns": frame.shape[1],
        "expectations": result.report.expectations_evaluated,
        "first_s": round(timings[0], 2),
        "steady_s": round(timings[1], 2),
        "passed": result.report.passed,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    sizes = [int(arg) for arg in sys.argv[1:]] or [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as scratch:
        contract = _contract(Path(scratch))
        for size in sizes:
            print(json.dumps(measure(size, contract)), flush=True)
