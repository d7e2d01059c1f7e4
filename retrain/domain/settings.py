"""Typed, frozen settings read once from ``params.yaml``.

Every knob a user tunes lives in ``params.yaml``; this module turns it into immutable pydantic
models so that a typo (unknown key), a forgotten key or a wrong type stops the program at start-up
with an error that names the key and the file, instead of surfacing as a ``KeyError`` mid-run.
Service locations (MLflow, Prefect, DVC remote) are *not* here: they come from the environment
(see :mod:`retrain.adapters.environment`), so the same params work on a laptop and on the team stack.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from retrain.domain.errors import InputError
from retrain.domain.metrics import METRICS, TASK_METRICS
from retrain.domain.sensitive import contract_sensitive, raw_slice_problems, tokenised_columns

_REVIEWER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

PrimaryMetric = Literal["roc_auc", "pr_auc", "log_loss", "brier", "macro_f1", "accuracy", "rmse", "mae", "r2"]
TaskKind = Literal["binary", "multiclass", "regression"]
#: A class as written in params.yaml; 1, 1.0, "1" and true/"true" name the same class (see retrain.domain.task).
LabelValue = bool | int | float | str


class SettingsError(InputError):
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

    @model_validator(mode="after")
    def _at_least_one(self) -> FeatureSettings:
        # An empty list reaches XGBoost as a matrix without columns and ends in a C++ backtrace.
        if not self.all:
            raise ValueError("list at least one feature (numeric or categorical)")
        if any(not name.strip() for name in self.all):
            raise ValueError("feature names must not be empty")
        return self


def label_key(value: object) -> tuple[str, object]:
    """The identity of a class value whatever its spelling: numbers (and numeric strings, and
    booleans as 0/1) compare as floats, other strings stripped. A CSV gives "1", parquet 1, YAML 1.0."""
    if isinstance(value, bool):
        return ("n", float(value))
    if isinstance(value, int | float):
        return ("n", float(value))
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return label_key(value.item())
    text = str(value).strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return ("n", 1.0 if lowered == "true" else 0.0)
    try:
        return ("n", float(text))
    except ValueError:
        return ("s", text)


class LabelSettings(_Frozen):
    """The classes of a binary or multiclass target: every value it may take, in class-index order."""

    classes: tuple[LabelValue, ...] = Field(min_length=2, description="Every value the target may take.")
    positive: LabelValue | None = Field(
        default=None, description="Binary only: the class whose probability is predicted."
    )

    @model_validator(mode="after")
    def _distinct_classes(self) -> LabelSettings:
        keys = [label_key(value) for value in self.classes]
        if len(set(keys)) != len(keys):
            raise ValueError(f'classes must be distinct (1, 1.0 and "1" are the same class): {list(self.classes)}')
        if self.positive is not None and label_key(self.positive) not in keys:
            raise ValueError(f"positive {self.positive!r} is not one of the classes {list(self.classes)}")
        return self


class DatasetSettings(_Frozen):
    """Where the data is and what its columns mean."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    batches: str = Field(min_length=1, description="Directory of batch files (.parquet/.csv), relative to the project.")
    training_set: str = Field(min_length=1, description="DVC-tracked snapshot the run trains on.")
    quarantine: str = Field(min_length=1, description="Directory of quarantined rows, one file per batch (DVC).")
    target: str
    task: TaskKind = Field(default="binary", description="binary | multiclass | regression.")
    labels: LabelSettings | None = Field(default=None, description="Classes of the target; not for regression.")
    id_column: str | None = Field(
        default=None,
        description="Column that identifies a row; null or omitted when the data has none (a row key is derived).",
    )
    time_column: str
    features: FeatureSettings
    missing_values: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Per column, the tokens read as missing when batch files are read."
    )

    @field_validator("id_column")
    @classmethod
    def _id_column_not_blank(cls, value: str | None) -> str | None:
        # "" once passed here and ended as KeyError('') in training: no id column is spelt null.
        if value is not None and not value.strip():
            raise ValueError("must name a column, or be null (or omitted) when the data has no id column")
        return value

    @field_validator("missing_values", mode="before")
    @classmethod
    def _tokens_as_text(cls, value: object) -> object:
        """Tokens are matched as text (a CSV cell is text); YAML numbers such as -999 are accepted."""
        if not isinstance(value, Mapping):
            return value
        converted: dict[object, object] = {}
        for column, given in value.items():
            tokens = [given] if isinstance(given, (str, int, float)) and not isinstance(given, bool) else given
            if isinstance(tokens, (list, tuple)):
                tokens = [
                    str(token) if isinstance(token, (int, float)) and not isinstance(token, bool) else token
                    for token in tokens
                ]
            converted[column] = tokens
        return converted

    @field_validator("missing_values")
    @classmethod
    def _tokens_non_empty(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for column, tokens in value.items():
            if not column.strip():
                raise ValueError("a column name must not be empty")
            if not tokens or any(token == "" for token in tokens):
                raise ValueError(f"column '{column}': list one or more non-empty tokens, e.g. ['?']")
        return value

    @property
    def special_columns(self) -> tuple[str, ...]:
        """Target, time and (when the data has one) id column: never features."""
        return (self.target, self.time_column) + (() if self.id_column is None else (self.id_column,))

    @model_validator(mode="after")
    def _labels_fit_the_task(self) -> DatasetSettings:
        labels = self.labels
        if self.task == "regression":
            if labels is not None:
                raise ValueError("labels: a regression target has no classes; remove dataset.labels")
        elif self.task == "binary":
            if labels is not None and len(labels.classes) != 2:
                raise ValueError(f"labels.classes: a binary target has two classes, not {list(labels.classes)}")
            if labels is not None and labels.positive is None:
                raise ValueError("labels.positive: name the class whose probability the model predicts")
        else:
            if labels is None:
                raise ValueError("labels: a multiclass target needs dataset.labels.classes (every class)")
            if labels.positive is not None:
                raise ValueError("labels.positive: only a binary target has a positive class")
        return self

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> DatasetSettings:
        special = set(self.special_columns)
        if len(special) != len(self.special_columns):
            raise ValueError("target, id_column and time_column must be different columns")
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
    max_train_days: int | None = Field(
        default=None,
        ge=1,
        description="Train on at most this many days before the validation days (None: all of them): after a "
        "change of concept, a retraining learns the new one instead of averaging it with years of the old.",
    )


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


#: Where the boosting rounds run: ``in_memory`` in the flow's own process (one machine; through
#: XGBoost's external memory once the training matrix passes ``external_memory_above_mb``),
#: ``external_memory`` in the flow's process always through external memory, ``dask`` with
#: ``xgboost.dask`` on the cluster whose scheduler ``RETRAIN_DASK_SCHEDULER`` names (past one machine).
Engine = Literal["in_memory", "external_memory", "dask"]

#: The engines that boost in the flow's own process: the same model bytes whichever of them runs.
LOCAL_ENGINES: frozenset[str] = frozenset({"in_memory", "external_memory"})


class ModelSettings(_Frozen):
    registered_name: str = Field(min_length=1)
    experiment: str = Field(min_length=1)
    seed: int
    threads: int = Field(ge=1)
    xgboost: XGBoostSettings
    engine: Engine = Field(
        default="in_memory",
        description="in_memory: train in the flow's process (through external memory past "
        "external_memory_above_mb); external_memory: in the flow's process, always through XGBoost's external "
        "memory; dask: xgboost.dask on the cluster at RETRAIN_DASK_SCHEDULER (the per-batch validation tasks run "
        "there too).",
    )
    external_memory_above_mb: float | None = Field(
        default=1000.0,
        ge=0,
        description="in_memory: a training matrix larger than this (rows x features x 8 bytes) is handed to "
        "XGBoost a piece at a time and kept as quantized pages on disk (TMPDIR) instead of in memory; the "
        "model is the same bytes either way. null: never.",
    )
    dask_workers: int = Field(
        default=2,
        ge=1,
        description="dask: the rows are spread over exactly this many workers (the first by address). The "
        "model depends on how rows are spread, so the count is part of the training settings: same data "
        "and count give the same model.",
    )


class GuardrailSettings(_Frozen):
    """Limits a challenger must respect whatever its accuracy: calibration, speed, size.

    Latency is judged *relative* to the champion measured in the same run (interleaved calls, so a
    busy machine slows both alike) against ``max_latency_ratio``; the absolute ceilings are generous
    backstops for a model that is unusable on any machine, and the only check when there is no
    champion yet.
    """

    max_calibration_error: float = Field(
        gt=0, le=1, description="Expected calibration error, 10 bins (multiclass: of the top-class probability)."
    )
    max_bias: float = Field(
        default=0.1,
        gt=0,
        description="Regression: |mean residual| on the holdout, in standard deviations of the holdout target.",
    )
    max_latency_ratio: float = Field(
        gt=1, description="Challenger/champion CPU time per call: median of per-round ratios of interleaved calls."
    )
    max_latency_single_ms: float = Field(gt=0, description="Ceiling: median CPU ms of a one-row prediction.")
    max_latency_batch_ms: float = Field(gt=0, description="Ceiling: median CPU ms of a 10,000-row prediction.")
    max_model_mb: float = Field(gt=0, description="Size of the native model file.")
    latency_single_rounds: int = Field(
        default=200, ge=5, description="Timed one-row calls per model (after a warm-up): more, steadier medians."
    )
    latency_batch_rounds: int = Field(default=10, ge=3, description="Timed 10,000-row calls per model.")


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

    @field_validator("floor", "max_drop", "min_gain")
    @classmethod
    def _within_metric_range(cls, value: float, info: ValidationInfo) -> float:
        """A floor outside the metric's range can never (or always) be met; a margin wider than the
        range means nothing. Ranges come from the metric definitions, whatever the task."""
        metric = info.data.get("primary_metric")
        if metric not in METRICS:
            return value  # the metric itself is reported as wrong
        spec = METRICS[metric]
        if info.field_name == "floor" and not spec.contains(value):
            raise ValueError(f"{value} is outside the range of {metric}, {spec.describe_range()}")
        width = spec.highest - spec.lowest
        if info.field_name != "floor" and abs(value) > width:
            raise ValueError(f"{value} is wider than the whole range of {metric}, {spec.describe_range()}")
        return value


class ApprovalSettings(_Frozen):
    """Who may approve a promotion after the automatic checks pass, how many, and for how long.

    Prefect OSS has no per-user login, so a reviewer proves who they are by signing their answer
    with their own Ed25519 private key. The matching public keys are files in ``keys_dir`` (one
    ``NAME.pub`` per listed reviewer), committed with the project: adding a reviewer or changing a
    key is a reviewed change, and nothing the server, the worker or another person holds can sign.
    """

    reviewers: tuple[str, ...] = Field(min_length=1, description="Names allowed to approve or reject.")
    quorum: int = Field(default=1, ge=1, description="Distinct reviewers who must approve.")
    timeout_minutes: float = Field(gt=0, description="After this, the gate ends as a recorded refusal.")
    poll_seconds: float = Field(gt=0, le=60, description="How often the paused run checks for an answer.")
    keys_dir: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="Directory of the reviewers' public keys (NAME.pub), relative to the project.",
    )

    @model_validator(mode="after")
    def _quorum_is_reachable(self) -> ApprovalSettings:
        names = [name.strip() for name in self.reviewers]
        if any(not name for name in names) or len(set(names)) != len(names):
            raise ValueError("reviewers must be distinct, non-empty names")
        unsafe = [name for name in self.reviewers if not _REVIEWER_NAME.fullmatch(name)]
        if unsafe:
            raise ValueError(
                f"reviewer names name their key files: use letters, digits, '.', '_' or '-' (not {unsafe})"
            )
        if ".." in self.keys_dir.split("/"):
            raise ValueError("keys_dir must stay inside the project (no '..')")
        if self.quorum > len(names):
            raise ValueError(f"quorum {self.quorum} needs more reviewers than the {len(names)} listed")
        return self


