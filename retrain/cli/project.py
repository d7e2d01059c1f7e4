"""Project commands: ``init`` (a project from a sample of your data) and ``contract release``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from retrain.cli.context import ProjectOption

TaskOption = Literal["binary", "multiclass", "regression"]


def init(
    directory: Annotated[
        Path, typer.Argument(help="The project directory (created if missing; may hold other files).")
    ],
    data: Annotated[Path, typer.Option("--data", help="A sample of your data: one typical batch (.csv or .parquet).")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="Each row's date (default: the sample's one date column).")
    ] = None,
    task: Annotated[
        TaskOption | None, typer.Option("--task", help="binary | multiclass | regression (default: inferred).")
    ] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="A row key, if the data has one.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The dataset's name (default: the sample's file name).")
    ] = None,
    reviewer: Annotated[
        list[str] | None, typer.Option("--reviewer", help="Who approves promotions (repeat for several).")
    ] = None,
) -> None:
    """Scaffold a project from a sample: git + DVC, params.yaml, dvc.yaml and a released first contract.

    Everything it infers (task, labels, features, contract) is written to files you read and edit.
    """
    from retrain.application.scaffold import init_project

    report = init_project(
        directory,
        data,
        target=target,
        time_column=time_column,
        task=task,
        id_column=id_column,
        name=name,
        reviewers=tuple(reviewer or ()),
    )
    proposal = report.proposal
    how = "inferred" if proposal.task_inferred else "given"
    typer.echo(f"project {proposal.name} in {report.project} ({proposal.rows} sample rows)")
    typer.echo(f"  target: {proposal.target}, task: {proposal.task} ({how}; --task to change)")
    if proposal.labels is not None:
        classes = ", ".join(map(repr, proposal.labels.classes))
        typer.echo(f"  classes: {classes}")
        if proposal.labels.positive is not None:
            typer.echo(
                f"  positive class: {proposal.labels.positive!r} (the model predicts its probability; "
                "edit dataset.labels.positive in params.yaml to change)"
            )
    time_how = "inferred: the only date column" if report.time_inferred else "given"
    typer.echo(f"  time column: {proposal.time_column} ({time_how}); id column: {proposal.id_column or 'none'}")
    typer.echo(f"  numeric features ({len(proposal.roles.numeric)}): {', '.join(proposal.roles.numeric) or '-'}")
    typer.echo(
        f"  categorical features ({len(proposal.roles.categorical)}): {', '.join(proposal.roles.categorical) or '-'}"
    )
    typer.echo(f"  gate: {proposal.primary_metric} at least {proposal.floor}")
    typer.echo(
        f"  rows thresholds: drift.min_rows {proposal.thresholds.drift_min_rows}, "
        f"gate.slices.min_rows {proposal.thresholds.slice_min_rows}"
    )
    typer.echo(
        f"  contract data_contracts/{proposal.name}/v1.json: {len(proposal.contract['expectations'])} expectations, "
        f"released ({report.contract_hash[:12]})"
    )
    for note in report.notes:
        typer.echo(f"  note: {note}")
    git = "git repository initialised" if report.git_initialised else "git repository"
    state = "files committed" if report.committed else "files not committed (commit them yourself)"
    typer.echo(f"  {git}, DVC initialised; {state}: {', '.join(report.written)}")
    typer.echo("next:")
    for command in report.next_commands(data):
        typer.echo(f"  {command}")


contract_app = typer.Typer(help="Data contracts: release a version with its hash.", no_args_is_help=True)


@contract_app.command("release")
def release(
    name: Annotated[str, typer.Argument(help="The contract's name (data_contracts/NAME/).")],
    version: Annotated[int, typer.Argument(help="The version to release (data_contracts/NAME/vVERSION.json).", min=1)],
    project: ProjectOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a recorded hash that was never right (computed by hand).")
    ] = False,
) -> None:
    """Record a contract version's hash in data_contracts/RELEASED.json (the hash every check compares).

    The hash is the sha256 of the contract's canonical JSON (keys sorted, no spaces), not of the file's
    bytes. A version already released with other content is refused: release a new version instead.
    """
    from retrain.adapters.contracts import release_contract
    from retrain.adapters.environment import resolve_runtime

    root = resolve_runtime(project_dir=project).project_dir
    digest = release_contract(root / "data_contracts", name, version, replace=replace)
    typer.echo(f"{name}/v{version}.json released: {digest}")
