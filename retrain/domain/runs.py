"""Flow runs as the application layer sees them: a typed view, whatever orchestrator API supplied it.

The Prefect API adapter (:mod:`retrain.adapters.prefect_api`) fills these in; the drift check and the
reaper decide from them without importing Prefect.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
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
