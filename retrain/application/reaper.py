"""Zombie runs: leases that live flow runs keep, and the reaper that marks dead ones Crashed.

Every flow (training, drift, scoring, rollback) takes a lease on its flow run when it starts and a
daemon thread of its process refreshes it every ``lease.refresh_seconds``, also while the run is
Paused at the reviewer gate (the process is alive and polling). A process killed with SIGKILL, or
lost with its machine, stops refreshing; once the lease is older than ``lease.seconds`` the reaper
(``retrain doctor`` and the start of every flow) sets the Prefect run to Crashed with a message
saying why, ends its MLflow runs as FAILED and drops the lease, so the drift check no longer counts
it as in flight. A paused run whose process died is recorded as crashed, not resumed: the process
that held its trained model and gate context is gone, and a new run with the same training key
reuses the registered version at once.

Why our own lease and not Prefect's flow-run heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``,
Prefect 3.9): those are events only (``prefect.flow-run.heartbeat``, at least every 30 s); nothing
marks a run Crashed when they stop unless a server automation with a proactive trigger is set up and
the event services run, which the embedded ephemeral server does not guarantee, and neither the
doctor nor the drift check can read "last heartbeat" without the events API. A row in the ledger's
database works the same on SQLite and PostgreSQL, in-process and on the worker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from retrain.adapters.leases import Lease, LeaseStore

if TYPE_CHECKING:
    from retrain.adapters.registry import ModelRegistry
    from retrain.domain.settings import LeaseSettings

#: Prefect state types of a run that a live process should be driving.
LIVE_STATES = ("RUNNING", "PAUSED", "CANCELLING", "PENDING")


@dataclass
class _Held:
    store: LeaseStore
    settings: LeaseSettings
    runs: set[str] = field(default_factory=set)
    thread: threading.Thread | None = None


class LeaseKeeper:
    """One refresher thread per process and ledger database, for every run this process drives."""

    _lock = threading.Lock()
    _held: dict[str, _Held] = {}  # noqa: RUF012 - process-wide on purpose: one thread per database

    @classmethod
    def hold(cls, ledger_url: str, settings: LeaseSettings, flow_run_id: str, flow_name: str, project: str) -> Lease:
        """Take the lease now (before anything else can fail) and keep it fresh from a daemon thread."""
        with cls._lock:
            held = cls._held.get(ledger_url)
            if held is None:
                held = cls._held[ledger_url] = _Held(LeaseStore(ledger_url), settings)
            held.settings = settings
            lease = held.store.take(flow_run_id, flow_name, project, settings.seconds)
            held.runs.add(flow_run_id)
            if held.thread is None or not held.thread.is_alive():
                held.thread = threading.Thread(
                    target=cls._refresh_loop, args=(ledger_url,), name="retrain-lease", daemon=True
                )
                held.thread.start()
            return lease

    @classmethod
    def let_go(cls, ledger_url: str, flow_run_id: str) -> None:
        """The run ended (completed, failed, cancelled): its lease has nothing left to prove."""
        with cls._lock:
            held = cls._held.get(ledger_url)
            if held is None or flow_run_id not in held.runs:
                return
            held.runs.discard(flow_run_id)
            held.store.release(flow_run_id)

    @classmethod
    def let_go_everywhere(cls, flow_run_id: str) -> None:
        """Release ``flow_run_id`` in whichever database holds it (flow hooks know only the run)."""
        with cls._lock:
            urls = [url for url, held in cls._held.items() if flow_run_id in held.runs]
        for url in urls:
            cls.let_go(url, flow_run_id)

    @classmethod
    def holding(cls, ledger_url: str) -> set[str]:
        with cls._lock:
            held = cls._held.get(ledger_url)
            return set(held.runs) if held else set()

    @classmethod
    def _refresh_loop(cls, ledger_url: str) -> None:
        while True:
            with cls._lock:
                held = cls._held[ledger_url]
                runs, settings = sorted(held.runs), held.settings
                if not runs:  # nothing left to keep alive: close the database connection too
                    del cls._held[ledger_url]
                    held.store.dispose()
                    return
            with contextlib.suppress(Exception):  # a database hiccup must not kill the run; the next one retries
                held.store.refresh(runs, settings.seconds)
            threading.Event().wait(settings.refresh_seconds)


def _crash_message(lease: Lease, now: float, reaper: str) -> str:
    stopped = dt.datetime.fromtimestamp(lease.refreshed_at, dt.UTC).isoformat(timespec="seconds")
    return (
        f"the process running this {lease.flow_name} run (pid {lease.pid} on {lease.host}) stopped renewing its "
        f"lease at {stopped} ({now - lease.refreshed_at:.0f} s before {reaper} looked): it died (killed, out of "
        "memory or its machine went down). Marked Crashed by "
        f"{reaper}; start the run again (a registered model with the same training key is reused)."
    )


def expired_leases(ledger_url: str, now: float | None = None) -> dict[str, Lease]:
    """Leases whose holder stopped refreshing them, by flow run id (cheap: one SELECT)."""
    import time

    moment = time.time() if now is None else now
    store = LeaseStore(ledger_url)
    try:
        return {run: lease for run, lease in store.leases().items() if lease.expired(moment)}
    finally:
        store.dispose()


def reap(ledger_url: str, registry: ModelRegistry | None, reaper: str) -> list[str]:
    """Mark every run whose lease expired Crashed, end its MLflow runs FAILED and drop the lease.

    Runs the Prefect API does not know (another server) keep their lease, for the doctor that can
    see them; runs already in a final state just lose their stale lease. Returns what was done.
    """
    import time
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    now = time.time()
    actions: list[str] = []
    store = LeaseStore(ledger_url)
    try:
        dead = {run: lease for run, lease in store.leases().items() if lease.expired(now)}
        if not dead:
            return actions
        with get_client(sync_client=True) as client:
            for run_id, lease in dead.items():
                try:
                    run = client.read_flow_run(UUID(run_id))
                except (ObjectNotFound, ValueError):
                    continue
                message = _crash_message(lease, now, reaper)
                state = run.state.type.value if run.state is not None else None
                if state in LIVE_STATES:
                    client.set_flow_run_state(UUID(run_id), Crashed(message=message), force=True)
                    was = run.state.name if run.state is not None else "?"
                    actions.append(
                        f"marked {lease.flow_name} run '{run.name}' ({run_id}, was {was}) Crashed: {message}"
                    )
                if registry is not None and (state in LIVE_STATES or state == "CRASHED"):
                    for mlflow_run in registry.fail_runs_of_flow(run_id, message):
                        actions.append(f"ended MLflow run {mlflow_run} of flow run {run_id} as FAILED")
                store.release(run_id)
    finally:
        store.dispose()
    return actions
