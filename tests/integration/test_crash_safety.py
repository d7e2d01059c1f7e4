"""Kill a promotion (SIGKILL) after each of its steps: one champion always, and after `doctor` the
ledger agrees with the aliases. The promotion runs the real code in a subprocess on real MLflow."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrain.adapters.ledger import Ledger
from retrain.adapters.registry import ModelRegistry
from retrain.application.promotion import STEPS, PromotionOutcome, doctor, promote
from retrain.domain.demo_data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, generate_day
from retrain.domain.features import build_feature_spec, encode_features
from retrain.domain.gate import Check, GateDecision
from retrain.domain.lifecycle import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, LedgerEntry
from retrain.domain.settings import load_settings
from retrain.domain.training import train_model
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

PROMOTE = textwrap.dedent(
    """
    import os, signal, sys
    from retrain.adapters.ledger import Ledger
    from retrain.adapters.registry import ModelRegistry
    from retrain.domain.approval import ApprovalResult, Ballot
    from retrain.domain.gate import Check, GateDecision
    from retrain.application.promotion import promote

    tracking, artifacts, ledger_url, crash_after = sys.argv[1:5]
    registry = ModelRegistry(tracking, "m", "e", artifacts)
    decision = GateDecision((Check("min_gain", True, 0.01, 0.0, "better"),), "roc_auc")

    def crash(step):
        if step == crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    ballots = (Ballot("approve", "ada", "looks right", True), Ballot("approve", "grace", "", True))
    approval = ApprovalResult("approved", ballots, 2)
    promote(registry, Ledger(ledger_url), decision, registry.by_version("2"), registry.by_version("1"),
            actor="pytest", flow_run_id="flow-run-42", evidence={}, approval=approval, on_step=crash)
    """
)


def _register_two_models(registry: ModelRegistry, rounds_list: tuple[int, ...] = (3, 6)) -> None:
    settings = load_settings(REPO_ROOT / "params.yaml")
    frame = pd.concat([generate_day(dt.date(2026, 1, d), 400, 1) for d in (1, 2)], ignore_index=True)
    spec = build_feature_spec(frame, NUMERIC_FEATURES, CATEGORICAL_FEATURES)
    for rounds in rounds_list:
        model_settings = settings.model.model_copy(
            update={"xgboost": settings.model.xgboost.model_copy(update={"num_boost_round": rounds})}
        )
        model = train_model(frame.iloc[:400], frame.iloc[400:], spec, "defaulted", model_settings)
        logged = registry.log_training_run(
            run_name=f"r{rounds}",
            params={},
            metrics={},
            tags={},
            booster=model.booster,
            spec=spec,
            input_example=encode_features(frame.head(5), spec),
            figures={},
            documents={},
        )
        registry.register(logged, {})


def _kill_judging(script: str, step: str, tmp_path: Path) -> tuple[ModelRegistry, Ledger]:
    """v1 champion, v2 challenger judged against it by ``script``, killed (SIGKILL) after ``step``."""
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = (tmp_path / "artifacts").as_uri()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    registry = ModelRegistry(tracking, "m", "e", artifacts)
    _register_two_models(registry)
    registry.set_alias(CHAMPION, "1")
    registry.set_alias(CHALLENGER, "2")
    ledger = Ledger(ledger_url)
    ledger.append(LedgerEntry("m", "promotion", None, "1", "1", "pytest", "first champion"))
    done = subprocess.run(
        [sys.executable, "-c", script, tracking, artifacts, ledger_url, step],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return registry, ledger


# Every step is killed in make test-all; make test kills the commit point and the ledger write.
@pytest.mark.parametrize(
    "step", [step if step in ("champion", "ledger") else pytest.param(step, marks=pytest.mark.slow) for step in STEPS]
)
def test_killed_promotion_leaves_one_champion_and_doctor_reconciles(step: str, tmp_path: Path):
    registry, ledger = _kill_judging(PROMOTE, step, tmp_path)

    champion = registry.by_alias(CHAMPION)
    assert champion is not None and champion.version == ("2" if STEPS.index(step) >= STEPS.index("champion") else "1")
    if champion.version == "1":  # killed before the commit point: nothing says v2 was promoted
        assert registry.by_version("2").tags.get("retrain.gate.decision") is None

    report = doctor(registry, ledger)
    assert report.healthy, report.problems
    moves = [e for e in ledger.entries("m") if e.kind in ("promotion", "rollback")]
    assert moves[-1].champion_after == champion.version
    assert sum(e.champion_after == "2" for e in moves) == (1 if champion.version == "2" else 0)
    for alias in (CHALLENGER, PREVIOUS_CHAMPION):
        other = registry.by_alias(alias)
        assert other is None or other.version != champion.version
    if champion.version == "2":
        assert registry.by_version("2").tags["retrain.gate.decision"] == "promoted"  # tagged once it served
        previous = registry.by_alias(PREVIOUS_CHAMPION)
        assert previous is not None and previous.version == "1"
        # Written by promote() or repaired by doctor: the reviewers, their comment and the flow run stay.
        promoted = moves[-1]
        assert promoted.reviewers == ("ada", "grace") and promoted.flow_run_id == "flow-run-42"
        assert "ada (approve): looks right" in promoted.comment
        assert (promoted.champion_before, promoted.challenger) == ("1", "2")
    if step in ("champion", "clear-challenger"):
        assert any("missing ledger entry" in action for action in report.repaired)
    again = doctor(registry, ledger)  # a second look finds nothing left to repair
    assert again.repaired == [] and again.healthy
    ledger.dispose()


REFUSE = PROMOTE.replace(
    'Check("min_gain", True, 0.01, 0.0, "better")', 'Check("min_gain", False, -0.01, 0.0, "worse")'
)


@pytest.mark.parametrize(
    "step", ("tag-decision", pytest.param("ledger", marks=pytest.mark.slow))
)  # both in make test-all
def test_killed_refusal_leaves_the_champion_and_doctor_clears_the_judged_challenger(step: str, tmp_path: Path):
    """A refusal's steps: the decision (document, then tag), the ledger, then ``challenger`` goes. Killed
    before the alias went, the doctor removes it: a refused model is never shadow-scored again."""
    registry, ledger = _kill_judging(REFUSE, step, tmp_path)
    marked = registry.by_alias(CHALLENGER)
    assert marked is not None and marked.version == "2" and marked.tags["retrain.gate.decision"] == "refused"

    report = doctor(registry, ledger)

    missing = ["appended the missing ledger entry for the refused v2"] if step == "tag-decision" else []
    assert report.repaired == [*missing, "removed challenger from v2, which was refused"] and report.healthy
    assert registry.by_alias(CHALLENGER) is None
    champion = registry.by_alias(CHAMPION)
    assert champion is not None and champion.version == "1"
    record = registry.decision_record(registry.by_version("2"))
    assert record is not None and record.decision == "refused" and record.champion_before == "1"
    entries = ledger.entries("m")  # the refusal is on record either way, with its flow run and reviewers
    assert [e.kind for e in entries] == ["promotion", "refusal"]
    assert entries[-1].flow_run_id == "flow-run-42" and entries[-1].reviewers == ("ada", "grace")
    assert entries[-1].champion_after == "1" and doctor(registry, ledger).repaired == []
    ledger.dispose()


def test_doctor_restores_a_lost_champion_alias_but_never_one_the_registry_lacks(tmp_path: Path):
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "m", "e", (tmp_path / "artifacts").as_uri())
    _register_two_models(registry)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(LedgerEntry("m", "promotion", None, "2", "2", "pytest", "v2 promoted"))

    assert doctor(registry, ledger).repaired == ["restored the lost champion alias to v2 from the ledger"]
    champion = registry.by_alias(CHAMPION)
    assert champion is not None and champion.version == "2"

    ledger.append(LedgerEntry("m", "promotion", "2", "7", "7", "pytest", "a version from another registry"))
    registry.delete_alias(CHAMPION)
    report = doctor(registry, ledger)
    assert report.repaired == [] and not report.healthy
    assert report.problems[0].startswith("not repaired: the ledger names champion v7")
    assert registry.by_alias(CHAMPION) is None
    ledger.dispose()


def test_promotion_is_compare_and_set_against_the_judged_champion(tmp_path: Path):
    """Two runs judged against v1 at once: the first promotes, the second is refused with the reason,
    and neither champion, previous-champion nor the ledger chain takes the stale judgement."""
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "m", "e", (tmp_path / "artifacts").as_uri())
    _register_two_models(registry, (3, 6, 9))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    registry.set_alias(CHAMPION, "1")
    ledger.append(LedgerEntry("m", "promotion", None, "1", "1", "pytest", "first champion"))
    judged = registry.by_version("1")
    passed = GateDecision((Check("min_gain", True, 0.01, 0.0, "better"),), "roc_auc")

    def judged_against_v1(version: str) -> PromotionOutcome:
        challenger = registry.by_version(version)
        return promote(registry, ledger, passed, challenger, judged, actor="pytest", flow_run_id=None, evidence={})

    first, second = judged_against_v1("2"), judged_against_v1("3")

    assert first.promoted and not second.promoted
    assert second.reasons[0] == (
        "champion moved from v1 to v2 while this challenger was judged; re-run to judge against v2"
    )
    champion, previous = registry.by_alias(CHAMPION), registry.by_alias(PREVIOUS_CHAMPION)
    assert champion is not None and champion.version == "2"
    assert previous is not None and previous.version == "1"
    entries = ledger.entries("m")
    assert [(e.kind, e.champion_before, e.challenger, e.champion_after) for e in entries] == [
        ("promotion", None, "1", "1"),
        ("promotion", "1", "2", "2"),
        ("refusal", "1", "3", "2"),
    ]
    assert registry.by_version("3").tags["retrain.gate.decision"] == "refused"
    assert doctor(registry, ledger).healthy
    ledger.dispose()


@pytest.mark.slow  # make test-all; chain_breaks is unit-tested, the concurrent trainings test reads it from the CLI
def test_doctor_reports_a_broken_ledger_chain(tmp_path: Path):
    """What three unlocked trainings once wrote: two `1 -> 2` moves and a `1 -> 3` judged against a
    stale champion. Append-only, so the doctor cannot repair it, but it must say where it breaks."""
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "m", "e", (tmp_path / "artifacts").as_uri())
    _register_two_models(registry, (3, 6, 9))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    for before, after in ((None, "1"), ("1", "2"), ("1", "2"), ("1", "3")):
        ledger.append(LedgerEntry("m", "promotion", before, after, after, "pytest", "unlocked"))
    registry.set_alias(CHAMPION, "3")

    report = doctor(registry, ledger)

    assert report.repaired == [] and not report.healthy
    assert len(report.problems) == 2
    assert "promotion v1 -> v2) moves the champion from v1, but the previous move left v2" in report.problems[0]
    assert "promotion v1 -> v3) moves the champion from v1, but the previous move left v2" in report.problems[1]
    ledger.dispose()


def test_runs_started_at_once_share_the_experiment_one_of_them_created(tmp_path: Path):
    """Ten drift checks at once each looked the monitoring experiment up, found none, and created it:
    the ones that lost the race got RESOURCE_ALREADY_EXISTS. They now use the one that was made."""
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = ModelRegistry(tracking, "m", "e", (tmp_path / "artifacts").as_uri())
    late = ModelRegistry(tracking, "m", "e", (tmp_path / "artifacts").as_uri())
    made = first.experiment_id("e-monitoring")
    look_up = late.client.get_experiment_by_name
    stale: list[None] = [None]  # the late run's first look-up happened before the first run created it

    def stale_then_fresh(name: str) -> Any:
        return stale.pop() if stale else look_up(name)

    late.client.get_experiment_by_name = stale_then_fresh  # type: ignore[method-assign]
    assert late.experiment_id("e-monitoring") == made
