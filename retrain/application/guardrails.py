"""Measure a registered model as it will serve: loaded from the registry, timed, weighed.

Latency is measured through the loaded registered model (native booster plus its feature spec,
the way scoring loads it), not the in-memory training object: what is timed is what will run.
The challenger is timed against the champion in the same run, their calls alternating round by
round after a warm-up, so that the load of the machine (other jobs, CI neighbours) falls on both
alike; :mod:`retrain.domain.latency` turns the timings into a ratio and a median.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from retrain.adapters.registry import ModelRegistry
from retrain.application.models import load_model
from retrain.domain.latency import clearly_within, compare_latency, paired_ratios
from retrain.domain.task import BINARY, Task

BATCH_ROWS = 10_000
WARMUP_CALLS = 5  # one-row calls; a 10,000-row call warms its caches in one


@dataclass
class Timings:
    """Per-round wall-clock and CPU ms of both models."""

    challenger: list[float] = field(default_factory=list)
    champion: list[float] | None = None
    challenger_cpu: list[float] = field(default_factory=list)
    champion_cpu: list[float] = field(default_factory=list)


def _timed_ms(call: Callable[[], object], cpu_clock: Callable[[], float]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_clock()
    call()
    return (time.perf_counter() - wall) * 1000, (cpu_clock() - cpu) * 1000


def interleaved_timings(
    challenger: Callable[[], object],
    champion: Callable[[], object] | None,
    rounds: int,
    cpu_clock: Callable[[], float] = time.process_time,
    settled: Callable[[Timings], bool] | None = None,
    warmup: int = WARMUP_CALLS,
) -> Timings:
    """Warm both up, then time one call of each per round, alternating which goes first, for at most
    ``rounds`` rounds: fewer when ``settled`` says after a round that the timings so far already pass.

    ``cpu_clock``: ``time.thread_time`` for a single-threaded call (it runs in this thread, and other
    threads of the process, e.g. Prefect's, do not count), ``time.process_time`` for a multi-threaded one.
    """
    for _ in range(warmup):
        challenger()
        if champion is not None:
            champion()
    timings = Timings(champion=None if champion is None else [])

    def ours() -> None:
        wall, cpu = _timed_ms(challenger, cpu_clock)
        timings.challenger.append(wall)
        timings.challenger_cpu.append(cpu)

    def theirs() -> None:
        if champion is not None and timings.champion is not None:
            wall, cpu = _timed_ms(champion, cpu_clock)
            timings.champion.append(wall)
            timings.champion_cpu.append(cpu)

    for index in range(rounds):
        first, second = (ours, theirs) if index % 2 else (theirs, ours)
        first()
        second()
        if settled is not None and settled(timings):
            break
    return timings


def passes_clearly(max_ratio: float, ceiling_ms: float) -> Callable[[Timings], bool]:
    """Settled once every round so far is under the ceiling and, with a champion, within the ratio
    (CPU times, as they are judged): :func:`~retrain.domain.latency.clearly_within`."""

    def settled(timings: Timings) -> bool:
        if not clearly_within(timings.challenger_cpu, ceiling_ms):
            return False
        if timings.champion is None:
            return True
        return clearly_within(paired_ratios(timings.challenger_cpu, timings.champion_cpu), max_ratio)

    return settled


def _latency(prefix: str, timings: Timings) -> dict[str, float]:
    comparison = compare_latency(timings.challenger, timings.champion, timings.challenger_cpu, timings.champion_cpu)
    measured = {f"{prefix}_ms": comparison.challenger_ms, f"{prefix}_rounds": float(comparison.rounds)}
    if comparison.challenger_cpu_ms is not None:
        measured[f"{prefix}_cpu_ms"] = comparison.challenger_cpu_ms
    if comparison.champion_cpu_ms is not None:
        measured[f"{prefix}_champion_cpu_ms"] = comparison.champion_cpu_ms
    if comparison.ratio is not None and comparison.champion_ms is not None:
        measured[f"{prefix}_ratio"] = comparison.ratio
        measured[f"{prefix}_champion_ms"] = comparison.champion_ms
    return measured


def measure(
    registry: ModelRegistry,
    version: str,
    rows: pd.DataFrame,
    scratch: Path,
    champion_version: str | None = None,
    task: Task = BINARY,
    *,
    single_rounds: int = 200,
    batch_rounds: int = 10,
    max_ratio: float | None = None,
    ceiling_single_ms: float | None = None,
    ceiling_batch_ms: float | None = None,
) -> dict[str, float]:
    """Median one-row and 10k-row latency (ms) of one registered version, its ratio to the champion
    (when there is one) and its model file size (MB); timed through the task's own prediction,
    at most ``*_rounds`` timed calls of each model per kind. Given the limits the gate judges by,
    a kind stops early once its rounds clearly pass them (:func:`passes_clearly`)."""
    ours_model = load_model(registry, version)
    rival_model = load_model(registry, champion_version) if champion_version is not None else None
    one = rows.head(1)
    batch = rows.sample(n=BATCH_ROWS, replace=len(rows) < BATCH_ROWS, random_state=0)
    size = registry.model_file(version, scratch).stat().st_size

    def calls(frame: pd.DataFrame, n_threads: int) -> tuple[Callable[[], object], Callable[[], object] | None]:
        # each model times its own reading of the rows (tokens of its sensitive columns included)
        ours = lambda: ours_model.predict(frame, task, n_threads)  # noqa: E731
        if rival_model is None:
            return ours, None
        return ours, lambda: rival_model.predict(frame, task, n_threads)

    # Both kinds run on one thread, timed on this thread's CPU clock: what a call costs, which neither
    # the machine's load nor a descheduled sibling thread (a multi-threaded call waits for its slowest
    # thread, and its idle threads spin) can sway.
    def settled(ceiling_ms: float | None) -> Callable[[Timings], bool] | None:
        if ceiling_ms is None or (rival_model is not None and max_ratio is None):
            return None
        return passes_clearly(max_ratio if max_ratio is not None else float("inf"), ceiling_ms)

    single = interleaved_timings(*calls(one, 1), single_rounds, time.thread_time, settled(ceiling_single_ms))
    many = interleaved_timings(*calls(batch, 1), batch_rounds, time.thread_time, settled(ceiling_batch_ms), warmup=1)
    return {**_latency("latency_single", single), **_latency("latency_batch", many), "model_mb": size / 1_000_000}
