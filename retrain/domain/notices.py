"""What people are told, and whom: a notice is a subject, a few lines and links, for reviewers or the team.

Pure text, built only from what a run decided (versions, checks, reasons, names): never a token, a
key or a connection string. Text that comes from elsewhere (a failed run's state message) passes
through :func:`without_credentials` first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Audience = Literal["reviewers", "team"]

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/]*@")  # user:password@, up to the last @
_SECRET_WORDS = re.compile(
    r"""(?i)(?P<key>[\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*)"?\s*[=:]\s*"?(?P<value>[^\s",'}]{3,})"""
)
_BEARER = re.compile(r"(?i)\bBearer\s+\S+")


def without_credentials(text: str) -> str:
    """``text`` with the user and password of any URL and ``password=…``-style values masked."""
    masked = _CREDENTIALS.sub(lambda match: f"{match.group('scheme')}***@", text)
    masked = _BEARER.sub("Bearer ***", masked)
    return _SECRET_WORDS.sub(lambda match: f"{match.group('key')}=***", masked)


@dataclass(frozen=True)
class Notice:
    """One message: who it is for, what happened (subject), why (lines), where to look (links)."""

    kind: str
    audience: Audience
    subject: str
    lines: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    recipients: tuple[str, ...] = ()  # reviewer names (audience "reviewers"); the team is everyone

    def text(self) -> str:
        body = [self.subject, *self.lines]
        body += [f"{label}: {url}" for label, url in self.links]
        return "\n".join(body)

    def webhook_payload(self) -> dict[str, Any]:
        """Slack-compatible JSON: ``text`` is what every incoming-webhook receiver shows."""
        return {"text": self.text(), "retrain": {"kind": self.kind, "audience": self.audience}}


def awaiting_review(
    model: str,
    version: str,
    flow_run_id: str,
    reviewers: Sequence[str],
    quorum: int,
    timeout_minutes: float,
    links: Sequence[tuple[str, str]] = (),
) -> Notice:
    """The listed reviewers: a run waits for their answer, with the links and the commands to answer."""
    return Notice(
        kind="awaiting_review",
        audience="reviewers",
        subject=f"{model} v{version} waits for review ({quorum} of {', '.join(reviewers)})",
        lines=(
            "Every automatic check passed; the gate report is on the run's Artifacts tab.",
            f"Approve: retrain approve {flow_run_id} --reviewer NAME --comment '…'",
            f"Reject:  retrain reject {flow_run_id} --reviewer NAME --reason '…'",
            f"Without an answer in {timeout_minutes:g} min the run ends as a refusal.",
        ),
        links=tuple(links),
        recipients=tuple(reviewers),
    )


def outcome_word(promoted: bool, approval_state: str | None, rollout: bool = False) -> str:
    """How a training run ended, in the words people use: promoted, rolling out, or refused by whom or by what."""
    if promoted:
        return "promoted"
    if rollout:
        return "rolling out as candidate"
    return {
        "rejected": "rejected by a reviewer",
        "timed_out": "timed out waiting for review",
    }.get(approval_state or "", "refused by the gate")


def training_outcome(
    model: str, version: str, verdict: str, summary: str, reasons: Sequence[str], links: Sequence[tuple[str, str]] = ()
) -> Notice:
    """The team: how a training run ended (promoted, refused, rejected, timed out) and why."""
    kind = verdict.split(" ", maxsplit=1)[0]
    return Notice(
        kind=kind,
        audience="team",
        subject=f"{model} v{version}: {verdict}",
        lines=(summary, *(f"- {reason}" for reason in reasons)),
        links=tuple(links),
    )


def drift_decision(model: str, decision: str, reasons: Sequence[str], training_run: str | None = None) -> Notice:
    """The team: a drift check decided to retrain, or would have but the budget said no."""
    lines = tuple(f"- {reason}" for reason in reasons)
    if training_run:
        lines += (f"Retraining run: {training_run}",)
    return Notice(
        kind=f"drift_{decision}", audience="team", subject=f"{model}: drift check decided '{decision}'", lines=lines
    )


def rollout_ended(model: str, candidate: str, champion: str, outcome: str, reasons: Sequence[str]) -> Notice:
    """The team: a rollout on real traffic ended: completed (the candidate is champion) or rolled back."""
    after = f"v{candidate} is champion" if outcome == "completed" else f"v{champion} stays champion"
    return Notice(
        kind=f"rollout_{outcome}",
        audience="team",
        subject=f"{model}: rollout of v{candidate} {outcome.replace('_', ' ')}; {after}",
        lines=tuple(f"- {reason}" for reason in reasons),
    )


def rolled_back(model: str, demoted: str, restored: str, reason: str, by: str) -> Notice:
    return Notice(
        kind="rolled_back",
        audience="team",
        subject=f"{model}: rolled back from v{demoted} to v{restored}",
        lines=(f"By {by}: {reason}",),
    )


def run_failed(flow: str, run_name: str, state: str, message: str | None, link: str | None = None) -> Notice:
    """The team: a flow run failed or crashed (its message with any credentials masked)."""
    lines = (without_credentials(message),) if message else ()
    return Notice(
        kind="run_failed",
        audience="team",
        subject=f"{flow} run {run_name} {state.lower()}",
        lines=lines,
        links=(("run", link),) if link else (),
    )
