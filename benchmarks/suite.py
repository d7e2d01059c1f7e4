"""``make bench``: each of Retrain's costs side by side with a bare reference in the same run, as ratios.

A ratio is the product's cost divided by what the same work costs without the platform, measured
in the same process run on the same machine, so a busy or slow machine moves both alike:

* ``training_flow``: the whole training flow (validate, snapshot, train, register, gate, promote)
  against a bare XGBoost script on the same files, split and parameters (:mod:`bench_flow`), at
  100k and 1M rows x 50 features, time and peak memory;
* ``validation``: both contract tiers through great-expectations against the same checks written
  in plain pandas (types, not-null, ranges, category sets) on the same frame;
* ``drift``: the drift check of a batch against the champion's reference profile against SciPy's
  two-sample KS test and a chi-square per feature on the raw reference rows;
* ``bootstrap``: the paired bootstrap of the gate (1000 resamples) against one evaluation of the
  metric on the whole holdout (the ratio is its cost in metric evaluations);
* ``nightly_validation``: a nightly run's validation after 60 days of history (one new day)
  against the first run's validation of one day: the verdict cache makes it cost one day, not 61;
* ``cli_help``: ``retrain --help`` in a new process against a bare Typer app's ``--help``;
* ``scoring``: a 1M-row batch scored ``monitoring.piece_rows`` rows at a time against read, predicted
  and written whole (:mod:`bench_scoring`), time and peak memory;
* ``dask_training``: the recipe with ``model.engine: dask`` on a two-worker LocalCluster against the
  same recipe in memory (:mod:`bench_dask`), and whether two Dask runs gave the same bytes.

Prints a table and writes ``benchmarks/results/bench.json``; ``--check BASELINE`` compares with a
committed baseline (``make bench-check``) and exits 1 if any ratio got more than ``--tolerance``
(20%) worse. ``--quick`` leaves out the 1M-row training flow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Ratio:
    """One line of the table: the product's figure over the reference's, and what each was."""

    name: str
    product: float
    reference: float
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.product / self.reference if self.reference > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs, in seconds: the least disturbed by the rest of the machine."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def training_flow(rows: int) -> list[Ratio]:
    import bench_flow

    found = bench_flow.measure(rows, 50, 6, 7)
    size = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows / 1e6:g}M"
    same = "same best iteration" if found["same_work"] else "best iterations differ"
    note = f"{same}; holdout ROC AUC {found['flow']['roc_auc']} vs {found['bare']['roc_auc']}"
    return [
        Ratio(f"training_flow_{size}x50_time", found["flow_s"], found["bare_s"], "s", note),
        Ratio(f"training_flow_{size}x50_peak_memory", found["flow_peak_rss_mb"], found["bare_peak_rss_mb"], "MB"),
    ]


def dask_training(rows: int, workers: int = 2) -> list[Ratio]:
    """The recipe with ``model.engine: dask`` on a LocalCluster against ``in_memory`` (:mod:`bench_dask`)."""
    command = [sys.executable, str(HERE / "bench_dask.py"), "--rows", str(rows), "--workers", str(workers)]
    found = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    auc = found["holdout_roc_auc"]
    note = (
        f"LocalCluster of {workers} single-thread workers vs one process; two Dask runs "
        f"{'byte-identical' if found['dask_runs_identical'] else 'DIFFERENT'}; holdout ROC AUC "
        f"{auc['dask']} vs {auc['in_memory']}"
    )
    size = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    return [Ratio(f"dask_training_{size}x50_time", found["dask_s"], found["in_memory_s"], "s", note)]


def scoring(rows: int, piece_rows: int = 100_000) -> list[Ratio]:
    """A batch scored a piece at a time against read whole (:mod:`bench_scoring`), time and peak memory."""
    command = [sys.executable, str(HERE / "bench_scoring.py"), "--rows", str(rows), "--piece-rows", str(piece_rows)]
    found = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    pieces, whole = found["pieces"], found["whole"]
    size = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    note = f"read, predicted and written {piece_rows:,} rows at a time vs the whole batch at once"
    return [
        Ratio(f"scoring_{size}x50_time", pieces["seconds"], whole["seconds"], "s", note),
        Ratio(f"scoring_{size}x50_peak_memory", pieces["peak_mb"], whole["peak_mb"], "MB", note),
    ]


def nightly_validation(history_days: int = 60, rows_per_day: int = 2_000) -> list[Ratio]:
    import bench_flow

    found = bench_flow.measure_nightly(history_days, rows_per_day, 50, 7)
    note = (
        f"a nightly run after {history_days} days: validation of all {history_days + 1} batches vs one day's "
        f"(the first run validated {history_days} days in {found['first_validation_s']:.1f} s)"
    )
    return [
        Ratio(
            f"nightly_validation_{history_days}+1_days",
            found["nightly_validation_s"],
            found["one_day_validation_s"],
            "s",
            note,
        )
    ]


def _validation_frame(rows: int) -> tuple[pd.DataFrame, Path, tempfile.TemporaryDirectory[str]]:
    import bench_validation

    scratch = tempfile.TemporaryDirectory(prefix="retrain-bench-validation-")
    return bench_validation._frame(rows), bench_validation._contract(Path(scratch.name)), scratch


def bare_checks(frame: pd.DataFrame, suite: dict[str, Any]) -> int:
    """The contract's expectations as a data scientist would write them in pandas: rows failing any."""
    failing = np.zeros(len(frame), dtype=bool)
    for expectation in suite["expectations"]:
        kind, kwargs = expectation["type"], expectation["kwargs"]
        column = frame.get(kwargs.get("column", ""), None)
        if kind == "expect_column_values_to_not_be_null" and column is not None:
            failing |= column.isna().to_numpy()
        elif kind == "expect_column_values_to_be_between" and column is not None:
            values = pd.to_numeric(column, errors="coerce")
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            outside = np.zeros(len(frame), dtype=bool)
            if low is not None:
                outside |= (values < low).to_numpy()
            if high is not None:
                outside |= (values > high).to_numpy()
            failing |= outside
        elif kind == "expect_column_values_to_be_in_set" and column is not None:
            failing |= ~(column.isin(kwargs["value_set"]) | column.isna()).to_numpy()
        elif kind == "expect_column_values_to_be_of_type" and column is not None:
            str(column.dtype)
        elif kind == "expect_table_columns_to_match_set":
            set(frame.columns) ^ set(kwargs["column_set"])
    return int(failing.sum())


