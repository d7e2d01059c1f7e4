"""``retrain init``: a working project from a sample of the user's data, in files the user reads and edits.

Reads the sample the way batches are read, lets :mod:`retrain.domain.sample_inference` decide what it
can (task, labels, features, time column, a first contract, thresholds in rows), fills the rest of
``params.yaml`` from Retrain's own (with its comments), writes ``dvc.yaml`` as Retrain's own, makes the
directory a git + DVC repo and releases the contract with its hash. Nothing already there is
overwritten: a directory that has a ``params.yaml`` or the contract file is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from retrain.adapters import datastore, files, workspace
from retrain.adapters.contracts import release_contract
from retrain.domain import sample_inference
from retrain.domain.errors import InputError
from retrain.domain.sample_inference import ProjectProposal
from retrain.domain.sensitive import propose_sensitive
from retrain.domain.settings import TaskKind


class InitError(InputError):
    """The directory or the sample cannot become a project as asked: the message says what to change."""


@dataclass(frozen=True)
class InitReport:
    """What ``retrain init`` wrote and decided, for the CLI to show."""

    project: Path
    proposal: ProjectProposal
    time_inferred: bool
    written: tuple[str, ...]
    contract_hash: str
    git_initialised: bool
    committed: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: columns whose names or values look personal, with why: proposed, never declared, for the user to confirm
    sensitive_proposal: dict[str, str] = field(default_factory=dict)

    def next_commands(self, sample: Path) -> tuple[str, ...]:
        """The three commands to run next, with the paths that fit this project."""
        project = f" --project {self.project}"
        return (
            f"retrain validate {sample}{project}",
            f"retrain ingest {sample}{project}",
            f"retrain train{project}",
        )


def _default_name(sample: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", sample.stem).strip("-.") or "dataset"
    return name


def _read_raw(sample: Path) -> pd.DataFrame:
    """The sample as read before its time column is known (CSV dates are still strings)."""
    if not sample.is_file():
        raise InitError(f"--data {sample}: no such file")
    if sample.suffix.lower() == ".csv":
        return pd.read_csv(sample)
    if sample.suffix.lower() == ".parquet":
        return pd.read_parquet(sample)
    raise InitError(f"--data {sample}: a .csv or .parquet file, please")


def _params(proposal: ProjectProposal, template: dict[str, Any], reviewers: tuple[str, ...]) -> dict[str, Any]:
    """Retrain's own params with what the sample decided; every other knob keeps its default."""
    name = proposal.name
    dataset: dict[str, Any] = {
        "name": name,
        "batches": "data/batches",
        "training_set": f"data/training/{name}.parquet",
        "quarantine": "data/quarantine",
        "target": proposal.target,
        "task": proposal.task,
    }
    if proposal.labels is not None:
        dataset["labels"] = proposal.labels.to_params()
    dataset["id_column"] = proposal.id_column
    dataset["time_column"] = proposal.time_column
    dataset["features"] = {
        "numeric": list(proposal.roles.numeric),
        "categorical": list(proposal.roles.categorical),
    }
    overrides: dict[str, Any] = {
        "dataset": dataset,
        "contract": {"name": name, "version": 1},
        "model": {"registered_name": f"retrain-{name}", "experiment": f"retrain-{name}"},
        "gate": {
            "primary_metric": proposal.primary_metric,
            "floor": proposal.floor,
            "slices": {
                "categorical": list(proposal.slices),
                "numeric_bins": {},
                "min_rows": proposal.thresholds.slice_min_rows,
            },
        },
        "drift": {"min_rows": proposal.thresholds.drift_min_rows},
    }
    if reviewers:
        overrides["approval"] = {"reviewers": list(reviewers)}
    params = workspace.merge(template, overrides)
    params["dataset"] = dataset  # replaced whole: the loan demo's columns must not leak in
    params["gate"]["slices"] = {**template["gate"]["slices"], **overrides["gate"]["slices"]}
    return params


