"""The embedded demo: the whole lifecycle on generated loan batches, from a fresh state each time.

Steps, each a real flow run in a throw-away workspace (git + DVC repo):
1. the first days arrive → ``training``: the first model passing the gate and the demo reviewer
   becomes ``champion``;
2. each following day arrives → ``drift`` checks it against the champion's reference profile: stable
   days change nothing; from ``demo.drift_day`` on the applicants change (covariate and concept
   drift), the check flags it and retrains (in-process); the new model passes the gate, the demo
   reviewer approves, it is promoted and its profile becomes the reference; drifted days right
   after are held back by the cooldown;
3. the retrained model rolls out as a canary (``rollout.strategy: canary`` in the demo workspace): the
   next days' applicants are scored half by each model (sticky by loan id), their outcomes arrive
   later (``feedback``) and the two arms decide: the rollout completes or rolls back;
4. a data scientist retrains on the two newest days only, to chase the new applicants: it passes the
   gate on those days and rolls out; the next days bring the usual applicants back, and real traffic
   judges it;
5. a data scientist tries a much shallower model → the gate refuses it, the champion stays.

A webhook receiver on 127.0.0.1 stands for the team's chat: the demo prints what people were told.
With ``--stack`` every step is a run of a deployment on the worker: training, drift checks, scoring
(the rollout's arms) and the late labels; the person who runs the demo holds READ only.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from retrain.adapters.environment import Runtime
from retrain.adapters.prefect_api import AnswerSource, Receipt, Signing
from retrain.adapters.workspace import create_workspace, write_params
from retrain.application.results import DriftResult, FeedbackResult, ScoringResult, TrainingResult
from retrain.domain.demo_data import NO_CHANGES, DayChanges, generate_day
from retrain.domain.errors import ApprovalInputError, DemoStepFailed
from retrain.domain.settings import Settings

T = TypeVar("T")
DEMO_KEYS = "demo-reviewer-keys"  # under RETRAIN_HOME, outside every workspace


@dataclass(frozen=True)
class Served:
    """A day of traffic: its applicants scored as they came (the rollout's arms), then their outcomes
    joined as late labels (the rollout judged again)."""

    day: str
    scoring: ScoringResult
    labels: FeedbackResult


StepResult = TrainingResult | DriftResult | Served


# What the applicants do from demo.drift_day on: a different population, and defaults that depend
# on other things (the generator's full covariate drift and half its concept drift).
DRIFTED_DAY = DayChanges(covariate_drift=1.0, concept_drift=0.5)


@dataclass(frozen=True)
class DemoStep:
    title: str
    days: int
    overrides: Mapping[str, Any]
    kind: Literal["train", "drift", "serve"] = "train"
    must_promote: bool = False  # later steps need this step's model as champion
    usual: bool = False  # serve: the usual applicants (the drift is over), whatever demo.drift_day says
    rollout: bool = False  # part of the rollout story: left out where nothing serves traffic


def demo_steps(settings: Settings) -> list[DemoStep]:
    demo = settings.demo
    steps = [DemoStep(f"first {demo.first_training_days} days", demo.first_training_days, {}, must_promote=True)]
    for index in range(demo.first_training_days, demo.days):
        drifted = demo.drift_day is not None and index >= demo.drift_day
        steps.append(DemoStep(f"day {index + 1}{' (drifted)' if drifted else ''}: drift check", index + 1, {}, "drift"))
    if rollout_story(settings):  # the retrained model rolls out, then one on a short window, on real traffic
        first = demo.days + 1
        steps += [
            DemoStep(f"day {first} (drifted): served, late labels", first, {}, "serve", rollout=True),
            DemoStep(f"day {first + 1} (drifted): served, late labels", first + 1, {}, "serve", rollout=True),
            DemoStep(
                "a 2-day training window (split.max_train_days 2)",
                first + 1,
                {"split": {"max_train_days": 2}},
                rollout=True,
            ),
            DemoStep(
                f"day {first + 2}: usual applicants again, served", first + 2, {}, "serve", usual=True, rollout=True
            ),
            DemoStep(f"day {first + 3}: usual applicants, served", first + 3, {}, "serve", usual=True, rollout=True),
        ]
    steps.append(
        DemoStep(
            "all days, shallow model (max_depth 1, 15 rounds)",
            demo.days,
            {
                "split": {"max_train_days": settings.split.max_train_days},
                "model": {"xgboost": {"max_depth": 1, "num_boost_round": 15}},
            },
        )
    )
    return steps


def rollout_story(settings: Settings) -> bool:
    """Whether the demo can show rollouts: the batches drift (the served days are drifted days) and rows
    have ids (late labels join scores by id)."""
    demo = settings.demo
    return demo.drift_day is not None and demo.drift_day < demo.days and settings.dataset.id_column is not None


def demo_rollout(settings: Settings) -> dict[str, Any]:
    """The demo workspace's rollout: a canary on half the rows (two arms of equal power), decided once
    each arm has about one and a half days of labels (one day's arm is half a day of rows)."""
    labelled = max(100, int(settings.demo.rows_per_day * 0.75))
    return {
        "strategy": "canary",
        "share": 0.5,
        "min_labelled_rows": labelled,
        "guard_after_rows": min(200, labelled),
    }


def write_demo_batches(
    batches_dir: Path, settings: Settings, days: int, file_format: str = "parquet", drift_from: int | None = None
) -> list[Path]:
    """Write days [0, days) as one file per day (drifted from ``drift_from`` on); existing days stay."""
    batches_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(days):
        day = settings.demo.start_date + dt.timedelta(days=index)
        path = batches_dir / f"{settings.dataset.name}-{day.isoformat()}.{file_format}"
        if not path.exists():
            changes = DRIFTED_DAY if drift_from is not None and index >= drift_from else NO_CHANGES
            frame = generate_day(day, settings.demo.rows_per_day, settings.demo.seed, changes)
            if file_format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
        written.append(path)
    return written


def demo_reviewers(runtime: Runtime, settings: Settings) -> list[Signing]:
    """The approvals of the first ``quorum`` listed reviewers, each signed with that reviewer's own key.

    The demo shows the whole path, the reviewer included, with keys made as ``retrain reviewer
    keygen`` makes them: private keys under ``$RETRAIN_HOME/demo-reviewer-keys`` (0600, kept between
    demos so ``retrain approve --key`` works there too), public keys written into the demo workspace
    by :func:`install_demo_reviewers`. Nothing else trusts them: a run of any other project reads
    only that project's own committed key directory.
    """
    from retrain.adapters.reviewer_keys import create_private_key, load_private_key

    policy = settings.approval
    signings = []
    for name in policy.reviewers:
        path = runtime.state_dir / DEMO_KEYS / f"{name}.key"
        key = load_private_key(path) if path.exists() else create_private_key(path)
        signings.append(Signing("approve", name, key, "demo: gate report read, evidence checked"))
    return signings


def install_demo_reviewers(workspace: Path, settings: Settings, reviewers: Sequence[Signing]) -> None:
    """Commit the demo reviewers' public keys in the demo's own workspace, as a team adds a reviewer.

    Every listed reviewer gets one (the start-up check asks it of all of them); only the first
    ``quorum`` answer.
    """
    from retrain.adapters.reviewer_keys import write_public_key
    from retrain.adapters.workspace import commit_all

    for reviewer in reviewers:
        write_public_key(workspace, settings.approval, reviewer.reviewer, reviewer.key)
    commit_all(workspace, "demo reviewers' public keys")


def reviewed_by_demo_reviewer(
    reviewers: Sequence[Signing], quorum: int, on_receipt: Callable[[str, str], None] | None = None
) -> Callable[[Callable[[], T]], T]:
    """Wrap a training run so that the first ``quorum`` demo reviewers approve it when it pauses at the gate."""
    from retrain.adapters.prefect_api import run_with_reviewers

    report = receipt_printer(on_receipt)

    def review(start: Callable[[], T]) -> T:
        return run_with_reviewers(start, reviewers[:quorum], on_receipt=report)

    return review


def receipt_printer(
    on_receipt: Callable[[str, str], None] | None,
) -> Callable[[AnswerSource, Receipt | ApprovalInputError], None]:
    """Tell ``on_receipt(reviewer, message)`` how the run took each demo answer."""

    def report(answer: AnswerSource, receipt: Receipt | ApprovalInputError) -> None:
        if on_receipt is not None:
            message = receipt.message if isinstance(receipt, Receipt) else f"refused: {receipt}"
            on_receipt(answer.reviewer, message)

    return report


def reset_demo_state(runtime: Runtime) -> Path:
    """Remove what earlier demos left: the workspace, and the embedded MLflow store with its ledger.

    The ledger records decisions about the registry's versions, so the two go together: a ledger
    kept beside a fresh registry would name versions that no longer exist.
    """
    demo_home = runtime.state_dir / "demo"
    if demo_home.exists():
        shutil.rmtree(demo_home)
    if runtime.embedded_mlflow:
        shutil.rmtree(runtime.state_dir / "mlflow", ignore_errors=True)
        embedded_ledger = f"sqlite:///{runtime.state_dir / 'ledger.db'}"
        if runtime.ledger_url == embedded_ledger:
            (runtime.state_dir / "ledger.db").unlink(missing_ok=True)
    return demo_home


def run_demo(
    runtime: Runtime,
    settings: Settings,
    run_training: Callable[[Path, str], TrainingResult],
    run_drift: Callable[[Path, Path], DriftResult],
    on_step: Callable[[DemoStep, StepResult, float], None] | None = None,
    reviewers: Sequence[Signing] = (),
    run_serving: Callable[[Path, Path, Path], tuple[ScoringResult, FeedbackResult]] | None = None,
) -> list[tuple[DemoStep, StepResult]]:
    """Run every step: ``run_training(workspace, reason)`` runs the training flow on a workspace,
    ``run_drift(workspace, batch)`` the drift flow on one new batch (retraining when it decides to),
    ``run_serving(workspace, batch, labels)`` scores a day's applicants and joins their outcomes later
    (without it, the rollout steps are left out). ``reviewers`` (from :func:`demo_reviewers`) are the
    demo workspace's reviewers; ``on_step`` gets each step's result and its seconds."""
    demo_home = reset_demo_state(runtime)
    overrides: dict[str, Any] = {"demo": settings.demo.model_dump(mode="json")}
    if run_serving is not None and rollout_story(settings):  # where nothing serves traffic, promote at once
        overrides["rollout"] = demo_rollout(settings)
    workspace = create_workspace(runtime.project_dir, demo_home / "workspace", overrides)
    if reviewers:
        install_demo_reviewers(workspace, settings, reviewers)
    results: list[tuple[DemoStep, StepResult]] = []
    for step in demo_steps(settings):
        if step.rollout and run_serving is None:
            continue
        started = time.perf_counter()
        batches = workspace / settings.dataset.batches
        if step.overrides:
            write_params(workspace, step.overrides)
        result: StepResult
        if step.kind == "serve" and run_serving is not None:
            result = _run_step(step, partial(_serve_day, workspace, settings, step, run_serving))
        elif step.kind == "drift":
            written = write_demo_batches(batches, settings, step.days, drift_from=settings.demo.drift_day)
            result = _run_step(step, partial(run_drift, workspace, written[-1]))
        else:
            write_demo_batches(batches, settings, step.days, drift_from=settings.demo.drift_day)
            result = _run_step(step, partial(run_training, workspace, f"demo: {step.title}"))
            _check_promoted(step, result)
        results.append((step, result))
        if on_step is not None:
            on_step(step, result, time.perf_counter() - started)
    return results


def _serve_day(
    workspace: Path,
    settings: Settings,
    step: DemoStep,
    run_serving: Callable[[Path, Path, Path], tuple[ScoringResult, FeedbackResult]],
) -> Served:
    """One day of traffic: its applicants (no outcome yet) scored, then their outcomes as a labels file;
    the labelled day then joins the batches, as a day whose outcomes are known does."""
    data = settings.dataset
    index = step.days - 1
    day = settings.demo.start_date + dt.timedelta(days=index)
    drifted = not step.usual and settings.demo.drift_day is not None and index >= settings.demo.drift_day
    rows = generate_day(day, settings.demo.rows_per_day, settings.demo.seed, DRIFTED_DAY if drifted else NO_CHANGES)
    incoming = workspace.parent / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    applicants = incoming / f"{data.name}-{day.isoformat()}.parquet"
    rows.drop(columns=[data.target]).to_parquet(applicants, index=False)
    labels = incoming / f"{data.name}-{day.isoformat()}-labels.csv"
    columns = [data.id_column, data.target] if data.id_column is not None else [data.target]
    rows[columns].to_csv(labels, index=False)
    scoring, joined = run_serving(workspace, applicants, labels)
    rows.to_parquet(workspace / data.batches / f"{data.name}-{day.isoformat()}.parquet", index=False)
    return Served(day.isoformat(), scoring, joined)


def _run_step(step: DemoStep, run: Callable[[], T]) -> T:
    """Run one step; any failure becomes one DemoStepFailed naming the step (no traceback, no later steps)."""
    try:
        result = run()
    except DemoStepFailed:
        raise
    except Exception as error:  # the demo's contract: one clear line, whatever broke underneath
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DemoStepFailed(f"demo step '{step.title}' failed ({type(error).__name__}): {first}") from error
    return result


def _check_promoted(step: DemoStep, result: StepResult) -> None:
    if not isinstance(result, TrainingResult):
        return
    outcome = result.outcome
    if step.must_promote and not outcome.promoted:
        reasons = "; ".join(outcome.reasons) or outcome.note
        raise DemoStepFailed(
            f"demo step '{step.title}': the model was not promoted, so the later steps have no champion "
            f"to compare with ({reasons})"
        )
