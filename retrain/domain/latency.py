"""Latency of a challenger judged against its champion, in a way a busy machine cannot sway.

Absolute milliseconds say more about the machine's load than about the model: the same model read
20 ms on an idle laptop and 80 ms beside two CPU-bound processes. So the gate times champion and
challenger in the same run, alternating their calls round by round (whatever slows the machine in a
round slows both), and judges the median of the per-round ratios, which a few preempted calls cannot
move. An absolute ceiling stays, set generously, for a model unusable on any machine; with no
champion yet it is the only check. Both are judged on the *CPU time* of the calls when it was
measured for both models: waiting for a core on a loaded machine adds wall-clock time, not CPU time,
so the ratio and the ceiling say what the models cost rather than how busy the machine was. (Wall-
clock ratios of short calls were swayed by the load: 1.18x on a quiet machine, 2.04x beside a
parallel test run, for the same two models.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyComparison:
    """Medians of both models' timings (ms) and the median per-round ratio challenger/champion."""

    challenger_ms: float
    champion_ms: float | None = None
    ratio: float | None = None
    rounds: int = 0
    challenger_cpu_ms: float | None = None  # median CPU time of the challenger's calls, when measured
    champion_cpu_ms: float | None = None  # the champion's, when measured: then the ratio is of CPU times

    @property
    def ratio_basis(self) -> str:
        return "wall-clock" if self.champion_cpu_ms is None or self.challenger_cpu_ms is None else "CPU"

    @property
    def ceiling_ms(self) -> float:
        """What the absolute ceiling judges: CPU time when measured, else wall-clock time."""
        return self.challenger_ms if self.challenger_cpu_ms is None else self.challenger_cpu_ms


Timings = Sequence[float] | np.ndarray


def compare_latency(
    challenger_ms: Timings,
    champion_ms: Timings | None = None,
    challenger_cpu_ms: Timings | None = None,
    champion_cpu_ms: Timings | None = None,
) -> LatencyComparison:
    """Summarise interleaved timings: round ``i`` timed ``champion_ms[i]`` and ``challenger_ms[i]`` back
    to back. With both models' CPU times the per-round ratios are of CPU times, else of wall-clock."""
    challenger = np.asarray(challenger_ms, dtype="float64")
    if challenger.size == 0 or not np.all(np.isfinite(challenger)) or np.any(challenger < 0):
        raise ValueError("need at least one finite, non-negative challenger timing")
    cpu = None if challenger_cpu_ms is None or len(challenger_cpu_ms) == 0 else float(np.median(challenger_cpu_ms))
    if champion_ms is None:
        return LatencyComparison(float(np.median(challenger)), rounds=int(challenger.size), challenger_cpu_ms=cpu)
    champion = np.asarray(champion_ms, dtype="float64")
    if champion.shape != challenger.shape:
        raise ValueError(f"interleaved timings come in pairs, got {champion.size} and {challenger.size}")
    mine, theirs, champion_cpu = challenger, champion, None
    if cpu is not None and champion_cpu_ms is not None and len(champion_cpu_ms) == len(challenger_cpu_ms or ()):
        mine, theirs = np.asarray(challenger_cpu_ms, dtype="float64"), np.asarray(champion_cpu_ms, dtype="float64")
        champion_cpu = float(np.median(theirs))
    if theirs.shape != mine.shape:
        raise ValueError(f"interleaved timings come in pairs, got {theirs.size} and {mine.size}")
    ratios = paired_ratios(mine, theirs)
    return LatencyComparison(
        challenger_ms=float(np.median(challenger)),
        champion_ms=float(np.median(champion)),
        ratio=float(np.median(ratios)),
        rounds=int(challenger.size),
        challenger_cpu_ms=cpu,
        champion_cpu_ms=champion_cpu,
    )


#: Rounds after which a measurement whose every round was within its limit stops early: were the
#: true median at or past the limit, each round would be past it with probability at least 1/2, so
#: all of 7 rounds within it happens by chance less than 1% of the time (a sign test, whatever the
#: timings' distribution). Only a pass stops early; a model near or past a limit gets every round.
EARLY_PASS_ROUNDS = 7


def clearly_within(values: Timings, limit: float, rounds: int = EARLY_PASS_ROUNDS) -> bool:
    """Whether at least ``rounds`` values were all within ``limit``: its median surely is (above)."""
    measured = np.asarray(values, dtype="float64")
    return bool(measured.size >= rounds and np.all(measured <= limit))


def paired_ratios(challenger: Timings, champion: Timings) -> np.ndarray:
    """Round by round, challenger over champion (a timer that read 0 does not divide by zero)."""
    floor = np.finfo("float64").tiny
    ratios: np.ndarray = np.asarray(challenger, dtype="float64") / np.maximum(
        np.asarray(champion, dtype="float64"), floor
    )
    return ratios


@dataclass(frozen=True)
class LatencyVerdict:
    passed: bool
    reason: str
    ratio_passed: bool | None  # None: no champion to compare with
    ceiling_passed: bool


def judge_latency(comparison: LatencyComparison, max_ratio: float, ceiling_ms: float, what: str) -> LatencyVerdict:
    """Pass when the challenger is at most ``max_ratio`` times the champion and under the ceiling."""
    ceiling_ok = comparison.ceiling_ms <= ceiling_ms
    kind = "wall-clock" if comparison.challenger_cpu_ms is None else "CPU"
    ceiling = f"median {kind} {comparison.ceiling_ms:.2f} ms {'≤' if ceiling_ok else '>'} ceiling {ceiling_ms:.2f} ms"
    if comparison.ratio is None or comparison.champion_ms is None:
        return LatencyVerdict(ceiling_ok, f"{what}: no champion to compare with; {ceiling}", None, ceiling_ok)
    ratio_ok = comparison.ratio <= max_ratio
    if comparison.ratio_basis == "CPU":
        medians = f"CPU {comparison.challenger_cpu_ms:.2f} vs {comparison.champion_cpu_ms:.2f} ms"
    else:
        medians = f"{comparison.challenger_ms:.2f} vs {comparison.champion_ms:.2f} ms"
    relative = (
        f"{comparison.ratio:.2f}x the champion ({medians}, "
        f"median of {comparison.rounds} interleaved rounds) {'≤' if ratio_ok else '>'} {max_ratio:.2f}x"
    )
    return LatencyVerdict(ratio_ok and ceiling_ok, f"{what}: {relative}; {ceiling}", ratio_ok, ceiling_ok)
