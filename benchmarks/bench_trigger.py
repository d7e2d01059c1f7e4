"""Retrain when it pays: retraining policies replayed on drifting streams with known change points.

Each stream is a sequence of batches (336 rows by default: a week of half-hours) with a time column,
a binary target and the change points where its concept changes. A first champion is trained on the
first ``--start`` batches; then, batch by batch, the model in use is scored on the new batch (its
primary metric, before it sees the labels: what serving it cost), and each policy decides whether to
retrain after that batch. A retraining fits the one recipe (:func:`retrain.domain.fitting.fit_snapshot`,
time split of params.yaml) on the newest ``--window`` batches and replaces the model (no gate: every
policy is judged on the same footing).

Policies: ``never``; ``every-k`` (k = 1, 2, 4, 8 batches); ``trigger``: Retrain's own decision code,
:func:`retrain.application.monitoring.check_drift` against the champion's reference profile
(:func:`retrain.application.training.reference_profile`) then
:func:`retrain.domain.retraining.decide_retraining` on the data clock, with the batch's labels;
``trigger (no labels)``: the same with the labels withheld; ``previous trigger``: the rule before
(unweighted share of all features, constants included, plus a sure performance drop).

Streams (river's generators, with two constant columns added as in real extracts, and Retrain's demo
data): ``sea`` (abrupt threshold changes), ``agrawal`` (abrupt change of the labelling function),
``hyperplane`` (gradual rotation: no change point, no stable stretch), ``benign`` (the features the
concept ignores shift; the concept never changes), ``stable`` (nothing changes), ``loans`` (the
demo's covariate and concept drift).

For each policy: mean metric over the scored batches, retrainings, detection delay (batches from a
change point to the first retraining at or after it) and false alarms: retrainings while the model in
use was trained on the current concept only and nothing changed since, per 20 such stable batches.

Run: ``uv run python benchmarks/bench_trigger.py [--rows 336] [--batches 60] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrain.application import monitoring
from retrain.application.training import reference_profile
from retrain.domain.demo_data import DayChanges, generate_day
from retrain.domain.drift import ConceptChange, DriftReport
from retrain.domain.fitting import FittedSnapshot, fit_snapshot
from retrain.domain.metrics import HIGHER_IS_BETTER
from retrain.domain.profile import ReferenceProfile
from retrain.domain.retraining import decide_retraining
from retrain.domain.row_thresholds import BATCH_SHARE, nice_floor
from retrain.domain.settings import Settings, parse_settings
from retrain.domain.task import task_for
from retrain.domain.training import predict

ROOT = Path(__file__).resolve().parents[1]
TIME = "week"
TARGET = "label"
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Stream:
    """Batches in time order, the indices where the concept changes, and the dataset's columns."""

    name: str
    batches: tuple[pd.DataFrame, ...]
    change_points: tuple[int, ...] | None  # None: gradual drift (no change point, no stable stretch)
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str = TARGET
    time_column: str = TIME
    note: str = ""

    def segment(self, batch: int) -> int:
        """Which concept a batch belongs to (the number of change points at or before it)."""
        return sum(1 for c in self.change_points or () if c <= batch)


@dataclass
class Concepts:
    """A river generator per concept: batch ``i`` draws from concept ``concept(i)``, and each concept's
    generator continues where it stopped (a concept that comes back does not repeat its rows)."""

    build: Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]
    change_points: tuple[int, ...]

    def concept(self, index: int) -> int:
        return sum(1 for c in self.change_points if c <= index)


def _river_batches(
    concepts: Concepts, rows: int, count: int, keep: Callable[[int, dict[Any, Any]], bool] | None = None
) -> tuple[pd.DataFrame, ...]:
    """``count`` batches of ``rows`` rows with a weekly time column and two constant columns (as in
    real extracts); ``keep`` filters rows (a covariate shift)."""
    running: dict[int, Iterator[tuple[dict[Any, Any], Any]]] = {}
    batches = []
    for index in range(count):
        concept = concepts.concept(index)
        generator = running.setdefault(concept, concepts.build(concept))
        records: list[dict[str, Any]] = []
        while len(records) < rows:
            x, y = next(generator)
            if keep is None or keep(index, x):
                records.append({**{f"x_{k}": v for k, v in x.items()}, TARGET: int(y)})
        frame = pd.DataFrame(records)
        frame["site_code"] = 7.0
        frame["source"] = "A"
        frame[TIME] = START + dt.timedelta(weeks=index)
        batches.append(frame)
    return tuple(batches)


