"""Rollouts, the pure part: sticky arms, the share's schedule, the ledger's state machine, the verdict."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retrain.domain import rollout
from retrain.domain.lifecycle import LedgerEntry
from retrain.domain.rollout import ArmSample, Rollout, active_rollout, candidate_rows, due_share, judge_rollout
from retrain.domain.settings import RolloutSettings, TaskKind
from tests.unit.gate_settings import gate_settings

NOW = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def _rollout(share: float = 0.1, strategy: str = "canary") -> Rollout:
    return Rollout(7, "m", candidate="2", champion="1", strategy=strategy, share=share, started_at=NOW)


def test_a_customer_stays_in_one_arm_and_a_larger_share_keeps_everyone_the_smaller_one_had():
    ids = pd.DataFrame({"customer": np.arange(20_000)})
    tenth = candidate_rows(ids, 0.1, "salt")
    assert 0.09 < tenth.mean() < 0.11
    again = candidate_rows(ids.sample(frac=1.0, random_state=1).reset_index(drop=True), 0.1, "salt")
    shuffled = ids.sample(frac=1.0, random_state=1)["customer"].to_numpy()
    assert np.array_equal(again, tenth[shuffled])  # the arm is the key's, not the row position's
    as_text = candidate_rows(ids.astype(str), 0.1, "salt")  # the same ids read from a CSV
    assert np.array_equal(as_text, tenth)
    fifth = candidate_rows(ids, 0.2, "salt")
    assert fifth[tenth].all() and 0.19 < fifth.mean() < 0.21
    other = candidate_rows(ids, 0.1, "another rollout")
    assert 0.05 < (other & tenth).sum() / tenth.sum() < 0.15  # another rollout picks its own customers
    assert not candidate_rows(ids.head(0), 0.5, "salt").any()


def test_linear_steps_up_on_its_schedule_to_its_cap_and_canary_keeps_its_share():
    linear = RolloutSettings(strategy="linear", share=0.1, step=0.15, step_hours=24, max_share=0.4)
    assert due_share(linear, 0.1, 0) == 0.1
    assert due_share(linear, 0.1, 23.9) == 0.1
    assert due_share(linear, 0.1, 24) == pytest.approx(0.25)
    assert due_share(linear, 0.25, 48) == pytest.approx(0.4)
    assert due_share(linear, 0.4, 24 * 30) == pytest.approx(0.4)
    canary = RolloutSettings(strategy="canary", share=0.2)
    assert due_share(canary, 0.2, 24 * 30) == 0.2


def _entry(position: int, kind: str, event: dict | None = None, after: str = "1") -> LedgerEntry:
    return LedgerEntry(
        model_name="m",
        kind=kind,  # type: ignore[arg-type]
        champion_before="1",
        challenger="2",
        champion_after=after,
        actor="test",
        evidence={} if event is None else {"rollout": event},
        recorded_at=NOW,
        position=position,
    )


def test_the_ledger_tells_the_rollout_in_progress_its_share_and_files_and_when_it_ended():
    start = _entry(
        3, "rollout", {"event": "start", "strategy": "linear", "candidate": "2", "champion": "1", "share": 0.1}
    )
    step = _entry(4, "rollout", {"event": "step", "id": 3, "candidate": "2", "share": 0.2})
    looked = _entry(5, "rollout", {"event": "evaluation", "id": 3, "candidate": "2", "file": "/p/day-7.parquet"})
    other = _entry(6, "rollout", {"event": "step", "id": 99, "candidate": "5", "share": 0.9})  # not this rollout
    running = active_rollout([_entry(1, "promotion", after="1"), start, step, looked, other])
    assert running is not None
    assert (running.id, running.candidate, running.champion, running.strategy) == (3, "2", "1", "linear")
    assert (running.share, running.steps, running.files) == (0.2, 1, ("/p/day-7.parquet",))
    ended = _entry(7, "rollout", {"event": "end", "id": 3, "candidate": "2", "outcome": "rolled_back"})
    assert active_rollout([start, step, ended]) is None
    assert active_rollout([start, _entry(8, "rollback", after="0")]) is None  # the champion moved: superseded
    assert active_rollout([_entry(1, "promotion")]) is None


def _arm(rng: np.random.Generator, rows: int, signal: float, labelled: int | None = None) -> ArmSample:
    """Binary rows whose scores separate the classes by ``signal`` (0: coin flips)."""
    labels = rng.integers(0, 2, rows).astype("float64")
    scores = 1 / (1 + np.exp(-(signal * (2 * labels - 1) + rng.normal(0, 1, rows))))
    keep = rows if labelled is None else labelled
    return ArmSample(rows, labels[:keep], scores[:keep])


def _judge(champion: ArmSample, candidate: ArmSample, elapsed: float = 24, **changes: object):
    gate = gate_settings(max_drop=changes.pop("max_drop", 0.01), bootstrap_resamples=400)
    settings = RolloutSettings(
        strategy="canary", **{"min_labelled_rows": 1000, "guard_after_rows": 200, "max_days": 14, **changes}
    )
    return judge_rollout(
        _rollout(), champion, candidate, task="binary", gate=gate, settings=settings, elapsed_hours=elapsed, seed=3
    )


def test_an_equal_candidate_completes_once_each_arm_has_its_labels_and_waits_before():
    rng = np.random.default_rng(0)
    champion, candidate = _arm(rng, 20_000, 1.0), _arm(rng, 5_000, 1.02)
    verdict = _judge(champion, candidate)
    assert verdict.action == "complete", verdict.reasons
    assert verdict.comparison is not None and verdict.comparison.method == "two-sample bootstrap"
    assert verdict.comparison.lower > -0.01 and verdict.labelled == {"champion": 20_000, "candidate": 5_000}
    waiting = _judge(champion, _arm(rng, 5_000, 1.0, labelled=500))
    assert waiting.action == "continue"
    assert "waiting for labels: 500 (candidate) and 20000 (champion) labelled rows of 1000 each" in waiting.reasons[-1]


def test_a_much_worse_candidate_rolls_back_at_once_on_its_first_labels_and_a_slightly_worse_one_at_the_decision():
    rng = np.random.default_rng(1)
    champion = _arm(rng, 20_000, 1.2)
    broken = _judge(champion, _arm(rng, 400, 0.0))  # guardrails from 200 labelled rows: well before 1000
    assert broken.action == "roll_back" and broken.guardrails
    assert "surely worse on real traffic" in broken.reasons[0]
    # about 0.02 worse in ROC AUC, with a margin of 0.02: not surely worse, not shown non-inferior either
    slightly = _judge(_arm(rng, 40_000, 1.0), _arm(rng, 10_000, 0.9), max_drop=0.02)
    assert slightly.action == "roll_back" and not slightly.guardrails, slightly.reasons
    assert "fails the gate's rule (non-inferiority" in slightly.reasons[0]


def test_a_rollout_without_labels_ends_at_max_days_by_the_rule_in_params():
    rng = np.random.default_rng(2)
    champion, candidate = _arm(rng, 500, 1.0, labelled=0), _arm(rng, 50, 1.0, labelled=0)
    assert _judge(champion, candidate, elapsed=24 * 13).action == "continue"
    late = _judge(champion, candidate, elapsed=24 * 14)
    assert late.action == "roll_back" and "no decision after 14 days" in late.reasons[0]
    assert _judge(champion, candidate, elapsed=24 * 14, on_timeout="complete").action == "complete"


def test_linear_keeps_stepping_while_the_candidate_passes_and_completes_at_its_cap():
    rng = np.random.default_rng(4)
    champion, candidate = _arm(rng, 20_000, 1.0), _arm(rng, 5_000, 1.0)
    settings = RolloutSettings(strategy="linear", share=0.1, step=0.2, step_hours=24, max_share=0.5)
    gate = gate_settings(max_drop=0.02, bootstrap_resamples=400)

    def judged(hours: float) -> rollout.RolloutVerdict:
        return judge_rollout(
            _rollout(strategy="linear"),
            champion,
            candidate,
            task="binary",
            gate=gate,
            settings=settings,
            elapsed_hours=hours,
            seed=3,
        )

    first = judged(24)
    assert first.action == "continue" and first.share == pytest.approx(0.3)
    assert "the share keeps stepping to 50%" in first.reasons[0]
    assert judged(48).action == "complete" and judged(48).share == pytest.approx(0.5)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_every_task_type_is_judged_on_its_own_primary_metric(task: TaskKind):
    rng = np.random.default_rng(5)

    def arm(rows: int, noise: float) -> ArmSample:
        if task == "regression":
            truth = rng.normal(0, 1, rows)
            return ArmSample(rows, truth, truth + rng.normal(0, noise, rows))
        labels = rng.integers(0, 3, rows)
        logits = rng.normal(0, noise, (rows, 3))
        logits[np.arange(rows), labels] += 1.5
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return ArmSample(rows, labels.astype("float64"), probabilities)

    metric = "rmse" if task == "regression" else "log_loss"
    gate = gate_settings(primary_metric=metric, floor=100.0 if task == "regression" else 10.0, max_drop=0.05)
    settings = RolloutSettings(strategy="canary", min_labelled_rows=1000, guard_after_rows=200)

    def judged(candidate: ArmSample) -> rollout.RolloutVerdict:
        return judge_rollout(
            _rollout(), arm(8000, 1.0), candidate, task=task, gate=gate, settings=settings, elapsed_hours=1, seed=1
        )

    same = judged(arm(3000, 1.0))
    assert same.action == "complete", same.reasons
    assert same.comparison is not None and same.comparison.metric == metric
    worse = judged(arm(3000, 3.0))
    assert worse.action == "roll_back", worse.reasons
    assert worse.comparison is not None and worse.comparison.gain < -0.05  # worse on the metric itself
    assert any(reason.startswith(f"surely worse on real traffic: {metric} gain -") for reason in worse.reasons)