def _comments(proposal: ProjectProposal, sensitive: dict[str, str]) -> dict[tuple[str, ...], str]:
    """Why ``retrain init`` set what it set, beside each key it decided."""
    rows = proposal.rows
    task_how = "inferred from the sample" if proposal.task_inferred else "given with --task"
    comments: dict[tuple[str, ...], str] = {
        ("dataset", "task"): f"# binary | multiclass | regression ({task_how})",
        ("dataset", "id_column"): "# optional row key; null: the data has none",
        ("dataset", "features"): "# inferred from the column types; move a column or delete it to change",
        ("gate", "primary_metric"): "# fits the task: set by retrain init",
        ("gate", "floor"): "# set by retrain init so the model must beat a trivial one",
        ("gate", "slices", "categorical"): "# categorical features with 2 to 10 values (retrain init)",
        ("gate", "slices", "min_rows"): (
            f"# smaller slices are reported, not judged; retrain init: a tenth of the sample's {rows} rows (30..500)"
        ),
        ("drift", "min_rows"): (
            f"# smaller windows are reported, never trigger retraining; retrain init: half the sample's {rows} "
            "rows (50..1000)"
        ),
    }
    comments[("privacy", "sensitive")] = (
        f"# retrain init proposes {', '.join(sensitive)} (names or values look personal): list those that are"
        if sensitive
        else "# columns whose values must not leave the data store (retrain init saw none that look personal)"
    )
    if proposal.labels is not None:
        comments[("dataset", "labels")] = "# every value the target may take; the position is the class index"
        if proposal.labels.positive is not None:
            comments[("dataset", "labels", "positive")] = (
                "# the class whose probability the model predicts: numbers: the larger one; text: the rarer one"
            )
    return comments


def _refuse_existing(project: Path, name: str) -> None:
    for relative in ("params.yaml", f"data_contracts/{name}/v1.json"):
        if (project / relative).exists():
            raise InitError(f"{project / relative} exists already: retrain init never overwrites a project's files")


def _commit(project: Path, paths: list[str], message: str) -> bool:
    """Commit just the files init wrote; False (and nothing committed) when git cannot, e.g. no identity."""
    add = subprocess.run(["git", "add", "--", *paths], cwd=project, capture_output=True, text=True, check=False)
    if add.returncode != 0:
        return False
    commit = subprocess.run(
        ["git", "commit", "-q", "-m", message, "--", *paths], cwd=project, capture_output=True, text=True, check=False
    )
    return commit.returncode == 0


