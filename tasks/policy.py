"""When a task may retry: on transient I/O and service errors, never on a judgement.

The classification lives with the errors (:func:`retrain.domain.errors.is_transient`): Retrain's
own errors say whether they are transient, adapters translate their library's exceptions into
them, and this module only hands that answer to Prefect.
"""

from __future__ import annotations

from typing import Any

from retrain.domain.errors import is_transient

__all__ = ["RETRYING", "is_transient", "merged_hooks", "retry_on_transient"]


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure looks transient."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            state.result()
        except BaseException as raised:
            error = raised
    return is_transient(error)


RETRYING: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [2, 10], "retry_condition_fn": retry_on_transient}


def merged_hooks(*groups: dict[str, Any]) -> dict[str, Any]:
    """Flow hooks from several groups (release the lease, tell the team), each kind's hooks in order."""
    merged: dict[str, list[Any]] = {}
    for group in groups:
        for kind, hooks in group.items():
            merged.setdefault(kind, []).extend(hooks)
    return merged
