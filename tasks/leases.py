"""Run leases in flows: take this run's lease, then reap runs whose process died (see retrain.application.reaper)."""

from __future__ import annotations

from typing import Any

from prefect import runtime, task
from prefect.cache_policies import NO_CACHE

from retrain.adapters.prefect_api import PrefectFlowRuns
from retrain.adapters.registry import ModelRegistry
from retrain.application.reaper import LeaseKeeper, lease_and_reap
from retrain.domain.settings import Settings


@task(name="lease-and-reap", cache_policy=NO_CACHE, log_prints=True)
def lease_and_reap_task(
    ledger_url: str, settings: Settings, flow_name: str, project_dir: str, registry: ModelRegistry
) -> list[str]:
    """Hold this flow run's lease while the process lives, then mark dead runs Crashed before any work.

    No retries: a lease that cannot be taken must stop the run, or a live run would look dead.
    """
    flow_run_id = runtime.flow_run.id
    done = lease_and_reap(
        ledger_url,
        settings.lease,
        str(flow_run_id) if flow_run_id else None,
        flow_name,
        project_dir,
        registry,
        PrefectFlowRuns(),
    )
    if done.failure is not None:
        print(f"reaper: could not look for dead runs this time ({done.failure})")
    for action in done.actions:
        print(f"reaper: {action}")
    return done.actions


def _release(_flow: Any, flow_run: Any, _state: Any) -> None:
    LeaseKeeper.let_go_everywhere(str(flow_run.id))


#: Flow hooks that release the lease when a run ends in this process (a killed one never gets here).
RELEASE_LEASE: dict[str, Any] = {
    "on_completion": [_release],
    "on_failure": [_release],
    "on_cancellation": [_release],
    "on_crashed": [_release],
}
