"""Tell people: a Slack-compatible webhook and e-mail (SMTP), configured by the environment.

- ``RETRAIN_NOTIFY_WEBHOOK``: an incoming-webhook URL (Slack, Mattermost, any JSON receiver);
- ``RETRAIN_NOTIFY_SMTP``: ``host:port`` of the SMTP server (with ``RETRAIN_NOTIFY_SMTP_USER`` and
  ``RETRAIN_NOTIFY_SMTP_PASSWORD``: STARTTLS, then login);
- ``RETRAIN_NOTIFY_FROM``: the sender address (default ``retrain@localhost``);
- ``RETRAIN_NOTIFY_TEAM``: the team's addresses, comma-separated (outcomes, failures, drift decisions);
- ``RETRAIN_NOTIFY_REVIEWERS``: ``name=address`` pairs, comma-separated (asked when a run waits for them).

Delivery is best effort and quick (5 s per channel): a channel that is down is logged (by kind, never
with its URL, which is itself a credential) and the run goes on. Nothing configured: nothing is sent.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from retrain.domain.notices import Notice

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Channels:
    """Where notices go. ``repr`` shows no URL and no password."""

    webhook: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    sender: str = "retrain@localhost"
    team: tuple[str, ...] = ()
    reviewers: Mapping[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.webhook) or bool(self.smtp_host)

    def addresses(self, notice: Notice) -> list[str]:
        """The e-mail recipients: the named reviewers' addresses, or the team."""
        if notice.audience == "reviewers":
            return [self.reviewers[name] for name in notice.recipients if name in self.reviewers]
        return list(self.team)


def _smtp_address(value: str) -> tuple[str | None, int]:
    """``host:port`` (``[v6]:port``; the port defaults to 25); an unreadable value is no server."""
    value = value.strip()
    if not value:
        return None, 25
    host, separator, port = value.rpartition(":")
    if not separator or "]" in port:  # no port given (a bare v6 address in brackets included)
        host, port = value, "25"
    host = host.strip().removeprefix("[").removesuffix("]")
    if not host or not port.strip().isdigit():
        return None, 25
    return host, int(port)


def channels_from_env(env: Mapping[str, str] | None = None) -> Channels:
    """The channels the environment sets; a value that cannot be read configures nothing (never raises)."""
    env = os.environ if env is None else env
    host, port = _smtp_address(env.get("RETRAIN_NOTIFY_SMTP", ""))
    pairs = [item.split("=", 1) for item in env.get("RETRAIN_NOTIFY_REVIEWERS", "").split(",") if "=" in item]
    return Channels(
        webhook=env.get("RETRAIN_NOTIFY_WEBHOOK") or None,
        smtp_host=host,
        smtp_port=port,
        smtp_user=env.get("RETRAIN_NOTIFY_SMTP_USER") or None,
        smtp_password=env.get("RETRAIN_NOTIFY_SMTP_PASSWORD") or None,
        sender=env.get("RETRAIN_NOTIFY_FROM") or "retrain@localhost",
        team=tuple(address.strip() for address in env.get("RETRAIN_NOTIFY_TEAM", "").split(",") if address.strip()),
        reviewers={name.strip(): address.strip() for name, address in pairs},
    )


def send(notice: Notice, channels: Channels, warn: Callable[[str], None]) -> list[str]:
    """Deliver ``notice`` on every configured channel; returns the channels that took it. Never raises."""
    delivered = []
    if channels.webhook:
        try:
            _post(channels.webhook, notice)
            delivered.append("webhook")
        except Exception as error:  # a flaky channel never fails the run that notifies
            warn(f"notification '{notice.kind}' not delivered to the webhook: {type(error).__name__}")
    recipients = channels.addresses(notice)
    if channels.smtp_host and recipients:
        try:
            _mail(channels, notice, recipients)
            delivered.append("email")
        except Exception as error:
            warn(f"notification '{notice.kind}' not delivered by e-mail: {type(error).__name__}")
    return delivered


def _post(url: str, notice: Notice) -> None:
    import httpx

    response = httpx.post(url, json=notice.webhook_payload(), timeout=TIMEOUT_SECONDS)
    response.raise_for_status()


def _mail(channels: Channels, notice: Notice, recipients: list[str]) -> None:
    message = EmailMessage()
    message["Subject"] = f"[retrain] {notice.subject}"
    message["From"] = channels.sender
    message["To"] = ", ".join(recipients)
    message.set_content(notice.text())
    assert channels.smtp_host is not None
    with smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=TIMEOUT_SECONDS) as server:
        if channels.smtp_user:
            server.starttls()
            server.login(channels.smtp_user, channels.smtp_password or "")
        server.send_message(message)
