"""The Dask cluster: connect to the scheduler that ``RETRAIN_DASK_SCHEDULER`` names.

One adapter for the one outside system; the boosting itself is
:class:`retrain.domain.distributed.DaskEngine`, and the per-batch tasks go through prefect-dask's
``DaskTaskRunner`` on the same address (``tasks/data.py``). ``distributed`` is imported only when a
project trains on Dask.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from retrain.adapters.environment import DASK_SCHEDULER
from retrain.domain.errors import InputError, ServiceError


class DaskSchedulerMissing(InputError):
    """``model.engine`` is ``dask`` but no scheduler address is configured."""


class DaskUnreachable(ServiceError):
    """The scheduler did not answer (down, or not reachable from here): retrying may help."""


def require_scheduler(address: str | None) -> str:
    """The scheduler address, or a clear error saying where it comes from and how to get one."""
    if not address:
        raise DaskSchedulerMissing(
            f"model.engine is dask but {DASK_SCHEDULER} is not set: export it as the scheduler's address "
            "(for example tcp://127.0.0.1:8786 after `dask scheduler` and `dask worker tcp://127.0.0.1:8786`), "
            "or set model.engine: in_memory in params.yaml"
        )
    return address


@contextlib.contextmanager
def connect(address: str, timeout_seconds: float = 30.0) -> Iterator[Any]:
    """A client of the cluster at ``address`` for the duration of a block (closed after it)."""
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout_seconds}s", set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as error:
        raise DaskUnreachable(f"the Dask scheduler at {address} did not answer: {error}") from error
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