class DriftSettings(_Frozen):
    """Drift thresholds, with defaults from practice; a feature drifts when any of its tests says so."""

    quantiles: int = Field(ge=10, le=1000, description="Reference quantiles kept per numeric feature (KS).")
    psi_bins: int = Field(ge=2, le=50, description="Equal-mass reference bins for PSI.")
    psi_warn: float = Field(gt=0)
    psi_drift: float = Field(gt=0)
    ks_alpha: float = Field(gt=0, lt=1)
    ks_min_effect: float = Field(gt=0, lt=1, description="KS distance needed besides p < ks_alpha.")
    chi2_alpha: float = Field(gt=0, lt=1)
    js_drift: float = Field(gt=0, le=1, description="Jensen-Shannon distance (base 2) for categorical drift.")
    missing_rate_change: float = Field(gt=0, le=1, description="Absolute change of a feature's missing share.")
    prediction_psi_drift: float = Field(
        gt=0, description="PSI of the champion's scores beyond chance and the holdout's day-to-day movement."
    )
    drift_share: float = Field(
        gt=0, le=1, description="Retrain when the drifted features hold this share of the champion's importance."
    )
    constant_share: float = Field(
        gt=0.5, le=1, description="A feature whose one value holds this share of the reference is not counted."
    )
    performance_drop: float = Field(ge=0, description="Retrain when the window's metric is surely this far below.")
    min_rows: int = Field(ge=1, description="Smaller windows are reported but never trigger retraining.")
    window_batches: int = Field(ge=1, description="Newest batches compared when no file is named.")
    catch_up_growth: float = Field(
        default=1.0,
        ge=1,
        description="After a change, a retraining catches up when it trains on this many times the champion's "
        "days after the change (and at least one more): 1 every new day, 2 doubling.",
    )

    @model_validator(mode="after")
    def _warn_below_drift(self) -> DriftSettings:
        if self.psi_warn >= self.psi_drift:
            raise ValueError("psi_warn must be below psi_drift")
        return self


