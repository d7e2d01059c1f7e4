"""Telling people: a notice sent on the channels the environment configures, never failing the run.

:func:`tell` sends through a task (so the run's page shows it) only when a channel is configured;
:func:`tell_failure` is a flow hook (``on_failure``/``on_crashed``), which cannot run tasks.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from retrain.adapters import notify, prefect_api, prefect_automations
from retrain.application.rollout import RolloutReport
from retrain.domain import notices
from retrain.domain.links import prefect_flow_run_url
from retrain.domain.notices import Notice


@task(name="notify", cache_policy=NO_CACHE)
def notify_task(notice: Notice) -> list[str]:
    """Deliver ``notice``; a channel that is down is a warning in this task's log, not a failure."""
    logger = get_run_logger()
    delivered = notify.send(notice, notify.channels_from_env(), logger.warning)
    if delivered:
        logger.info(f"told the {notice.audience}: {notice.subject} ({', '.join(delivered)})")
    return delivered


def tell(notice: Notice) -> None:
    """Send ``notice`` when a channel is configured (else no task, nothing sent); never raises."""
    try:
        if notify.channels_from_env().configured:
            notify_task(notice)
    except Exception as error:  # telling people must never fail the run that tells them
        logging.getLogger("retrain.notify").warning(f"notification '{notice.kind}' not sent: {type(error).__name__}")


def tell_rollout(model: str, report: RolloutReport | None) -> None:
    """The team, when an evaluation ended a rollout (completed or rolled back); nothing otherwise."""
    if report is not None and report.ended is not None:
        rollout = report.rollout
        tell(notices.rollout_ended(model, rollout.candidate, rollout.champion, report.ended, report.verdict.reasons))


def tell_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the team is told that a run failed or crashed, with its message (credentials masked)."""
    channels = notify.channels_from_env()
    if prefect_automations.server_tells(channels.webhook, getattr(flow_run, "tags", None)):
        channels = dataclasses.replace(channels, webhook=None)  # the server's automation posts it (even after a kill)
    if not channels.configured:
        return
    link = prefect_flow_run_url(prefect_api.ui_url(), str(flow_run.id))
    notice = notices.run_failed(flow.name, flow_run.name, state.name or state.type.value, state.message, link)
    notify.send(notice, channels, logging.getLogger("retrain.notify").warning)


FAILURE_HOOKS: dict[str, Any] = {"on_failure": [tell_failure], "on_crashed": [tell_failure]}
