"""When a task may retry: on transient I/O and service errors, never on a judgement.

A contract violation, a refused gate or bad settings give the same answer on every try, so retrying
them only delays the error; a dropped connection or a busy S3 often heals within seconds.
"""

from __future__ import annotations

from typing import Any

from retrain.adapters.datastore import DataStoreConfigError
from retrain.adapters.files import BatchReadError
from retrain.domain.settings import SettingsError
from retrain.domain.splitting import SplitError
from retrain.domain.training import TrainingDataError
from retrain.errors import ContractViolation, RetrainError

PERMANENT: tuple[type[BaseException], ...] = (
    ContractViolation,
    DataStoreConfigError,
    RetrainError,
    SettingsError,
    SplitError,
    TrainingDataError,
    BatchReadError,
    FileNotFoundError,
    PermissionError,
    ValueError,
    TypeError,
    KeyError,
)
TRANSIENT: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError)
TRANSIENT_NAMES = ("DataStoreError", "RegistryError", "MlflowException", "ClientError", "EndpointConnectionError")


def is_transient(error: BaseException | None) -> bool:
    if error is None or isinstance(error, PERMANENT):
        return False
    if isinstance(error, TRANSIENT):
        return True
    return type(error).__name__ in TRANSIENT_NAMES


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