class RetrainingSettings(_Frozen):
    """Debounce for drift-triggered retraining: never in a loop, twice at once, or too often."""

    clock: Literal["data", "wall"] = Field(
        description="Count cooldown and budget in the batches' own time (data: a replay decides as it went) "
        "or in wall-clock time (wall)."
    )
    cooldown_hours: float = Field(ge=0, description="Minimum time between two triggered retrainings; 0: none.")
    weekly_budget: int = Field(ge=0, description="Most triggered retrainings in any 7 days.")
    deployment: str = Field(pattern=r"^[a-z0-9-]+/[a-z0-9-]+$", description="flow/deployment run on a trigger.")
    stale_after_hours: float = Field(
        gt=0, description="A training run stuck this long in one state is crashed, not in flight."
    )


class RolloutSettings(_Frozen):
    """How an approved challenger reaches traffic: at once, or as a ``candidate`` serving a share of the
    rows until its realized metric on them decides (retrain.domain.rollout)."""

    strategy: Literal["direct", "canary", "linear"] = Field(
        default="direct",
        description="direct: the approved challenger becomes champion at once; canary: it serves `share` of the "
        "rows until labels decide; linear: its share grows by `step` every `step_hours` up to `max_share`.",
    )
    share: float = Field(default=0.1, gt=0, lt=1, description="The candidate's (first) share of rows.")
    step: float = Field(default=0.1, gt=0, lt=1, description="linear: share added at each step.")
    step_hours: float = Field(default=24, gt=0, description="linear: time between steps (retraining.clock's time).")
    max_share: float = Field(default=0.5, gt=0, lt=1, description="linear: the share never passes this.")
    min_labelled_rows: int = Field(default=1000, ge=10, description="Labelled rows each arm needs to decide.")
    guard_after_rows: int = Field(
        default=200, ge=10, description="Labelled rows each arm needs before guardrails can roll back at once."
    )
    max_days: float = Field(default=14, gt=0, description="A rollout with no decision by then ends by on_timeout.")
    on_timeout: Literal["roll_back", "complete"] = Field(
        default="roll_back", description="What a rollout that never got enough labels does at max_days."
    )

    @model_validator(mode="after")
    def _shares_in_order(self) -> RolloutSettings:
        if self.strategy == "linear" and self.share > self.max_share:
            raise ValueError("share must not exceed max_share (the first step of a linear rollout)")
        if self.guard_after_rows > self.min_labelled_rows:
            raise ValueError("guard_after_rows must not exceed min_labelled_rows")
        return self


