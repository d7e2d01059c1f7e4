"""Say what a run turned out to be where people look: its name and tags in the Prefect runs list.

Best effort: a run whose label could not be written still ends in its named state, with its result.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from retrain.adapters import prefect_api


@task(name="label-run", cache_policy=NO_CACHE)
def label_run_task(flow_run_id: str, name: str, tags: Sequence[str]) -> None:
    """Rename the run and add ``tags`` (``model:…``, ``decision:…``); a refusal is a warning."""
    try:
        prefect_api.label_flow_run(flow_run_id, name, tags)
    except Exception as error:  # the decision is made and recorded: its label is extra
        get_run_logger().warning(f"the run's name and tags were not updated ({type(error).__name__})")
