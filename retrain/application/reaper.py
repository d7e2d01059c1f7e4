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
from typing import TYPE_CHECKING, Protocol

from retrain.adapters.leases import Lease, LeaseStore

if TYPE_CHECKING:
    from retrain.adapters.registry import ModelRegistry
    from retrain.domain.runs import FlowRunView
    from retrain.domain.settings import LeaseSettings

#: Prefect state types of a run that a live process should be driving.
LIVE_STATES = ("RUNNING", "PAUSED", "CANCELLING", "PENDING")


class FlowRuns(Protocol):
    """The orchestrator's flow runs, open inside ``with``: read one, or force it into Crashed.

    :class:`retrain.adapters.prefect_api.PrefectFlowRuns` is the Prefect one; the caller (a task, the
    CLI) passes it in, so this module never imports Prefect."""

    def __enter__(self) -> FlowRuns: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def read(self, run_id: str) -> FlowRunView | None:
        """The run, or None when this orchestrator does not know it."""
        ...

    def crash(self, run_id: str, message: str) -> None: ...


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


def reap(ledger_url: str, registry: ModelRegistry | None, reaper: str, flow_runs: FlowRuns) -> list[str]:
    """Mark every run whose lease expired Crashed, end its MLflow runs FAILED and drop the lease.

    Runs the orchestrator (``flow_runs``) does not know (another server) keep their lease, for the
    doctor that can see them; runs already in a final state just lose their stale lease. Returns what
    was done.
    """
    import time

    now = time.time()
    actions: list[str] = []
    store = LeaseStore(ledger_url)
    try:
        dead = {run: lease for run, lease in store.leases().items() if lease.expired(now)}
        if not dead:
            return actions
        with flow_runs as runs:
            for run_id, lease in dead.items():
                run = runs.read(run_id)
                if run is None:
                    continue
                message = _crash_message(lease, now, reaper)
                state = run.state_type
                if state in LIVE_STATES:
                    runs.crash(run_id, message)
                    was = run.state_name if run.state_name is not None else "?"
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


@dataclass(frozen=True)
class Housekeeping:
    """What a flow's start did about dead runs: the actions taken, or why it could not look this time."""

    actions: list[str]
    failure: str | None = None


def lease_and_reap(
    ledger_url: str,
    settings: LeaseSettings,
    flow_run_id: str | None,
    flow_name: str,
    project_dir: str,
    registry: ModelRegistry,
    flow_runs: FlowRuns,
) -> Housekeeping:
    """Hold this flow run's lease while the process lives, then mark dead runs Crashed before any work.

    The lease is taken first and its failure propagates: a run that cannot take one must stop, or a
    live run would look dead. Reaping is housekeeping: an API hiccup there must not stop this run's own
    work, so it comes back as ``failure`` instead.
    """
    if flow_run_id:
        LeaseKeeper.hold(ledger_url, settings, flow_run_id, flow_name, project_dir)
    try:
        actions = reap(ledger_url, registry, f"the {flow_name} run {flow_run_id or 'local'}", flow_runs)
    except Exception as error:
        return Housekeeping([], f"{type(error).__name__}: {error}")
    return Housekeeping(actions)
