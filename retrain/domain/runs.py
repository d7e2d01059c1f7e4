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