class LeaseSettings(_Frozen):
    """How a live flow run proves it is alive: a lease row refreshed by a background thread.

    A run whose lease is older than ``seconds`` is a dead process's leftover: ``retrain doctor`` and
    the start of every flow mark it Crashed. The refresh must come well inside the lease, so one
    slow database write does not make a live run look dead.
    """

    seconds: float = Field(default=120, gt=0, description="A run whose lease was not refreshed this long is dead.")
    refresh_seconds: float = Field(default=15, gt=0, description="How often a live run refreshes its lease.")

    @model_validator(mode="after")
    def _refresh_inside_lease(self) -> LeaseSettings:
        if self.refresh_seconds * 2 > self.seconds:
            raise ValueError("refresh_seconds must be at most half of seconds (one late refresh must not kill a run)")
        return self


class GitSettings(_Frozen):
    """Whether ``ingest`` and ``train`` commit DVC's pointers and ``dvc.lock`` to the project's git.

    Off by default: a commit is the user's act on their own history. ``--commit``/``--no-commit``
    on the command overrides it for one run; only the data-version files are ever committed.
    """

    commit: bool = Field(
        default=False, description="Commit data/*.dvc, dvc.lock and the batch log after ingest and train."
    )


class ScheduleSettings(_Frozen):
    """Cron schedules of the deployments that `retrain deploy` and `retrain serve` register."""

    retrain_cron: str = Field(min_length=9)
    drift_cron: str = Field(min_length=9)
    purge_cron: str = Field(
        default="0 3 * * *", min_length=9, description="When the scheduled purge deletes what is past retention."
    )
    timezone: str = Field(min_length=1)
    work_pool: str = Field(pattern=r"^[a-z0-9-]+$", description="Process work pool the team stack's worker polls.")


