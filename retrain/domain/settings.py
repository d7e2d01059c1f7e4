"""Typed, frozen settings read once from ``params.yaml``.

Every knob a user tunes lives in ``params.yaml``; this module turns it into immutable pydantic
models so that a typo (unknown key), a forgotten key or a wrong type stops the program at start-up
with an error that names the key and the file, instead of surfacing as a ``KeyError`` mid-run.
Service locations (MLflow, Prefect, DVC remote) are *not* here: they come from the environment
(see :mod:`retrain.environment`), so the same params work on a laptop and on the team stack.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PrimaryMetric = Literal["roc_auc", "pr_auc", "log_loss", "brier"]


class SettingsError(ValueError):
    """Raised when params.yaml cannot be turned into settings; the message names key and file."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class FeatureSettings(_Frozen):
    """Which columns the model sees, split by kind because XGBoost treats them differently."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


class DatasetSettings(_Frozen):
    """Where the data is and what its columns mean."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    batches: str = Field(min_length=1, description="Directory of batch files (.parquet/.csv), relative to the project.")
    training_set: str = Field(min_length=1, description="DVC-tracked snapshot the run trains on.")
    quarantine: str = Field(min_length=1, description="Directory of quarantined rows, one file per batch (DVC).")
    target: str
    id_column: str
    time_column: str
    features: FeatureSettings

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> DatasetSettings:
        special = {self.target, self.id_column, self.time_column}
        if len(special) != 3:
            raise ValueError("target, id_column and time_column must be three different columns")
        overlap = special.intersection(self.features.all)
        if overlap:
            raise ValueError(f"features must not include target/id/time columns: {sorted(overlap)}")
        if len(set(self.features.all)) != len(self.features.all):
            raise ValueError("a feature is listed twice")
        return self


class ContractSettings(_Frozen):
    """Which versioned great-expectations suite under ``data_contracts/`` guards the data."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = Field(ge=1)
    max_quarantine_share: float = Field(ge=0, le=1, description="Largest share of rows quarantined before refusal.")
    extra_columns: Literal["refuse", "drop"]

    @property
    def relative_path(self) -> str:
        return f"data_contracts/{self.name}/v{self.version}.json"


class SplitSettings(_Frozen):
    """Time-based split: the newest days are the untouched holdout, the days before them validate."""

    holdout_days: int = Field(ge=1)
    validation_days: int = Field(ge=1)
    min_train_days: int = Field(default=1, ge=1)


class XGBoostSettings(_Frozen):
    """The XGBoost knobs Retrain exposes; ``hist`` is fixed because it makes training deterministic."""

    num_boost_round: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    max_depth: int = Field(ge=1, le=32)
    learning_rate: float = Field(gt=0, le=1)
    subsample: float = Field(gt=0, le=1)
    colsample_bytree: float = Field(gt=0, le=1)
    min_child_weight: float = Field(ge=0)
    reg_lambda: float = Field(ge=0)
    reg_alpha: float = Field(ge=0)
    max_cat_to_onehot: int = Field(ge=1)
    max_bin: int = Field(ge=2)


class ModelSettings(_Frozen):
    registered_name: str = Field(min_length=1)
    experiment: str = Field(min_length=1)
    seed: int
    threads: int = Field(ge=1)
    xgboost: XGBoostSettings


class GuardrailSettings(_Frozen):
    """Limits a challenger must respect whatever its accuracy: calibration, speed, size."""

    max_calibration_error: float = Field(gt=0, le=1, description="Expected calibration error, 10 bins.")
    max_latency_single_ms: float = Field(gt=0, description="p95 of one-row predictions via the loaded model.")
    max_latency_batch_ms: float = Field(gt=0, description="p95 of 10,000-row predictions via the loaded model.")
    max_model_mb: float = Field(gt=0, description="Size of the native model file.")


class SliceSettings(_Frozen):
    """Groups in which the challenger must not regress, however good it is overall."""

    categorical: tuple[str, ...]
    numeric_bins: dict[str, tuple[float, ...]]
    min_rows: int = Field(ge=1, description="Smaller slices are reported but do not gate.")
    alpha: float = Field(gt=0, lt=1, description="Family-wise error rate across slices (Holm).")


class GateSettings(_Frozen):
    """Automatic promotion checks; differences are measured so that positive means 'better'."""

    primary_metric: PrimaryMetric
    floor: float = Field(description="Absolute floor of the primary metric (minimum for higher-is-better metrics).")
    mode: Literal["non_inferiority", "superiority"]
    max_drop: float = Field(ge=0, description="Non-inferiority margin: the CI's lower bound must exceed −max_drop.")
    min_gain: float = Field(description="Superiority: the CI's lower bound of the gain must exceed min_gain.")
    bootstrap_resamples: int = Field(ge=100, le=100_000)
    confidence: float = Field(gt=0.5, lt=1)
    guardrails: GuardrailSettings
    slices: SliceSettings


class DemoSettings(_Frozen):
    """The embedded demo: a seeded generator of daily loan batches."""

    seed: int
    start_date: dt.date
    days: int = Field(ge=4)
    rows_per_day: int = Field(ge=100)
    first_training_days: int = Field(ge=3)

    @model_validator(mode="after")
    def _first_training_fits(self) -> DemoSettings:
        if self.first_training_days >= self.days:
            raise ValueError("first_training_days must be smaller than days")
        return self


class Settings(_Frozen):
    """Everything in params.yaml, validated."""

    dataset: DatasetSettings
    contract: ContractSettings
    split: SplitSettings
    model: ModelSettings
    gate: GateSettings
    demo: DemoSettings


def _describe(error: dict[str, object]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "<top level>"  # type: ignore[attr-defined]
    kind = error.get("type")
    if kind == "missing":
        return f"key '{location}' is missing"
    if kind == "extra_forbidden":
        return f"key '{location}' is not a known setting (typo?)"
    return f"key '{location}': {error['msg']} (got {error.get('input')!r})"


def parse_settings(raw: object, source: str) -> Settings:
    """Validate an already-loaded mapping; ``source`` names the file in error messages."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{source}: expected a mapping of settings at the top level")
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_describe(dict(e)) for e in error.errors())
        raise SettingsError(f"{source}: {problems}") from None


def load_settings(path: Path) -> Settings:
    """Read ``params.yaml`` once; every problem is reported with the key and the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML: {error}") from None
    return parse_settings(raw, str(path))
