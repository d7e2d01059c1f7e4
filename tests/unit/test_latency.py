"""Latency guardrail: challenger vs champion timed together, so machine load cancels out."""

import itertools

import numpy as np
import pytest

from retrain.domain.gate import GateInputs, LatencyMeasure, decide, default_checks
from retrain.domain.latency import compare_latency, judge_latency
from tests.unit.gate_settings import BASELINE

ROUNDS = 200


def _busy_machine(seed: int, challenger_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Timings of interleaved rounds on a loaded machine: load drifts over time (a shared factor per
    round, up to 12x) and one call in four is preempted on its own (up to 20x more)."""
    rng = np.random.default_rng(seed)
    load = np.exp(rng.uniform(0, np.log(12), ROUNDS))
    base = 2.0  # ms, an idle machine's one-row call of the champion

    def calls(factor: float) -> np.ndarray:
        preempted = np.where(rng.random(ROUNDS) < 0.25, rng.uniform(1, 20, ROUNDS), 1.0)
        return base * factor * load * preempted * rng.uniform(0.9, 1.1, ROUNDS)

    return calls(1.0), calls(challenger_factor)


def _gate(champion: np.ndarray, challenger: np.ndarray):
    single, batch = compare_latency(challenger, champion), compare_latency(challenger * 10, champion * 10)
    measured: dict[str, float] = {
        "latency_single_ms": single.challenger_ms,
        "latency_single_champion_ms": float(single.champion_ms or 0.0),
        "latency_single_ratio": float(single.ratio or 0.0),
        "latency_single_rounds": single.rounds,
        "latency_batch_ms": batch.challenger_ms,
        "latency_batch_champion_ms": float(batch.champion_ms or 0.0),
        "latency_batch_ratio": float(batch.ratio or 0.0),
        "model_mb": 0.3,
    }
    settings = BASELINE.model_copy(
        update={"guardrails": BASELINE.guardrails.model_copy(update={"max_latency_single_ms": 250.0})}
    )
    metrics = {"roc_auc": 0.8, "pr_auc": 0.5, "log_loss": 0.4, "brier": 0.1}
    return decide(default_checks(settings), GateInputs(metrics, None, guardrails=measured), "roc_auc")


@pytest.mark.parametrize("seed", range(5))
def test_a_busy_machine_slowing_both_models_alike_does_not_fail_the_check(seed: int):
    champion, challenger = _busy_machine(seed, 1.0)
    assert np.percentile(challenger, 95) > 50  # what the old absolute p95 limit (50 ms) saw: a failure
    comparison = compare_latency(challenger, champion)
    assert comparison.ratio == pytest.approx(1.0, abs=0.25)
    verdict = judge_latency(comparison, max_ratio=2.0, ceiling_ms=250.0, what="latency_single")
    assert verdict.passed, verdict.reason
    check = _gate(champion, challenger).check("latency_single")
    assert check is not None and check.passed and check.threshold == 2.0
    assert {row.measure for row in check.rows(LatencyMeasure)} == {"ratio to champion", "median ms"}
    assert len(check.details) == 2


@pytest.mark.parametrize("seed", range(5))
def test_a_challenger_genuinely_three_times_slower_fails(seed: int):
    champion, challenger = _busy_machine(seed, 3.0)
    comparison = compare_latency(challenger, champion)
    assert comparison.ratio == pytest.approx(3.0, rel=0.25)
    verdict = judge_latency(comparison, max_ratio=2.0, ceiling_ms=250.0, what="latency_single")
    assert not verdict.passed and verdict.ratio_passed is False and verdict.ceiling_passed
    check = _gate(champion, challenger).check("latency_single")
    assert check is not None and not check.passed
    assert check.value == pytest.approx(comparison.ratio) and check.threshold == 2.0
    assert "x the champion" in check.reason and "> 2.00x" in check.reason


def test_without_a_champion_only_the_generous_ceiling_applies():
    fine = judge_latency(compare_latency([30.0, 60.0, 90.0]), max_ratio=2.0, ceiling_ms=250.0, what="latency_single")
    assert fine.passed and fine.ratio_passed is None and "no champion" in fine.reason
    slow = judge_latency(compare_latency([300.0, 400.0]), max_ratio=2.0, ceiling_ms=250.0, what="latency_single")
    assert not slow.passed and "> ceiling 250.00 ms" in slow.reason


def test_the_ceiling_still_fails_a_model_unusable_on_any_machine_even_beside_a_slow_champion():
    verdict = judge_latency(compare_latency([900.0] * 3, [850.0] * 3), max_ratio=2.0, ceiling_ms=250.0, what="x")
    assert verdict.ratio_passed and not verdict.ceiling_passed and not verdict.passed


def test_timings_must_come_in_pairs():
    with pytest.raises(ValueError, match="pairs"):
        compare_latency([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        compare_latency([])


def test_the_ceiling_judges_cpu_time_when_measured_so_waiting_for_a_core_does_not_count():
    # No champion yet: a loaded machine made each call wait ~300 ms for a core, but each cost 5 ms of CPU.
    waited = compare_latency([300.0, 320.0, 290.0], challenger_cpu_ms=[5.0, 6.0, 5.0])
    verdict = judge_latency(waited, max_ratio=2.0, ceiling_ms=250.0, what="latency_single")
    assert verdict.passed and "median CPU 5.00 ms" in verdict.reason
    costly = compare_latency([300.0, 320.0, 290.0], challenger_cpu_ms=[280.0, 300.0, 290.0])
    assert not judge_latency(costly, max_ratio=2.0, ceiling_ms=250.0, what="latency_single").passed
    measured = {"latency_single_ms": 300.0, "latency_single_cpu_ms": 5.0, "latency_batch_ms": 900.0}
    measured |= {"latency_batch_cpu_ms": 40.0, "model_mb": 0.3}
    settings = BASELINE.model_copy(
        update={"guardrails": BASELINE.guardrails.model_copy(update={"max_latency_single_ms": 250.0})}
    )
    metrics = {"roc_auc": 0.8, "pr_auc": 0.5, "log_loss": 0.4, "brier": 0.1}
    decision = decide(default_checks(settings), GateInputs(metrics, None, guardrails=measured), "roc_auc")
    single = decision.check("latency_single")
    assert single is not None and single.passed and single.value == 5.0 and single.threshold == 250.0
    assert single.details[1].to_dict() == {"measure": "median CPU ms", "value": 5.0, "threshold": 250.0, "passed": True}


def test_the_ratio_is_of_cpu_times_when_both_models_were_measured_so_waiting_does_not_count():
    # The same two models: the challenger costs 1.2x the champion's CPU, but on a loaded machine its
    # longer calls waited for a core more often (wall-clock 2.4x): the CPU ratio says what it costs.
    wall_champion, wall_challenger = [10.0, 11.0, 10.0, 12.0], [24.0, 26.0, 25.0, 27.0]
    cpu_champion, cpu_challenger = [5.0, 5.0, 5.0, 5.0], [6.0, 6.0, 6.0, 6.0]
    comparison = compare_latency(wall_challenger, wall_champion, cpu_challenger, cpu_champion)
    assert comparison.ratio == pytest.approx(1.2) and comparison.ratio_basis == "CPU"
    verdict = judge_latency(comparison, max_ratio=2.0, ceiling_ms=250.0, what="latency_batch")
    assert verdict.passed and "1.20x the champion (CPU 6.00 vs 5.00 ms" in verdict.reason
    wall_only = compare_latency(wall_challenger, wall_champion, cpu_challenger)
    assert wall_only.ratio_basis == "wall-clock" and wall_only.ratio == pytest.approx(2.4, rel=0.05)


def test_the_gate_reads_the_cpu_ratio_basis_from_the_measurements():
    measured = {"latency_single_ms": 3.0, "latency_single_cpu_ms": 2.0, "latency_single_champion_ms": 1.0}
    measured |= {"latency_single_champion_cpu_ms": 1.9, "latency_single_ratio": 1.05, "latency_single_rounds": 200}
    measured |= {"latency_batch_ms": 40.0, "latency_batch_cpu_ms": 30.0, "model_mb": 0.3}
    metrics = {"roc_auc": 0.8, "pr_auc": 0.5, "log_loss": 0.4, "brier": 0.1}
    decision = decide(default_checks(BASELINE), GateInputs(metrics, None, guardrails=measured), "roc_auc")
    single = decision.check("latency_single")
    assert single is not None and single.passed and "(CPU 2.00 vs 1.90 ms" in single.reason


def test_a_measurement_stops_early_only_once_every_round_clearly_passes():
    """Seven rounds all within the limit: the median surely is (all seven by chance < 1%); a round
    past it keeps the measurement going to the last round, so a near or failing model gets them all."""
    from retrain.application.guardrails import interleaved_timings, passes_clearly
    from retrain.domain.latency import EARLY_PASS_ROUNDS, clearly_within

    assert not clearly_within([1.0] * (EARLY_PASS_ROUNDS - 1), 2.0)
    assert clearly_within([1.0] * EARLY_PASS_ROUNDS, 2.0) and not clearly_within([1.0] * 6 + [2.5], 2.0)
    assert 0.5**EARLY_PASS_ROUNDS < 0.01

    clock = itertools.count()  # every reading of this fake CPU clock is 1 ms after the last

    def tick() -> float:
        return next(clock) / 1000

    def calls(costs: list[float]):  # each call advances the clock by its cost, in 1 ms steps
        def call() -> None:
            for _ in range(int(costs.pop(0)) - 1 if costs else 0):
                tick()

        return call

    fast = interleaved_timings(lambda: None, lambda: None, 200, tick, passes_clearly(2.0, 250.0), warmup=0)
    assert len(fast.challenger) == EARLY_PASS_ROUNDS and len(fast.champion or []) == EARLY_PASS_ROUNDS
    alone = interleaved_timings(lambda: None, None, 200, tick, passes_clearly(2.0, 250.0), warmup=0)
    assert len(alone.challenger) == EARLY_PASS_ROUNDS
    slow_first = [5.0] + [1.0] * 300  # one slow call of the challenger: 5x its champion's
    near = interleaved_timings(calls(slow_first), lambda: None, 40, tick, passes_clearly(2.0, 250.0), warmup=0)
    assert len(near.challenger) == 40
    unsettled = interleaved_timings(lambda: None, lambda: None, 12, tick, None, warmup=0)
    assert len(unsettled.challenger) == 12