class RetentionSettings(_Frozen):
    """How many days each kind of stored data is kept before ``retrain purge`` deletes it; None: forever.

    A file's age is counted in whole days from its own date (the newest valid value of the time
    column in it, else the day it was last written) to today (UTC); a training snapshot's from the
    newest day of data it holds. See :mod:`retrain.domain.retention`.
    """

    batches_days: int | None = Field(default=None, ge=0, description="Batch files in dataset.batches.")
    quarantine_days: int | None = Field(default=None, ge=0, description="Quarantine files in dataset.quarantine.")
    predictions_days: int | None = Field(default=None, ge=0, description="Stored scores (predictions files).")
    snapshots_days: int | None = Field(
        default=None,
        ge=0,
        description="Training snapshots of versions that are neither champion nor previous champion "
        "(those are kept while they hold the alias: they must stay reproducible).",
    )


class MonitoringSettings(_Frozen):
    """How scoring and drift checks read batches."""

    piece_rows: int = Field(
        default=250_000,
        ge=1,
        description="Rows of a Parquet batch read at a time when it is scored or checked for drift: memory "
        "holds one piece of the rows (plus one prediction per row), whatever the batch's size.",
    )


class DemoSettings(_Frozen):
    """The embedded demo: a seeded generator of daily loan batches."""

    seed: int
    start_date: dt.date
    days: int = Field(ge=4)
    rows_per_day: int = Field(ge=100)
    first_training_days: int = Field(ge=3)
    drift_day: int | None = Field(default=None, description="0-based day from which batches drift; null: none.")

    @model_validator(mode="after")
    def _first_training_fits(self) -> DemoSettings:
        if self.first_training_days >= self.days:
            raise ValueError("first_training_days must be smaller than days")
        if self.drift_day is not None and self.drift_day < self.first_training_days:
            raise ValueError("drift_day must not come before first_training_days (the first model's data)")
        return self


class PrivacySettings(_Frozen):
    """Columns whose values must not leave the data store (besides those the contract declares
    sensitive in ``meta.columns``): see :mod:`retrain.domain.privacy`."""

    sensitive: tuple[str, ...] = Field(
        default=(), description="Sensitive columns; after loading, also every column the contract declares sensitive."
    )

    @field_validator("sensitive")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() for name in value):
            raise ValueError("column names must not be empty")
        return tuple(dict.fromkeys(value))


class Settings(_Frozen):
    """Everything in params.yaml, validated."""

    dataset: DatasetSettings
    contract: ContractSettings
    split: SplitSettings
    model: ModelSettings
    gate: GateSettings
    approval: ApprovalSettings
    drift: DriftSettings
    retraining: RetrainingSettings
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    git: GitSettings = Field(default_factory=GitSettings)
    schedules: ScheduleSettings
    demo: DemoSettings
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @property
    def tokenised_columns(self) -> tuple[str, ...]:
        """The sensitive columns a model of these settings reads as tokens (:mod:`retrain.domain.privacy`)."""
        return tokenised_columns(
            self.privacy.sensitive,
            self.dataset.features.categorical,
            self.gate.slices.categorical,
            self.dataset.id_column,
            self.dataset.features.numeric,
        )


def _describe(error: dict[str, object]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "<top level>"  # type: ignore[attr-defined]
    kind = error.get("type")
    if kind == "missing":
        return f"key '{location}' is missing"
    if kind == "extra_forbidden":
        return f"key '{location}' is not a known setting (typo?)"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, Mapping):  # a cross-field check on a whole section: the message says what
        return f"key '{location}': {message}"
    return f"key '{location}': {message} (got {value!r})"