def validation(rows: int) -> list[Ratio]:
    from retrain.adapters.contracts import validate_batch

    frame, contract, scratch = _validation_frame(rows)
    with scratch:
        suite = json.loads(contract.read_text(encoding="utf-8"))

        def product() -> None:
            validate_batch(frame, contract, batch_name="bench", contract_name="bench", contract_version=1)

        product()  # the first call pays GX's import and context: steady state is compared
        ours = best_of(3, product)
        bare = best_of(3, lambda: bare_checks(frame, suite))
    return [Ratio(f"validation_{rows // 1000}k", ours, bare, "s", f"{len(suite['expectations'])} expectations")]


def drift(rows: int) -> list[Ratio]:
    import bench_drift
    from scipy import stats

    from retrain.domain.drift import detect_drift
    from retrain.domain.profile import build_profile

    reference, _, reference_scores = bench_drift.frame(rows, 1, 0.0)
    profile = build_profile(
        reference,
        bench_drift.NUMERIC,
        bench_drift.CATEGORICAL,
        holdout_predictions=reference_scores,
        metrics={"roc_auc": 0.8},
        quantiles=bench_drift.SETTINGS.drift.quantiles,
    )
    batch, labels, scores = bench_drift.frame(rows, 2, 0.3)

    def bare() -> None:
        for name in bench_drift.NUMERIC:
            stats.ks_2samp(reference[name].dropna().to_numpy(), batch[name].dropna().to_numpy())
        for name in bench_drift.CATEGORICAL:
            counts = pd.concat([reference[name].value_counts(), batch[name].value_counts()], axis=1).fillna(0)
            stats.chi2_contingency(counts.to_numpy().T)

    settings = bench_drift.SETTINGS.drift
    ours = best_of(2, lambda: detect_drift(profile, batch, settings, predictions=scores, labels=labels))
    reference_s = best_of(2, bare)
    note = "KS + chi-square per feature on the raw reference rows (no prediction or performance drift)"
    return [Ratio(f"drift_{rows // 1000}k", ours, reference_s, "s", note)]


