"""People are told: reviewers when a run waits for them, the team of outcomes and failures, through a
webhook and e-mail on loopback; no secret in any message, and a channel that is down fails nothing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from flows.scoring import ScoringRequest, scoring
from flows.training import TrainingRequest, training
from retrain.cli.demo_run import write_demo_batches
from tests.conftest import REVIEWER_KEYS
from tests.integration.conftest import reviewed, workspace_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
WEBHOOK_SECRET = "T000-B000-not-for-messages"


class _Receiver(BaseHTTPRequestHandler):
    posts: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append({"path": self.path, "json": json.loads(body)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], str]]:
    posts: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield posts, f"http://127.0.0.1:{server.server_address[1]}/hooks/{WEBHOOK_SECRET}"
    finally:
        server.shutdown()


@pytest.fixture
def mailbox() -> Iterator[tuple[list[Any], int]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port: aiosmtpd checks its server by connecting to the port it was given
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield received, port
    finally:
        controller.stop()


def _configure(monkeypatch: pytest.MonkeyPatch, url: str, smtp_port: int, reviewers: tuple[str, ...]) -> None:
    monkeypatch.setenv("RETRAIN_NOTIFY_WEBHOOK", url)
    monkeypatch.setenv("RETRAIN_NOTIFY_SMTP", f"127.0.0.1:{smtp_port}")
    monkeypatch.setenv("RETRAIN_NOTIFY_TEAM", "team@example.com")
    monkeypatch.setenv("RETRAIN_NOTIFY_REVIEWERS", ",".join(f"{name}={name}@example.com" for name in reviewers))


def test_reviewers_are_asked_and_the_team_told_of_the_outcome_with_no_secret(
    workspace: Path, webhook: Any, mailbox: Any, monkeypatch: pytest.MonkeyPatch
):
    posts, url = webhook
    mails, port = mailbox
    settings = workspace_settings(workspace)
    _configure(monkeypatch, url, port, settings.approval.reviewers)
    write_demo_batches(workspace / settings.dataset.batches, settings, 5)

    result = reviewed(lambda: training(TrainingRequest(project_dir=str(workspace), triggered_by="pytest")))
    assert result.outcome.promoted

    texts = [post["json"]["text"] for post in posts]
    assert [post["json"]["retrain"]["kind"] for post in posts] == ["awaiting_review", "promoted"]
    assert f"retrain approve {result.flow_run_id}" in texts[0] and "v1 waits for review" in texts[0]
    assert "v1: promoted" in texts[1]
    to_reviewers, to_team = mails
    assert sorted(to_reviewers.rcpt_tos) == sorted(f"{name}@example.com" for name in settings.approval.reviewers)
    assert to_team.rcpt_tos == ["team@example.com"]
    everything = "\n".join(texts + [mail.content.decode() for mail in mails])
    assert WEBHOOK_SECRET not in everything
    assert not any(key.private_bytes_raw().hex() in everything for key in REVIEWER_KEYS.values())


def test_a_failed_run_is_told_and_a_channel_that_is_down_hides_nothing(
    workspace: Path, webhook: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    posts, url = webhook
    monkeypatch.setenv("RETRAIN_NOTIFY_WEBHOOK", url)
    batch = tmp_path / "batch.parquet"
    batch.write_bytes(b"")
    with pytest.raises(Exception, match="no champion"):
        scoring(ScoringRequest(batch=str(batch), project_dir=str(workspace)))
    assert [post["json"]["retrain"]["kind"] for post in posts] == ["run_failed"]
    assert "scoring run" in posts[0]["json"]["text"] and "failed" in posts[0]["json"]["text"]

    # both channels down (nothing listens on port 9): the run fails with its own error, not the channel's
    monkeypatch.setenv("RETRAIN_NOTIFY_WEBHOOK", "http://127.0.0.1:9/hooks/x")
    monkeypatch.setenv("RETRAIN_NOTIFY_SMTP", "127.0.0.1:9")
    monkeypatch.setenv("RETRAIN_NOTIFY_TEAM", "team@example.com")
    with pytest.raises(Exception, match="no champion"):
        scoring(ScoringRequest(batch=str(batch), project_dir=str(workspace)))
    assert len(posts) == 1


def test_the_prefect_server_tells_of_a_deployments_failed_run_once_and_keeps_the_url_secret(
    webhook: Any, monkeypatch: pytest.MonkeyPatch
):
    """The automation `retrain deploy` installs: a run that fails (or a worker lost mid-run, where no
    hook runs) is told by the Prefect server through its notification block; the flow's hook leaves
    the webhook to the server for runs with the automation's tag, and no message or block read shows
    the URL's secret."""
    import time
    from types import SimpleNamespace
    from uuid import uuid4

    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    from retrain.adapters.prefect_automations import automation_name, ensure_failure_automation
    from tasks.notify import tell_failure

    posts, url = webhook
    url = f"{url}/{uuid4().hex[:8]}"  # a webhook of this test's own: its automation and tag are new
    monkeypatch.setenv("RETRAIN_NOTIFY_WEBHOOK", url)
    with get_client(sync_client=True) as client:
        installed = ensure_failure_automation(url, "http://prefect.example")
        again = ensure_failure_automation(url, "http://prefect.example")  # every deploy: updated in place
        assert again.automation_id == installed.automation_id
        assert len(client.read_automations_by_name(automation_name(url))) == 1
        flow_id = client.create_flow_from_name(f"automation-test-{uuid4().hex[:8]}")
        watched = client.create_deployment(flow_id, "nightly", tags=["retrain", installed.tag])
        unwatched = client.create_deployment(flow_id, "elsewhere", tags=["retrain"])
        try:
            quiet = client.create_flow_run_from_deployment(unwatched)
            told = client.create_flow_run_from_deployment(watched)
            assert installed.tag in told.tags  # a deployment's tags are its runs' tags
            client.set_flow_run_state(quiet.id, Failed(message="not ours"))
            client.set_flow_run_state(told.id, Failed(message=f"could not reach {url} with password=hunter2"))
            deadline = time.monotonic() + 90
            while not any(str(told.id) in post["json"]["text"] for post in posts) and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(2)  # room for a second (wrong) message to arrive
            mentions = [post["json"] for post in posts if str(told.id) in post["json"]["text"]]
            assert len(mentions) == 1, posts
            assert mentions[0]["retrain"] == {"kind": "run_failed", "audience": "team", "sender": "prefect-automation"}
            assert f"run {told.name} failed" in mentions[0]["text"]
            assert f"http://prefect.example/runs/flow-run/{told.id}" in mentions[0]["text"]
            assert not any(str(quiet.id) in post["json"]["text"] for post in posts)
            everything = json.dumps([post["json"] for post in posts])
            assert WEBHOOK_SECRET not in everything and url not in everything
            assert "hunter2" not in everything  # the state message stays on the run's page

            stored = client.read_block_document_by_name(
                installed.block_name, CustomWebhookNotificationBlock.get_block_type_slug(), include_secrets=False
            )
            assert stored.data["url"] == "{{webhook_url}}" and WEBHOOK_SECRET not in json.dumps(
                stored.data, default=str
            )

            # the flow's own hook leaves the webhook to the server for the tagged run only
            before = len(posts)
            tell_failure(SimpleNamespace(name="training"), told, Failed(message="boom"))
            assert len(posts) == before
            tell_failure(SimpleNamespace(name="training"), quiet, Failed())
            assert len(posts) == before + 1 and posts[-1]["json"]["retrain"]["kind"] == "run_failed"
            monkeypatch.setenv("RETRAIN_NOTIFY_WEBHOOK", f"{url}-another")  # a worker told to use another webhook
            tell_failure(SimpleNamespace(name="training"), told, Failed())
            assert len(posts) == before + 2  # its hook tells: the server tells only the one it was deployed for
        finally:
            client.delete_deployment(watched)
            client.delete_deployment(unwatched)
            client.delete_automation(installed.automation_id)