def parse_settings(raw: object, source: str) -> Settings:
    """Validate an already-loaded mapping; ``source`` names the file in error messages."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{source}: expected a mapping of settings at the top level")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_describe(dict(e)) for e in error.errors())
        raise SettingsError(f"{source}: {problems}") from None
    task, metric = settings.dataset.task, settings.gate.primary_metric
    if metric not in TASK_METRICS[task]:
        raise SettingsError(
            f"{source}: key 'gate.primary_metric': {metric} does not fit dataset.task {task}; "
            f"use one of {', '.join(TASK_METRICS[task])}"
        )
    return settings


def declared_columns(contract: Mapping[str, Any]) -> set[str]:
    """The columns a contract (a great-expectations suite as JSON) declares.

    Its ``expect_table_columns_to_match_set`` when it has one (the exact column set), otherwise every
    column an expectation names.
    """
    expectations = [e for e in contract.get("expectations", []) if isinstance(e, Mapping)]
    for expectation in expectations:
        if expectation.get("type") == "expect_table_columns_to_match_set":
            return {str(column) for column in expectation.get("kwargs", {}).get("column_set", [])}
    named: set[str] = set()
    for expectation in expectations:
        kwargs = expectation.get("kwargs", {})
        named.update(str(kwargs[key]) for key in ("column", "column_A", "column_B") if key in kwargs)
        named.update(str(column) for column in kwargs.get("column_list", []))
    return named


def contract_problems(settings: Settings, contract: Mapping[str, Any], contract_label: str) -> list[str]:
    """Every column params.yaml relies on that the contract does not declare, by the key that names it.

    Checked at start-up so that a misspelt or forgotten feature stops the run before any data is
    validated, stored or pushed, instead of failing deep inside training.
    """
    declared = declared_columns(contract)
    dataset, slices = settings.dataset, settings.gate.slices
    uses: list[tuple[str, str]] = [
        ("dataset.target", dataset.target),
        *((("dataset.id_column", dataset.id_column),) if dataset.id_column is not None else ()),
        ("dataset.time_column", dataset.time_column),
        *((f"dataset.missing_values.{column}", column) for column in dataset.missing_values),
        *(("dataset.features.numeric", name) for name in dataset.features.numeric),
        *(("dataset.features.categorical", name) for name in dataset.features.categorical),
        *(("gate.slices.categorical", name) for name in slices.categorical),
        *(("gate.slices.numeric_bins", name) for name in slices.numeric_bins),
        *(("privacy.sensitive", name) for name in settings.privacy.sensitive),
    ]
    return [
        f"key '{key}': column '{column}' is not declared by the contract {contract_label}"
        for key, column in uses
        if column not in declared
    ]


def _read_contract(params_path: Path, settings: Settings) -> dict[str, Any]:
    path = params_path.parent / settings.contract.relative_path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            f"{params_path}: key 'contract.version': the contract {settings.contract.relative_path} does not exist"
        ) from None
    except (OSError, ValueError) as error:
        raise SettingsError(f"{params_path}: key 'contract': {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{params_path}: key 'contract': {path} is not a great-expectations suite")
    return data


def load_settings(path: Path, check_contract: bool = True) -> Settings:
    """Read ``params.yaml`` once; every problem is reported with the key and the file.

    With ``check_contract`` (the default), every column the settings name must be declared by the
    contract they point at (``data_contracts/`` beside params.yaml).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML: {error}") from None
    settings = parse_settings(raw, str(path))
    if check_contract:
        contract = _read_contract(path, settings)
        problems = contract_problems(settings, contract, settings.contract.relative_path)
        if problems:
            raise SettingsError(f"{path}: {'; '.join(problems)}")
        settings = with_contract_sensitive(settings, contract)
    problems = sensitive_slice_problems(settings)
    if problems:
        raise SettingsError(f"{path}: {'; '.join(problems)}")
    return settings


def sensitive_slice_problems(settings: Settings) -> list[str]:
    """Sensitive columns sliced by raw value (see :func:`retrain.domain.sensitive.raw_slice_problems`)."""
    return raw_slice_problems(
        settings.privacy.sensitive,
        settings.gate.slices.categorical,
        settings.dataset.id_column,
        settings.dataset.features.numeric,
    )


def with_contract_sensitive(settings: Settings, contract: Mapping[str, Any]) -> Settings:
    """The settings with ``privacy.sensitive`` the union of params.yaml's list and the contract's
    declaration (``meta.columns.<name>.sensitive: true``)."""
    declared = contract_sensitive(contract)
    union = tuple(dict.fromkeys([*settings.privacy.sensitive, *declared]))
    if union == settings.privacy.sensitive:
        return settings
    return settings.model_copy(update={"privacy": PrivacySettings(sensitive=union)})