def bootstrap(rows: int) -> list[Ratio]:
    from retrain.domain.bootstrap import paired_bootstrap
    from retrain.domain.metrics import task_metrics

    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.2).astype(int)
    champion = 1 / (1 + np.exp(-(y * 1.0 + rng.normal(0, 1, rows))))
    challenger = 1 / (1 + np.exp(-(y * 1.1 + rng.normal(0, 1, rows))))
    ours = best_of(2, lambda: paired_bootstrap("roc_auc", y, champion, challenger, resamples=1000, seed=0))
    once = best_of(3, lambda: task_metrics("binary", y, challenger))
    return [Ratio(f"bootstrap_{rows // 1000}k", ours, once, "s", "1000 paired resamples vs one evaluation")]


BARE_TYPER = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str) -> None:
    print(name)
app()
"""


def cli_help() -> list[Ratio]:
    cli = [sys.executable, "-m", "retrain.cli", "--help"]
    bare = [sys.executable, "-c", BARE_TYPER, "--help"]

    def run(command: list[str]) -> Callable[[], object]:
        return lambda: subprocess.run(command, check=True, capture_output=True)

    return [Ratio("cli_help_cold_start", best_of(5, run(cli)), best_of(5, run(bare)), "s", "vs a bare Typer app")]


def table(ratios: list[Ratio]) -> str:
    lines = ["| what | Retrain | bare reference | ratio | note |", "|---|---|---|---|---|"]
    for item in ratios:
        lines.append(
            f"| {item.name} | {item.product:.3g} {item.unit} | {item.reference:.3g} {item.unit} | "
            f"{item.ratio:.2f}x | {item.note} |"
        )
    return "\n".join(lines)


def regressions(current: dict[str, float], baseline: dict[str, float], tolerance: float) -> list[str]:
    """Each ratio of the baseline that got more than ``tolerance`` worse (a higher ratio is worse)."""
    found = []
    for name, before in sorted(baseline.items()):
        now = current.get(name)
        if now is None:
            found.append(f"{name}: in the baseline ({before:.2f}x), not measured now")
        elif now > before * (1 + tolerance):
            found.append(f"{name}: {now:.2f}x, was {before:.2f}x (+{now / before - 1:.0%})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 1M-row training flow")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    parser.add_argument("--check", type=Path, default=None, metavar="BASELINE", help="compare with this baseline")
    parser.add_argument("--tolerance", type=float, default=0.2)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ratios: list[Ratio] = []
    steps: list[Callable[[], list[Ratio]]] = [
        cli_help,
        lambda: bootstrap(1_000_000),
        lambda: drift(1_000_000),
        lambda: validation(100_000),
        lambda: training_flow(100_000),
        nightly_validation,
        lambda: dask_training(100_000),
        lambda: scoring(1_000_000),
    ]
    if not args.quick:
        steps.append(lambda: training_flow(1_000_000))
    for step in steps:
        for item in step():
            ratios.append(item)
            print(json.dumps(item.to_dict()), file=sys.stderr, flush=True)
    print(table(ratios))
    print(f"\n{len(ratios)} ratios in {time.perf_counter() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    measured = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "ratios": [item.to_dict() for item in ratios],
    }
    args.out.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
    (args.out.with_suffix(".md")).write_text(table(ratios) + "\n", encoding="utf-8")
    if args.check is None:
        return 0
    baseline = {row["name"]: row["ratio"] for row in json.loads(args.check.read_text(encoding="utf-8"))["ratios"]}
    if args.quick:
        baseline = {name: value for name, value in baseline.items() if "1M" not in name}
    worse = regressions({item.name: item.ratio for item in ratios}, baseline, args.tolerance)
    for line in worse:
        print(f"worse than the baseline: {line}")
    if not worse:
        print(f"no ratio more than {args.tolerance:.0%} worse than {args.check}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
