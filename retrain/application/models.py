"""A registered model loaded to read rows: every model reads them as it learnt them.

A model trained with sensitive columns learnt their tokens (:mod:`retrain.domain.privacy`); its
feature spec names them and the id of the salt that keyed them. Scoring, drift, shadow, the gate's
comparison and reproduce tokenise rows per the model's own spec, not per the current params: a
declaration removed later does not break the champion, and a model whose salt is not this
environment's is refused with a clear error (never scored on wrong tokens).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retrain.adapters import privacy_salt
from retrain.adapters.registry import ModelRegistry
from retrain.domain.features import FeatureSpec
from retrain.domain.privacy import Tokeniser, check_salt
from retrain.domain.task import Task
from retrain.domain.training import predict

if TYPE_CHECKING:
    import xgboost as xgb


@dataclass(frozen=True)
class LoadedModel:
    version: str
    booster: xgb.Booster
    spec: FeatureSpec
    tokens: Tokeniser

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows as this model reads them (its sensitive columns as tokens)."""
        return self.tokens.frame(frame)

    def predict(self, frame: pd.DataFrame, task: Task, threads: int, *, tokenised: bool = False) -> np.ndarray:
        """The task's predictions of rows from the data store (or already ``tokenised`` by :meth:`rows`)."""
        return predict(self.booster, frame if tokenised else self.rows(frame), self.spec, task, threads)


def model_tokens(spec: FeatureSpec, state_dir: Path | None, who: str) -> Tokeniser:
    """The tokeniser a model's spec asks for, under this environment's salt (checked against the spec's)."""
    if not spec.tokenised:
        return Tokeniser.none()
    home = state_dir if state_dir is not None else Path(os.environ.get("RETRAIN_HOME", ".retrain"))
    tokens = privacy_salt.tokeniser(home, spec.tokenised)
    check_salt(spec.salt_id, tokens, who)
    return tokens


def load_model(registry: ModelRegistry, version: str) -> LoadedModel:
    """The registered version with what it needs to read rows as it learnt them."""
    booster, spec = registry.load(version)
    tokens = model_tokens(spec, registry.state_dir, f"model version {version} of {registry.model_name}")
    return LoadedModel(version, booster, spec, tokens)