def _check_target_directory(project: Path, name: str, reviewers: tuple[str, ...]) -> None:
    """Everything that would make init fail after writing, checked before it writes anything."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise InitError(f"--name {name!r}: letters, digits, '_', '.' and '-' only")
    for reviewer in reviewers:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", reviewer):
            raise InitError(f"--reviewer {reviewer!r}: letters, digits, '.', '_' or '-' (it names the key file)")
    if project.exists() and not project.is_dir():
        raise InitError(f"{project} is a file, not a directory")
    _refuse_existing(project, name)
    toplevel = workspace.git_toplevel(project)
    if toplevel is not None and toplevel != project:
        raise InitError(
            f"{project} is inside the git repository {toplevel}: DVC versions data from a repository's top "
            "directory, so run retrain init there or in a directory of its own"
        )


def render_dvc_yaml(template_text: str, task: TaskKind) -> str:
    """Retrain's ``dvc.yaml`` with the train stage's ``plots:`` (its last block) for ``task``."""
    from retrain.application.fit import dvc_plots_block

    head, marker, _ = template_text.partition("\n    # plots:")
    if not marker:
        raise InitError("the reference dvc.yaml has no train stage plots: block to adapt to the task")
    return head + "\n" + dvc_plots_block(task)


def _write_files(
    project: Path, sample: Path, proposal: ProjectProposal, params: dict[str, Any], sensitive: dict[str, str]
) -> list[str]:
    """params.yaml, dvc.yaml (kept when there is one), the contract and its CHANGELOG, .gitignore."""
    name = proposal.name
    template_dir = workspace.template_dir()
    contract_dir = project / "data_contracts" / name
    contract_dir.mkdir(parents=True, exist_ok=True)
    (contract_dir / "v1.json").write_text(json.dumps(proposal.contract, indent=2) + "\n", encoding="utf-8")
    changelog = contract_dir / "CHANGELOG.md"
    if not changelog.exists():
        changelog.write_text(
            f"# {name} contract\n\n## v1 ({dt.date.today().isoformat()})\n\nInferred by `retrain init` from "
            f"{sample.name} ({proposal.rows} rows). Read it and edit it before releasing a v2.\n",
            encoding="utf-8",
        )
    template_text = (template_dir / "params.yaml").read_text(encoding="utf-8")
    (project / "params.yaml").write_text(
        workspace.render_params(params, template_text, _comments(proposal, sensitive)), encoding="utf-8"
    )
    if not (project / "dvc.yaml").exists():
        template_dvc = (template_dir / "dvc.yaml").read_text(encoding="utf-8")
        (project / "dvc.yaml").write_text(render_dvc_yaml(template_dvc, proposal.task), encoding="utf-8")
    gitignore = project / ".gitignore"
    ignored = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if "/.retrain/" not in ignored:
        gitignore.write_text("\n".join([*ignored, "# Embedded state (MLflow, Prefect, ledger)", "/.retrain/"]) + "\n")
    (project / params["dataset"]["batches"]).mkdir(parents=True, exist_ok=True)
    return [
        "params.yaml",
        "dvc.yaml",
        ".gitignore",
        f"data_contracts/{name}/v1.json",
        f"data_contracts/{name}/CHANGELOG.md",
        "data_contracts/RELEASED.json",
    ]


def _notes(project: Path, proposal: ProjectProposal, params: dict[str, Any], sensitive: dict[str, str]) -> list[str]:
    """What the user should know or do before training: columns left out, personal-looking columns,
    days, reviewers' keys."""
    notes = [f"column {column} left out: {why}" for column, why in proposal.roles.left_out.items()]
    notes += [
        f"column {column} may be personal ({why}): if it is, list it under privacy.sensitive in params.yaml "
        f"(or mark it in the contract: meta.columns.{column}.sensitive: true) so its values never leave the "
        "data store (docs/security.md, Sensitive columns)"
        for column, why in sensitive.items()
    ]
    notes += [
        f"column {column}: declare it as the row key with --id-column {column} (or move it to the numeric "
        "features in params.yaml if it is a measurement)"
        for column in proposal.roles.possible_ids
    ]
    for column, tokens in proposal.missing_tokens.items():
        shown = ", ".join(f"{token!r} on {count} rows" for token, count in tokens.items())
        notes.append(
            f"column {column} holds {shown}: if that means no value, declare it under dataset.missing_values "
            f"and drop it from the contract's value set (v2); now it is a category of its own"
        )
    split = params["split"]
    needed = int(split["holdout_days"]) + int(split["validation_days"]) + int(split["min_train_days"])
    if proposal.days < needed:
        notes.append(
            f"the sample spans {proposal.days} distinct day(s); training splits by day and needs at least {needed} "
            "(split.holdout_days + validation_days + min_train_days): ingest more batches before `retrain train`"
        )
    keys_dir = project / str(params["approval"]["keys_dir"])
    keyless = [r for r in params["approval"]["reviewers"] if not (keys_dir / f"{r}.pub").exists()]
    if keyless:
        notes.append(
            f"before `retrain train`: approval.reviewers lists {', '.join(keyless)} (--reviewer to choose); each "
            f"runs `retrain reviewer keygen NAME --project {project}` and commits the .pub file"
        )
    return notes


def init_project(
    project: Path,
    sample: Path,
    *,
    target: str,
    time_column: str | None = None,
    task: TaskKind | None = None,
    id_column: str | None = None,
    name: str | None = None,
    reviewers: tuple[str, ...] = (),
) -> InitReport:
    """Scaffold (or complete) ``project`` from ``sample``; see the module docstring."""
    name = name or _default_name(sample)
    project = project.resolve()
    _check_target_directory(project, name, reviewers)
    raw = _read_raw(sample)
    if target not in raw.columns:
        raise InitError(f"--target {target}: no such column in {sample} ({', '.join(map(str, raw.columns))})")
    chosen_time = time_column or sample_inference.infer_time_column(raw, target)
    frame = files.read_batch(sample, chosen_time)
    proposal = sample_inference.propose_project(
        frame, name=name, target=target, time_column=chosen_time, task=task, id_column=id_column
    )
    template = yaml.safe_load((workspace.template_dir() / "params.yaml").read_text(encoding="utf-8"))
    params = _params(proposal, template, reviewers)
    sensitive = propose_sensitive(frame.drop(columns=[target, chosen_time], errors="ignore"))

    project.mkdir(parents=True, exist_ok=True)
    git_initialised = workspace.ensure_git_repo(project)
    written = _write_files(project, sample, proposal, params, sensitive)
    datastore.ensure_dvc_repo(project)
    digest = release_contract(project / "data_contracts", name, 1)
    committed = _commit(project, [*written, ".dvc", ".dvcignore"], f"retrain init: project {name} from {sample.name}")
    return InitReport(
        project=project,
        proposal=proposal,
        time_inferred=time_column is None,
        written=tuple(written),
        contract_hash=digest,
        git_initialised=git_initialised,
        committed=committed,
        notes=tuple(_notes(project, proposal, params, sensitive)),
        sensitive_proposal=sensitive,
    )
