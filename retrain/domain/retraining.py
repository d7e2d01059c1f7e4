"""Whether drift should start a retraining: debounced, so never in a loop, twice at once, or on noise.

Drift (or a performance drop) is necessary, not sufficient: a retraining must not already be in
flight (a training run scheduled, running or waiting for reviewers), the last triggered retraining
must be older than the cooldown, and the week's budget must not be spent. Every outcome, including
"drift seen but in cooldown", is a decision with reasons, recorded as such.

The times are on one clock, chosen by ``retraining.clock``: the batches' own time (``data``: the
newest row of the window checked), so a replay of last year or a backfill decides exactly as living
through it did, or wall-clock time (``wall``). A trigger already recorded at or after ``now`` (the
same data, or newer, checked again) is never triggered twice, even with no cooldown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from retrain.domain.settings import RetrainingSettings

RetrainChoice = Literal["retrain", "none", "cooldown", "budget", "in_flight"]
WEEK = dt.timedelta(days=7)
#: What a drift check run without acting (``retrain drift`` without ``--act``) has in place of a
#: decision: none was taken, so none was recorded, and no cooldown, budget or catch-up moved.
REPORT_ONLY = "report_only"


def report_only_note(flagged: bool) -> str:
    """What a check that only reported says in place of a decision, and how to act on it."""
    signals = "the drift signals call for a retraining" if flagged else "no drift signal calls for a retraining"
    return f"report only: nothing decided or started ({signals}); run with --act to act"


@dataclass(frozen=True)
class RetrainDecision:
    decision: RetrainChoice
    reasons: tuple[str, ...]


def decide_retraining(
    flagged: bool,
    drift_reasons: Sequence[str],
    *,
    now: dt.datetime,
    earlier_triggers: Sequence[dt.datetime],
    in_flight: Sequence[str],
    settings: RetrainingSettings,
) -> RetrainDecision:
    """The decision for one drift check, given when retrainings were triggered before."""
    if not flagged:
        return RetrainDecision("none", tuple(drift_reasons) or ("no drift past the thresholds",))
    seen = tuple(drift_reasons)
    if in_flight:
        return RetrainDecision("in_flight", (*seen, f"a retraining is already in flight: {', '.join(in_flight)}"))
    last = max(earlier_triggers, default=None)
    if last is not None and last >= now:
        return RetrainDecision(
            "cooldown",
            (*seen, f"a retraining was already triggered at {last:%Y-%m-%d %H:%M} UTC, on this data or newer"),
        )
    cooldown = dt.timedelta(hours=settings.cooldown_hours)
    if last is not None and now - last < cooldown:
        wait = cooldown - (now - last)
        return RetrainDecision(
            "cooldown",
            (
                *seen,
                f"last retraining triggered {last:%Y-%m-%d %H:%M} UTC ({settings.clock} clock); "
                f"cooldown {settings.cooldown_hours:g} h ends in {wait.total_seconds() / 3600:.1f} h",
            ),
        )
    this_week = [when for when in earlier_triggers if now - when < WEEK]  # all <= now: see above
    if len(this_week) >= settings.weekly_budget:
        return RetrainDecision(
            "budget",
            (
                *seen,
                f"{len(this_week)} retrainings in the last 7 days ({settings.clock} clock): "
                f"weekly budget {settings.weekly_budget} spent",
            ),
        )
    return RetrainDecision("retrain", seen)