def river_streams(rows: int, count: int, seed: int, wanted: list[str]) -> list[Stream]:
    from river.datasets import synth

    third, two_thirds = count // 3, 2 * count // 3
    sea_variants = (0, 2, 1)
    sea = Concepts(lambda c: iter(synth.SEA(variant=sea_variants[c], noise=0.05, seed=seed + c)), (third, two_thirds))
    functions = (0, 2, 5)
    agrawal = Concepts(
        lambda c: iter(synth.Agrawal(classification_function=functions[c], seed=seed + c, balance_classes=False)),
        (third, two_thirds),
    )
    hyperplane = Concepts(
        lambda c: iter(
            synth.Hyperplane(seed=seed, n_features=6, n_drift_features=4, mag_change=0.002, noise_percentage=0.05)
        ),
        (),
    )
    stable = Concepts(lambda c: iter(synth.SEA(variant=0, noise=0.05, seed=seed + 10)), ())
    benign_source = Concepts(lambda c: iter(synth.Agrawal(classification_function=0, seed=seed + 20)), ())

    def benign_keep(index: int, x: dict[Any, Any]) -> bool:
        # From a third of the way on, the applicants' cars, zip codes and house values shift: the
        # concept (function 0 looks at age only) does not move, so no retraining pays.
        return index < third or (x["car"] <= 8 and x["zipcode"] <= 3 and x["hvalue"] <= 400_000)

    sea_cols = tuple(f"x_{i}" for i in range(3))
    agrawal_numeric = ("x_salary", "x_commission", "x_age", "x_hvalue", "x_hyears", "x_loan")
    agrawal_categorical = ("x_elevel", "x_car", "x_zipcode")
    hyper_cols = tuple(f"x_{i}" for i in range(6))
    extra = ("site_code",)
    factories: dict[str, Callable[[], Stream]] = {
        "sea": lambda: Stream(
            "sea",
            _river_batches(sea, rows, count),
            sea.change_points,
            (*sea_cols, *extra),
            ("source",),
            note="SEA concepts 0 → 2 → 1 (threshold 8 → 7 → 9), 5% label noise",
        ),
        "agrawal": lambda: Stream(
            "agrawal",
            _river_batches(agrawal, rows, count),
            agrawal.change_points,
            (*agrawal_numeric, *extra),
            (*agrawal_categorical, "source"),
            note="Agrawal functions 0 → 2 → 5",
        ),
        "hyperplane": lambda: Stream(
            "hyperplane",
            _river_batches(hyperplane, rows, count),
            None,
            (*hyper_cols, *extra),
            ("source",),
            note="rotating hyperplane, 4 of 6 weights drift all along",
        ),
        "benign": lambda: Stream(
            "benign",
            _river_batches(benign_source, rows, count, benign_keep),
            (),
            (*agrawal_numeric, *extra),
            (*agrawal_categorical, "source"),
            note="Agrawal function 0; car, zip code and house value shift from a third on",
        ),
        "stable": lambda: Stream(
            "stable",
            _river_batches(stable, rows, count),
            (),
            (*sea_cols, *extra),
            ("source",),
            note="SEA concept 0 throughout",
        ),
    }
    return [factories[name]() for name in wanted if name in factories]


def loans_stream(rows: int, count: int, seed: int, settings: Settings) -> Stream:
    """Retrain's demo data, daily, with its covariate and concept drift from a third of the way on."""
    drift_from = count // 3
    batches = []
    for index in range(count):
        changes = DayChanges(1.0, 1.0) if index >= drift_from else DayChanges()
        batches.append(generate_day(dt.date(2024, 1, 1) + dt.timedelta(days=index), rows, seed, changes))
    features = settings.dataset.features
    return Stream(
        "loans",
        tuple(batches),
        (drift_from,),
        features.numeric,
        features.categorical,
        target=settings.dataset.target,
        time_column=settings.dataset.time_column,
        note="demo loans, covariate + concept drift from a third on (daily batches)",
    )


def stream_settings(base: dict[str, Any], stream: Stream, window: int) -> Settings:
    """params.yaml with the stream's columns, and the training window of the replay."""
    raw = json.loads(json.dumps(base))
    dataset = raw["dataset"]
    dataset.update(
        name=stream.name,
        target=stream.target,
        time_column=stream.time_column,
        id_column=None,
        features={"numeric": list(stream.numeric), "categorical": list(stream.categorical)},
    )
    dataset.pop("labels", None)
    split = raw["split"]
    split["max_train_days"] = window - split["holdout_days"] - split["validation_days"]
    raw["gate"]["slices"] = {**raw["gate"]["slices"], "categorical": [], "numeric_bins": {}}
    return parse_settings(raw, "params.yaml (benchmark)")


