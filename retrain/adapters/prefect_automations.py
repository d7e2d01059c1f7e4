"""The Prefect server tells the team when a deployment's run fails or crashes (an automation).

A flow's ``on_failure``/``on_crashed`` hook runs in the flow's process, or in the worker's after the
flow process died; when the worker or the machine itself is gone, no hook runs, and the run is marked
Crashed later by the server. So on a long-lived Prefect server (the team stack, any ``PREFECT_API_URL``),
``retrain deploy`` installs, per team webhook:

- a **Custom Webhook notification block** whose URL is a secret of the block (``{{webhook_url}}``
  in the URL, the value in its ``secrets``), so the UI and the API show no credential;
- an **automation** triggered by ``prefect.flow-run.Failed`` or ``prefect.flow-run.Crashed`` of any
  run tagged :func:`failure_tag` (the deployments ``deploy`` registers carry it), whose action sends
  a notification through that block: the run's name, its state and its link. The state message is
  left out (it may hold a credential; the run's page has it).

The tag names the webhook by a digest, so a flow's hook knows without asking the API that the server
tells *its* webhook of this run (:func:`server_tells`), and leaves it to the server: nobody is told
twice, and a run deployed for another webhook is still told by its hook. E-mail stays with the hooks
(Prefect has no SMTP notification block).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

FAILED_OR_CRASHED = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")


@dataclass(frozen=True)
class FailureAutomation:
    """What ``deploy`` left on the server: the automation, its block, and the tag it watches."""

    name: str
    automation_id: UUID
    block_name: str
    tag: str


def _digest(webhook_url: str) -> str:
    """Twelve hex digits of the URL's sha256: names it without revealing it."""
    return hashlib.sha256(webhook_url.encode()).hexdigest()[:12]


def failure_tag(webhook_url: str) -> str:
    """The tag of the runs whose failures the server tells this webhook."""
    return f"retrain-failures-told-by-server-{_digest(webhook_url)}"


def automation_name(webhook_url: str) -> str:
    return f"retrain: tell team webhook {_digest(webhook_url)} of failed and crashed runs"


def block_name(webhook_url: str) -> str:
    """Block names are lowercase ASCII letters, digits and dashes."""
    return f"retrain-team-webhook-{_digest(webhook_url)}"


def server_tells(webhook_url: str | None, run_tags: Sequence[str] | None) -> bool:
    """True when the server's automation tells ``webhook_url`` of this run's failure (its tag is on it)."""
    return bool(webhook_url) and failure_tag(str(webhook_url)) in (run_tags or ())


def _body(ui_url: str | None) -> str:
    link = f"\nrun: {ui_url.rstrip('/')}/runs/flow-run/{{{{ flow_run.id }}}}" if ui_url else ""
    return (
        "Told by the Prefect server: the run ended {{ flow_run.state.name }} (a worker or machine lost "
        "mid-run included); its logs and error are on the run's page." + link
    )


def _save_block(name: str, webhook_url: str) -> UUID:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name="retrain team",
        url="{{webhook_url}}",
        json_data={
            "text": "[retrain] {{subject}}\n{{body}}",
            "retrain": {"kind": "run_failed", "audience": "team", "sender": "prefect-automation"},
        },
        secrets={"webhook_url": webhook_url},  # pydantic makes it a SecretDict
        timeout=5,
    )
    saved: Any = block.save(name, overwrite=True)  # sync here (no running loop): the document's id
    return UUID(str(saved))


def ensure_failure_automation(webhook_url: str, ui_url: str | None) -> FailureAutomation:
    """Install the webhook's block and automation, or update them in place (one of each, whatever
    the number of deploys or projects that share the webhook)."""
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    name, block, tag = automation_name(webhook_url), block_name(webhook_url), failure_tag(webhook_url)
    block_id = _save_block(block, webhook_url)
    automation = AutomationCore(
        name=name,
        description="Installed by `retrain deploy`: failed or crashed runs tagged " + tag,
        trigger=EventTrigger(
            expect=set(FAILED_OR_CRASHED),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{tag}"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="{{ flow.name }} run {{ flow_run.name }} {{ flow_run.state.name|lower }}",
                body=_body(ui_url),
            )
        ],
    )
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(name)
        for extra in existing[1:]:  # two deploys raced: one is enough
            client.delete_automation(extra.id)
        if existing:
            client.update_automation(existing[0].id, automation)
            automation_id = existing[0].id
        else:
            automation_id = client.create_automation(automation)
    return FailureAutomation(name, automation_id, block, tag)
