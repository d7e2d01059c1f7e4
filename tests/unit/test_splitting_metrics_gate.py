import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from retrain.domain.gate import ComparisonInterval, GateInputs, decide, default_checks
from retrain.domain.metrics import classification_metrics, expected_calibration_error, gain, meets_floor
from retrain.domain.rows import column_of
from retrain.domain.settings import GateSettings
from retrain.domain.splitting import SplitError, split_by_time
from tests.unit.gate_settings import BASELINE, FAST


def _frame(days: int) -> pd.DataFrame:
    dates = [dt.date(2026, 1, 1) + dt.timedelta(days=d) for d in range(days) for _ in range(3)]
    return pd.DataFrame({"t": pd.to_datetime(dates), "x": range(len(dates))})


def test_split_puts_newest_days_in_holdout_and_never_overlaps():
    split = split_by_time(_frame(6), "t", holdout_days=2, validation_days=1)
    assert split.holdout_days == ("2026-01-05", "2026-01-06")
    assert split.validation_days == ("2026-01-04", "2026-01-04")
    assert split.train_days == ("2026-01-01", "2026-01-03")
    assert (
        column_of(split.train, "t").max()
        < split.validation["t"].min()
        <= split.validation["t"].max()
        < split.holdout["t"].min()
    )
    assert len(split.train) + len(split.validation) + len(split.holdout) == 18


def test_split_refuses_too_few_days_with_advice():
    with pytest.raises(SplitError, match=r"covers 3 day\(s\).*needs at least 4"):
        split_by_time(_frame(3), "t", holdout_days=2, validation_days=1, min_train_days=1)


def test_metrics_on_perfect_and_random_scores():
    y = np.array([0, 0, 1, 1])
    perfect = classification_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect["roc_auc"] == 1.0 and perfect["pr_auc"] == 1.0
    assert perfect["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    inverted = classification_metrics(y, np.array([0.9, 0.8, 0.2, 0.1]))
    assert inverted["roc_auc"] == 0.0


def test_metrics_refuse_single_class():
    with pytest.raises(ValueError, match="both classes"):
        classification_metrics(np.array([1, 1]), np.array([0.3, 0.4]))


def test_gain_and_floor_follow_metric_direction():
    assert gain("roc_auc", 0.8, 0.7) == pytest.approx(0.1)
    assert gain("log_loss", 0.4, 0.5) == pytest.approx(0.1)
    assert meets_floor("roc_auc", 0.7, 0.65) and not meets_floor("roc_auc", 0.6, 0.65)
    assert meets_floor("brier", 0.1, 0.2) and not meets_floor("brier", 0.3, 0.2)


GATE = BASELINE
SUPERIORITY = GATE.model_copy(update={"mode": "superiority", "min_gain": 0.0})


def _decide(challenger: float, champion: float | None, settings: GateSettings = GATE):
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.7, 0.9])
    champion_metrics = None if champion is None else {"roc_auc": champion}
    inputs = GateInputs({"roc_auc": challenger}, champion_metrics, y, p, None, FAST)
    return decide(default_checks(settings), inputs, "roc_auc")


