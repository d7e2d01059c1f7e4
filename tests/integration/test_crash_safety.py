"""Kill a promotion (SIGKILL) after each of its steps: one champion always, and after `doctor` the
ledger agrees with the aliases. The promotion runs the real code in a subprocess on real MLflow."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from retrain.adapters.ledger import Ledger
from retrain.adapters.registry import ModelRegistry
from retrain.domain.demo_data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, generate_day
from retrain.domain.features import build_feature_spec, encode_features
from retrain.domain.lifecycle import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, LedgerEntry
from retrain.domain.settings import load_settings
from retrain.domain.training import train_model
from retrain.promotion import STEPS, doctor
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

PROMOTE = textwrap.dedent(
    """
    import os, signal, sys
    from retrain.adapters.ledger import Ledger
    from retrain.adapters.registry import ModelRegistry
    from retrain.domain.gate import Check, GateDecision
    from retrain.promotion import promote

    tracking, artifacts, ledger_url, crash_after = sys.argv[1:5]
    registry = ModelRegistry(tracking, "m", "e", artifacts)
    decision = GateDecision((Check("min_gain", True, 0.01, 0.0, "better"),), "roc_auc")

    def crash(step):
        if step == crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    promote(registry, Ledger(ledger_url), decision, registry.by_version("2"), registry.by_version("1"),
            actor="pytest", flow_run_id=None, evidence={}, on_step=crash)
    """
)


def _register_two_models(registry: ModelRegistry) -> None:
    settings = load_settings(REPO_ROOT / "params.yaml")
    frame = pd.concat([generate_day(dt.date(2026, 1, d), 400, 1) for d in (1, 2)], ignore_index=True)
    spec = build_feature_spec(frame, NUMERIC_FEATURES, CATEGORICAL_FEATURES)
    for rounds in (3, 6):
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


@pytest.mark.parametrize("step", STEPS)
def test_killed_promotion_leaves_one_champion_and_doctor_reconciles(step: str, tmp_path: Path):
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
        [sys.executable, "-c", PROMOTE, tracking, artifacts, ledger_url, step],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr

    champion = registry.by_alias(CHAMPION)
    assert champion is not None and champion.version == ("2" if STEPS.index(step) >= STEPS.index("champion") else "1")

    actions = doctor(registry, ledger)
    moves = [e for e in ledger.entries("m") if e.kind in ("promotion", "rollback")]
    assert moves[-1].champion_after == champion.version
    assert sum(e.champion_after == "2" for e in moves) == (1 if champion.version == "2" else 0)
    for alias in (CHALLENGER, PREVIOUS_CHAMPION):
        other = registry.by_alias(alias)
        assert other is None or other.version != champion.version
    if champion.version == "2":
        previous = registry.by_alias(PREVIOUS_CHAMPION)
        assert previous is not None and previous.version == "1"
    if step in ("champion", "clear-challenger"):
        assert any("missing ledger entry" in action for action in actions)
    assert doctor(registry, ledger) == []  # a second look finds nothing left to repair
    ledger.dispose()


def test_doctor_restores_a_lost_champion_alias_but_never_one_the_registry_lacks(tmp_path: Path):
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "m", "e", (tmp_path / "artifacts").as_uri())
    _register_two_models(registry)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append(LedgerEntry("m", "promotion", None, "2", "2", "pytest", "v2 promoted"))

    assert doctor(registry, ledger) == ["restored the lost champion alias to v2 from the ledger"]
    champion = registry.by_alias(CHAMPION)
    assert champion is not None and champion.version == "2"

    ledger.append(LedgerEntry("m", "promotion", "2", "7", "7", "pytest", "a version from another registry"))
    registry.delete_alias(CHAMPION)
    actions = doctor(registry, ledger)
    assert len(actions) == 1 and actions[0].startswith("not repaired: the ledger names champion v7")
    assert registry.by_alias(CHAMPION) is None
    ledger.dispose()