@dataclass
class Model:
    """A fitted model with what the trigger compares batches with."""

    fitted: FittedSnapshot
    profile: ReferenceProfile
    trained_until: int  # index of the newest batch it saw (holdout included)
    first_batch: int  # index of the oldest batch its training days came from


@dataclass
class Outcome:
    policy: str
    metrics: list[float] = field(default_factory=list)
    retrained_after: list[int] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    false_alarms: int = 0
    stable_batches: int = 0


class Replay:
    """One stream under its settings: fits (cached by their newest batch) and scores."""

    def __init__(self, stream: Stream, settings: Settings, window: int):
        self.stream, self.settings, self.window = stream, settings, window
        self.task = task_for(settings.dataset)
        self._models: dict[int, Model] = {}
        self.fits = 0

    def model_until(self, newest: int) -> Model:
        if newest not in self._models:
            first = max(0, newest + 1 - self.window)
            frame = pd.concat(self.stream.batches[first : newest + 1], ignore_index=True)
            data = self.settings
            fitted = fit_snapshot(frame, data.dataset, data.split, data.model)
            self.fits += 1
            self._models[newest] = Model(fitted, reference_profile(fitted, data), newest, first)
        return self._models[newest]

    def predictions(self, model: Model, batch: int) -> np.ndarray:
        frame = self.stream.batches[batch]
        return predict(
            model.fitted.model.booster, frame, model.fitted.model.spec, self.task, self.settings.model.threads
        )

    def metric(self, model: Model, batch: int, predictions: np.ndarray) -> float:
        labels = self.task.encode(self.stream.batches[batch][self.stream.target], "benchmark labels")
        return float(self.task.metrics(labels, predictions)[self.settings.gate.primary_metric])

    def check(
        self, model: Model, batch: int, predictions: np.ndarray, labelled: bool, last_change: ConceptChange | None
    ) -> DriftReport:
        frame = self.stream.batches[batch]
        if not labelled:
            frame = frame.drop(columns=[self.stream.target])
        piece = monitoring.Piece(f"batch-{batch}", 0, frame)
        window = monitoring.window_of([piece], model.profile, self.settings, lambda _rows: predictions)
        return monitoring.check_drift(model.profile, window, self.settings, last_change)


def previous_rule(report: DriftReport, settings: Settings) -> bool:
    """The trigger before issue 14: share of all features (constants too), or a sure performance drop."""
    share = sum(1 for f in report.features if f.drifted) / max(len(report.features), 1)
    dropped = report.performance is not None and report.performance.dropped
    return report.judged and (share >= settings.drift.drift_share or dropped)


def run_policy(replay: Replay, policy: str, start: int) -> Outcome:
    stream, settings = replay.stream, replay.settings
    outcome = Outcome(policy)
    model = replay.model_until(start - 1)
    triggers: list[dt.datetime] = []
    last_change: ConceptChange | None = None  # the ledger's last retraining on a sure performance drop
    for batch in range(start, len(stream.batches)):
        predictions = replay.predictions(model, batch)
        outcome.metrics.append(replay.metric(model, batch, predictions))
        stable = stream.change_points is not None and all(
            stream.segment(b) == stream.segment(batch) for b in range(model.first_batch, batch + 1)
        )
        outcome.stable_batches += int(stable)
        retrain = False
        if policy.startswith("every-"):
            retrain = (batch - start + 1) % int(policy.split("-")[1]) == 0
        elif policy != "never":
            report = replay.check(model, batch, predictions, policy != "trigger (no labels)", last_change)
            flagged = previous_rule(report, settings) if policy == "previous trigger" else report.flagged
            now = pd.to_datetime(stream.batches[batch][stream.time_column], utc=True).max().to_pydatetime()
            choice = decide_retraining(
                flagged, report.reasons, now=now, earlier_triggers=triggers, in_flight=(), settings=settings.retraining
            )
            retrain = choice.decision == "retrain"
            if retrain:
                triggers.append(now)
                outcome.signals.append(report.signal)
                if report.marks_change:  # what the ledger records (retrain.application.monitoring)
                    last_change = ConceptChange(now, report.change_baseline)
        if retrain and batch + 1 < len(stream.batches):
            outcome.retrained_after.append(batch)
            outcome.false_alarms += int(stable)
            model = replay.model_until(batch)
    return outcome


def delays(stream: Stream, outcome: Outcome) -> list[int | None]:
    """Per change point: batches until the first retraining at or after it (None: none before the next)."""
    found: list[int | None] = []
    points = list(stream.change_points or ())
    for position, point in enumerate(points):
        end = points[position + 1] if position + 1 < len(points) else len(stream.batches)
        after = [b for b in outcome.retrained_after if point <= b < end]
        found.append(after[0] - point if after else None)
    return found


