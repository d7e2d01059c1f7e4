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
