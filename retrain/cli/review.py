"""Reviewer commands: approve, reject or sign a paused run with your own key; make a reviewer's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from retrain.cli import context
from retrain.cli.context import (
    KeyOption,
    ProjectOption,
    ReviewerOption,
    RunIdArgument,
    StackOption,
    fail,
    failures_exit,
)


def signing(decision: str, reviewer: str, comment: str, key: Path | None, project: Path | None) -> Any:
    """The reviewer's decision with their private key, checked against the project's public key for
    them (so a wrong key file is told here, not as a refused ballot)."""
    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters.prefect_api import Signing
    from retrain.adapters.reviewer_keys import (
        default_private_key_path,
        load_private_key,
        public_bytes,
        public_key_path,
    )
    from retrain.domain.approval import normalise, parse_public_key

    listed = {normalise(name): name for name in settings.approval.reviewers}
    if normalise(reviewer) not in listed:
        fail(f"'{reviewer}' is not listed in approval.reviewers ({', '.join(settings.approval.reviewers)})")
    name = listed[normalise(reviewer)]
    with failures_exit(1):  # a key that cannot be read: exit 1, as always
        try:
            private = load_private_key(key or default_private_key_path(name))
            public_file = public_key_path(runtime.project_dir, settings.approval, name)
            committed = parse_public_key(public_file.read_text(encoding="utf-8")) if public_file.exists() else None
        except ValueError as error:  # a malformed key (the parser's own ValueError)
            fail(str(error))
    if committed is not None and committed != public_bytes(private):
        fail(f"this private key is not the one whose public key is {public_file}: pass --key with yours")
    return Signing(decision, name, private, comment)


def send_decision(decided: Any, run_id: str) -> None:
    from retrain.adapters.prefect_api import submit_decision

    with failures_exit(1):  # a decision the run refused: exit 1 (the run stays paused)
        receipt = submit_decision(run_id, decided)
    typer.echo(f"{receipt.message}; gate now: {receipt.state}")


def approve(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="Why you approve (kept in the ledger).")] = "",
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Approve a training run paused at the reviewer gate, signed with your key for that run only."""
    send_decision(signing("approve", reviewer, comment, key, project), run_id)


def reject(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option("--reason", help="Why you reject (required, kept in the ledger).")],
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Reject a training run paused at the reviewer gate: the champion stays, the refusal is recorded."""
    send_decision(signing("reject", reviewer, reason, key, project), run_id)


def sign(
    run_id: RunIdArgument,
    reviewer: ReviewerOption,
    decision: Annotated[str, typer.Option("--decision", help="approve or reject.")],
    comment: Annotated[str, typer.Option(help="The comment you will type in the form, exactly.")] = "",
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Print your signature of a decision on a paused run, to paste in the Prefect UI's Resume form."""
    if decision not in ("approve", "reject"):
        fail("--decision is approve or reject", 2)
    decided = signing(decision, reviewer, comment, key, project)
    from retrain.adapters.prefect_api import approval_subject

    with failures_exit(1):
        subject = approval_subject(run_id)
    typer.echo(
        f"{decision} v{subject.challenger_version} of {subject.registered_model} "
        f"(training key {subject.training_key[:12]}) on run {subject.flow_run_id}, comment {comment!r}:",
        err=True,
    )
    typer.echo(decided.answer(subject).signature)


reviewer_app = typer.Typer(help="Reviewers' keys: each reviewer signs their own answers.")


def pending(
    project: ProjectOption = None,
    stack: StackOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Runs of this project's model waiting for review: challenger vs champion, the gain and its CI,
    the time left before the run times out, and the command that answers."""
    runtime = context.runtime(project, stack)
    settings = context.settings(runtime)
    from retrain.adapters.prefect_api import pending_reviews
    from retrain.cli import render

    with failures_exit(1):
        found = [item for item in pending_reviews() if item.model == settings.model.registered_name]
    render.pending_reviews(found, as_json)


@reviewer_app.command("keygen")
def reviewer_keygen(
    name: Annotated[
        str, typer.Argument(help="The reviewer's name, as listed (or to be listed) in approval.reviewers.")
    ],
    key: KeyOption = None,
    project: ProjectOption = None,
) -> None:
    """Write a reviewer's public key into the project's approval.keys_dir, to be committed (adding a
    reviewer is a reviewed change); the private key (0600, outside the project) is created if missing,
    else reused."""
    import re

    runtime = context.runtime(project)
    settings = context.settings(runtime)
    from retrain.adapters.reviewer_keys import default_private_key_path, generate_key_pair
    from retrain.domain.approval import normalise

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        fail("a reviewer name is letters, digits, '.', '_' or '-' (it names the key file)", 2)
    private_path = key or default_private_key_path(name)
    with failures_exit(1):
        files = generate_key_pair(runtime.project_dir, settings.approval, name, private_path)
    public_path = files.public_path
    origin = "new" if files.private_created else "existing, reused: one key per reviewer across projects"
    typer.echo(f"private key: {private_path} ({origin}; 0600; keep it, never share or commit it)")
    typer.echo(f"public key:  {public_path} (commit it: git add {public_path})")
    if normalise(name) not in {normalise(listed) for listed in settings.approval.reviewers}:
        typer.echo(f"then list '{name}' in approval.reviewers (params.yaml)")