POLICIES = ("never", "every-1", "every-2", "every-4", "every-8", "previous trigger", "trigger", "trigger (no labels)")


def summarise(stream: Stream, outcome: Outcome, seed: int) -> dict[str, Any]:
    found = delays(stream, outcome)
    detected = [d for d in found if d is not None]
    return {
        "stream": stream.name,
        "seed": seed,
        "policy": outcome.policy,
        "mean_metric": float(np.mean(outcome.metrics)),
        "retrainings": len(outcome.retrained_after),
        "delays": found,
        "mean_delay": float(np.mean(detected)) if detected else None,
        "missed": sum(1 for d in found if d is None),
        "false_alarms": outcome.false_alarms,
        "stable_batches": outcome.stable_batches,
        "false_alarms_per_20_stable": 20 * outcome.false_alarms / outcome.stable_batches
        if outcome.stable_batches
        else None,
        "signals": {name: outcome.signals.count(name) for name in sorted(set(outcome.signals))},
        "batch_metrics": outcome.metrics,
    }


def pooled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (stream, policy) over the seeds: the mean of the seeds' means and retrainings, every
    seed's delays, false alarms over all stable batches. The per-seed rows stay in ``per_seed``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["stream"], row["policy"]), []).append(row)
    found = []
    for (stream, policy), runs in groups.items():
        delays_seen = [d for run in runs for d in run["delays"]]
        detected = [d for d in delays_seen if d is not None]
        alarms = sum(run["false_alarms"] for run in runs)
        stable = sum(run["stable_batches"] for run in runs)
        found.append(
            {
                "stream": stream,
                "policy": policy,
                "seeds": [run["seed"] for run in runs],
                "mean_metric": float(np.mean([run["mean_metric"] for run in runs])),
                "retrainings": float(np.mean([run["retrainings"] for run in runs])),
                "delays": delays_seen,
                "mean_delay": float(np.mean(detected)) if detected else None,
                "missed": sum(1 for d in delays_seen if d is None),
                "change_points": len(delays_seen),
                "false_alarms": alarms,
                "stable_batches": stable,
                "false_alarms_per_20_stable": 20 * alarms / stable if stable else None,
                "per_seed": runs,
            }
        )
    return found


def _paired_gap(trigger: dict[str, Any], best: dict[str, Any], sign: float) -> float:
    return float(np.mean(sign * (np.asarray(trigger["batch_metrics"]) - np.asarray(best["batch_metrics"]))))


