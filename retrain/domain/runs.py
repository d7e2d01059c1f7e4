"""Flow runs as the application layer sees them: a typed view, whatever orchestrator API supplied it.

The Prefect API adapter (:mod:`retrain.adapters.prefect_api`) fills these in; the drift check and the
reaper decide from them without importing Prefect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any


@dataclass(frozen=True)
class FlowRunView:
    """One flow run: its id and name, its state (type such as ``RUNNING``, display name, since when),
    when it is due to start and the parameters it was started with."""

    id: str
    name: str
    state_type: str | None
    state_name: str | None
    state_timestamp: dt.datetime | None
    expected_start_time: dt.datetime | None
    parameters: dict[str, Any] = field(default_factory=dict)


#: The named final states of a training run (their type stays COMPLETED): what the runs list shows.
PROMOTED, ROLLING_OUT, REFUSED, REJECTED, TIMED_OUT, ALREADY_CHAMPION = (
    "Promoted",
    "Rolling out",
    "Refused",
    "Rejected",
    "Timed out",
    "Already champion",
)


def training_state_name(promoted: bool, note: str, rollout: bool, approval_state: str | None) -> str:
    """The name of a training run's final state: the decision, as the Prefect UI's runs list shows it."""
    if promoted:
        return ALREADY_CHAMPION if note.startswith("already champion") else PROMOTED
    if rollout:
        return ROLLING_OUT
    return {"rejected": REJECTED, "timed_out": TIMED_OUT}.get(approval_state or "", REFUSED)


def decision_tag(state_name: str) -> str:
    """``decision:promoted``, ``decision:timed-out``: a tag to filter the runs list by."""
    return "decision:" + state_name.lower().replace(" ", "-")


def training_run_name(model: str, version: str, first_day: str, last_day: str, triggered_by: str) -> str:
    """What a training run is, in its name: model, version, data window and trigger."""
    window = first_day if first_day == last_day else f"{first_day}..{last_day}"
    return f"train {model} v{version} on {window} ({triggered_by})"


#: A drift check's decision as its final state's name.
DRIFT_STATES: dict[str, str] = {
    "retrain": "Retrain",
    "none": "No action",
    "cooldown": "Cooldown",
    "budget": "Over budget",
    "in_flight": "Already retraining",
}


def drift_state_name(decision: str, acted: bool) -> str:
    """A drift check's final state: its decision, or "Reported" when it was asked not to act."""
    return DRIFT_STATES.get(decision, decision.capitalize()) if acted else "Reported"


def batches_label(batches: Sequence[str]) -> str:
    """A window of batch files in a run name: one stem, or the first and last of several."""
    stems = [PurePath(batch).stem for batch in batches]
    if not stems:
        return "no batch"
    return stems[0] if len(stems) == 1 else f"{stems[0]}..{stems[-1]} ({len(stems)} batches)"


def drift_run_name(model: str, champion: str | None, batches: Sequence[str]) -> str:
    against = f" vs v{champion}" if champion else ""
    return f"drift {model}{against}: {batches_label(batches)}"


def scoring_state_name(rollout_ended: str | None) -> str:
    """A scoring run's final state: Scored, or the rollout's end its labelled rows decided."""
    return {"completed": "Rollout completed", "rolled_back": "Rolled back"}.get(rollout_ended or "", "Scored")


def scoring_run_name(model: str, champion: str, candidate: str | None, batch: str) -> str:
    arms = f"v{champion}" + (f" + candidate v{candidate}" if candidate else "")
    return f"score {model} {arms}: {PurePath(batch).stem}"