def _paired(lift: float, n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    noise = rng.normal(0, 1, n)
    champion = 1 / (1 + np.exp(-(y * 1.0 + noise)))
    challenger = 1 / (1 + np.exp(-(y * (1.0 + lift) + noise + rng.normal(0, 0.3, n))))
    return (
        y,
        champion,
        challenger,
        classification_metrics(y, champion),
        classification_metrics(y, challenger),
    )


def test_first_model_above_floor_is_promoted():
    decision = _decide(0.75, None)
    assert decision.promote and decision.reasons == ()
    assert [c.name for c in decision.checks] == [
        "absolute_floor",
        "non_inferiority",
        "slices",
        "calibration",
        "latency_single",
        "latency_batch",
        "model_size",
    ]


def test_first_model_below_floor_is_refused_with_reason():
    decision = _decide(0.65, None)
    assert not decision.promote
    assert decision.reasons == ("roc_auc 0.6500 misses the floor 0.7000",)


def _judge(lift: float, settings: GateSettings):
    y, champion, challenger, m_champion, m_challenger = _paired(lift)
    inputs = GateInputs(m_challenger, m_champion, y, challenger, champion, FAST)
    return decide(default_checks(settings, seed=1), inputs, "roc_auc")


def test_non_inferiority_passes_a_clearly_better_challenger_and_refuses_a_clearly_worse_one():
    better = _judge(0.6, GATE)
    assert better.promote and better.checks[1].value is not None and better.checks[1].value > 0
    worse = _judge(-0.6, GATE)
    comparison = worse.checks[1]
    assert not worse.promote and not comparison.passed
    assert "CI [" in comparison.reason
    assert comparison.reason.startswith("non-inferiority: the lower bound of the 95% CI of the roc_auc gain, ")
    assert "does not exceed -0.0100" in comparison.reason


#: What a comparison check's reason says it compared: "<number> exceeds|does not exceed <threshold>".
_COMPARED = re.compile(r"(?P<value>[+-]\d+\.\d{4}),? (?:exceeds|does not exceed) (?P<threshold>[+-]\d+\.\d{4})")


def _compared(reason: str) -> tuple[str, str]:
    (found,) = _COMPARED.finditer(reason)  # one comparison, stated once
    return found["value"], found["threshold"]


@pytest.mark.parametrize(
    ("lift", "settings", "metric"),
    [
        (0.05, GATE, "roc_auc"),  # a small gain whose interval straddles zero: lower bound and gain differ in sign
        (-0.6, GATE, "roc_auc"),  # refused
        (0.05, SUPERIORITY, "roc_auc"),
        (0.6, GATE.model_copy(update={"primary_metric": "pr_auc", "floor": 0.0}), "pr_auc"),  # point estimate
    ],
)
def test_the_comparison_states_the_very_number_its_value_holds(lift: float, settings: GateSettings, metric: str):
    """The report shows value and threshold beside the reason: the reason must name the number compared
    (the CI's lower bound, or the point estimate without a bootstrap), not only the gain."""
    y, champion, challenger, m_champion, m_challenger = _paired(lift)
    inputs = GateInputs(m_challenger, m_champion, y, challenger, champion, FAST)
    comparison = decide(default_checks(settings, seed=1), inputs, metric).checks[1]
    assert comparison.value is not None and comparison.threshold is not None
    assert _compared(comparison.reason) == (f"{comparison.value:+.4f}", f"{comparison.threshold:+.4f}")
    (interval,) = comparison.details
    assert isinstance(interval, ComparisonInterval)
    if interval.lower is None:  # a point estimate: the value is the gain itself, and the reason says so
        assert comparison.value == interval.gain and "a point estimate" in comparison.reason
    else:
        assert comparison.value == interval.lower != interval.gain
        assert f"gain {interval.gain:+.4f}, CI [{interval.lower:+.4f}, {interval.upper:+.4f}]" in comparison.reason


def test_superiority_refuses_a_gain_that_the_interval_does_not_prove():
    tiny = _judge(0.01, SUPERIORITY)  # a real but tiny lift: its CI straddles zero
    assert [c.name for c in tiny.checks if not tiny.promote and not c.passed] == ["superiority"]
    assert _judge(0.6, SUPERIORITY).promote


def test_pr_auc_falls_back_to_the_point_estimate_and_says_so():
    settings = GATE.model_copy(update={"primary_metric": "pr_auc", "floor": 0.0})
    y, champion, challenger, m_champion, m_challenger = _paired(0.6)
    inputs = GateInputs(m_challenger, m_champion, y, challenger, champion, FAST)
    decision = decide(default_checks(settings), inputs, "pr_auc")
    assert "point estimate" in decision.checks[1].reason


def test_decision_serialises_every_check():
    data = _judge(-0.6, GATE).to_dict()
    assert data["promote"] is False
    assert {c["name"] for c in data["checks"]} >= {"absolute_floor", "non_inferiority", "calibration"}
    assert all({"passed", "value", "threshold", "reason"} <= set(c) for c in data["checks"])


def test_guardrails_block_a_slow_big_or_miscalibrated_model():
    slow = {"latency_single_ms": 80.0, "latency_batch_ms": 900.0, "model_mb": 35.0}  # over the ceilings
    y, champion, challenger, m_champion, m_challenger = _paired(0.6)
    decision = decide(
        default_checks(GATE), GateInputs(m_challenger, m_champion, y, challenger, champion, slow), "roc_auc"
    )
    assert {c.name for c in decision.checks if not c.passed} == {"latency_single", "latency_batch", "model_size"}
    assert any("80.00 ms > ceiling 25.00 ms" in reason for reason in decision.reasons)
    unmeasured = decide(default_checks(GATE), GateInputs(m_challenger, m_champion, y, challenger, champion), "roc_auc")
    assert "latency_single_ms was not measured" in unmeasured.reasons
    strict = GATE.model_copy(update={"guardrails": GATE.guardrails.model_copy(update={"max_calibration_error": 0.001})})
    inputs = GateInputs(m_challenger, m_champion, y, challenger, champion, FAST)
    assert any(
        r.startswith("expected calibration error") for r in decide(default_checks(strict), inputs, "roc_auc").reasons
    )


def test_expected_calibration_error_is_zero_when_rates_match_and_large_when_not():
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(y, np.full(10, 0.2)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.9)) == pytest.approx(0.7)