def verdicts(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per stream: the best fixed schedule by mean metric over the seeds, and whether the trigger met
    the target. The gap is the mean over seeds of the paired per-batch difference; its noise is 2
    standard errors across seeds (each seed draws its own stream and first champion, so the luck of one
    first model, which every policy but every-k keeps, is in it). With one seed, 2 standard errors of
    the paired per-batch difference (that luck left out)."""
    higher = HIGHER_IS_BETTER[metric]
    sign = 1.0 if higher else -1.0
    found = []
    for name in dict.fromkeys(row["stream"] for row in rows):
        mine = [row for row in rows if row["stream"] == name]
        fixed = [row for row in mine if row["policy"].startswith("every-")]
        if not fixed or not any(row["policy"] == "trigger" for row in mine):
            continue
        best = max(fixed, key=lambda r: sign * r["mean_metric"])
        trig = next(row for row in mine if row["policy"] == "trigger")
        pairs = list(zip(trig["per_seed"], best["per_seed"], strict=True))
        gaps = np.asarray([_paired_gap(t, b, sign) for t, b in pairs])
        if gaps.size > 1:
            noise = 2 * float(gaps.std(ddof=1)) / np.sqrt(gaps.size)
        else:
            paired = sign * (np.asarray(pairs[0][0]["batch_metrics"]) - np.asarray(pairs[0][1]["batch_metrics"]))
            noise = 2 * float(paired.std(ddof=1)) / np.sqrt(paired.size) if paired.size > 1 else 0.0
        gap = float(gaps.mean())
        found.append(
            {
                "stream": name,
                "seeds": len(pairs),
                "best_fixed": best["policy"],
                "best_fixed_metric": best["mean_metric"],
                "best_fixed_retrainings": best["retrainings"],
                "trigger_metric": trig["mean_metric"],
                "trigger_retrainings": trig["retrainings"],
                "metric_gap": gap,
                "seed_gaps": gaps.tolist(),
                "gap_noise": noise,
                "not_worse": gap >= -noise,
                "at_most_half": trig["retrainings"] <= best["retrainings"] / 2,
                "false_alarms_per_20_stable": trig["false_alarms_per_20_stable"],
            }
        )
    return found


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _delays_text(row: dict[str, Any]) -> str:
    if not row["change_points"]:
        return "—"
    if len(row["seeds"]) == 1:
        return ", ".join("missed" if d is None else str(d) for d in row["delays"])
    missed = f", {row['missed']} missed" if row["missed"] else ""
    mean = "—" if row["mean_delay"] is None else f"{row['mean_delay']:.1f}"
    return f"{mean} ({row['change_points'] - row['missed']} of {row['change_points']} found{missed})"


def markdown(rows: list[dict[str, Any]], found: list[dict[str, Any]], metric: str, streams: list[Stream]) -> str:
    seeds = len(rows[0]["seeds"]) if rows else 1
    per = " per seed" if seeds > 1 else ""
    lines = [
        f"| stream | policy | mean {metric} | retrainings{per} | delay after a change | "
        "false alarms / stable batches |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        alarms = f"{row['false_alarms']} / {row['stable_batches']}" if row["stable_batches"] else "—"
        lines.append(
            f"| {row['stream']} | {row['policy']} | {row['mean_metric']:.4f} | {_count(row['retrainings'])} "
            f"| {_delays_text(row)} | {alarms} |"
        )
    noise = "2 SE over seeds" if seeds > 1 else "2 SE"
    lines += [
        "",
        f"| stream | best fixed schedule | its retrainings | trigger's retrainings | trigger − best (± {noise}) "
        "| met | false alarms per 20 stable |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in found:
        rate = item["false_alarms_per_20_stable"]
        met = "yes" if item["not_worse"] and item["at_most_half"] else "no"
        lines.append(
            f"| {item['stream']} | {item['best_fixed']} ({item['best_fixed_metric']:.4f}) | "
            f"{_count(item['best_fixed_retrainings'])} | {_count(item['trigger_retrainings'])} | "
            f"{item['metric_gap']:+.4f} (± {item['gap_noise']:.4f}) | {met} | "
            f"{'—' if rate is None else f'{rate:.2f}'} |"
        )
    lines += ["", *[f"- {s.name}: {s.note}" for s in streams]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=336, help="rows per batch")
    parser.add_argument("--batches", type=int, default=60, help="batches per stream")
    parser.add_argument("--start", type=int, default=8, help="batches the first champion is trained on")
    parser.add_argument("--window", type=int, default=8, help="newest batches a retraining uses")
    parser.add_argument("--seed", type=int, default=7, help="the first seed")
    parser.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="seeds replayed (seed, seed+1, ...): each draws its own streams and first champion, so the "
        "verdict does not turn on the luck of one first model",
    )
    parser.add_argument("--streams", default="sea,agrawal,hyperplane,benign,stable,loans")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "trigger.json")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override params.yaml, e.g. drift.min_rows=100"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    base = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # drift.min_rows as `retrain init` sizes it from the batches (half a typical batch), unless --set
    base["drift"]["min_rows"] = nice_floor(args.rows * BATCH_SHARE)
    for assignment in args.set:
        key, _, value = assignment.partition("=")
        *parents, leaf = key.split(".")
        section = base
        for part in parents:
            section = section[part]
        section[leaf] = yaml.safe_load(value)
    wanted = args.streams.split(",")
    metric = parse_settings(base, "params.yaml").gate.primary_metric
    started = time.perf_counter()
    per_seed: list[dict[str, Any]] = []
    for seed in range(args.seed, args.seed + args.seeds):
        streams = river_streams(args.rows, args.batches, seed, wanted)
        if "loans" in wanted:
            streams.append(loans_stream(args.rows, args.batches, seed, parse_settings(base, "params.yaml")))
        for stream in streams:
            replay = Replay(stream, stream_settings(base, stream, args.window), args.window)
            for policy in args.policies.split(","):
                per_seed.append(summarise(stream, run_policy(replay, policy, args.start), seed))
                shown = {key: value for key, value in per_seed[-1].items() if key != "batch_metrics"}
                print(json.dumps(shown), file=sys.stderr, flush=True)
    rows = pooled(per_seed)
    found = verdicts(rows, metric)
    table = markdown(rows, found, metric, streams)
    print(table)
    print(f"\n{len(per_seed)} replays ({args.seeds} seeds) in {time.perf_counter() - started:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"settings": vars(args) | {"json": str(args.json), "markdown": None}, "rows": rows, "verdicts": found},
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    if args.markdown is not None:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
