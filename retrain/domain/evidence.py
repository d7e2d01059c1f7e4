"""Evidence and the training key: what a model version was made from, written and read in one place.

Every registered version carries :class:`Evidence` as tags and an ``evidence.json`` document
(:func:`evidence_document`); ``retrain reproduce`` reads that document back as
:class:`RecordedEvidence`. The training key covers only what shapes the model (data, contract,
:class:`TrainingSettings`, code), never who asked or why, so a re-run on the same inputs reuses its
version instead of registering a twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from retrain.domain import lifecycle, tags
from retrain.domain.lifecycle import canonical_hash
from retrain.domain.settings import LOCAL_ENGINES, DatasetSettings, ModelSettings, Settings, SplitSettings

#: Documents logged with every trained version (names inside its MLflow run).
EVIDENCE_DOCUMENT: Final = "evidence.json"
CONTRACT_DOCUMENT: Final = "contract.json"
FEATURE_SPEC_DOCUMENT: Final = "feature_spec.json"
REFERENCE_PROFILE: Final = "reference_profile.json"


@dataclass(frozen=True)
class Snapshot:
    """The versioned training data of one run."""

    path: str
    md5: str
    rows: int
    batches: int
    first_day: str
    last_day: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Dataset keys added after models were registered, with the value that means "as before". Left out
#: of the record when at that value, so a binary model's params hash (and training key) stays what
#: earlier releases recorded: an upgrade does not make every registered version look foreign.
_LATER_DATASET_DEFAULTS: dict[str, Any] = {"task": "binary", "labels": None}


def _dataset_record(dataset: DatasetSettings) -> dict[str, Any]:
    record = dataset.model_dump(mode="json")
    for key, default in _LATER_DATASET_DEFAULTS.items():
        if key in record and record[key] == default:
            del record[key]
    return record


def _model_record(model: ModelSettings) -> dict[str, Any]:
    """The model settings as recorded. The engine keys came later: a model boosted in the flow's
    process (in memory or through external memory: the same bytes) records none of them, so its params
    hash stays what earlier releases recorded; a Dask model records the engine and the worker count,
    since how the rows were spread over workers shapes the trees."""
    record = model.model_dump(mode="json")
    record.pop("external_memory_above_mb", None)  # where the matrix is held, never what it holds
    if record.get("engine") in LOCAL_ENGINES:
        record.pop("engine", None)
        record.pop("dask_workers", None)
    return record


@dataclass(frozen=True)
class TrainingSettings:
    """The settings that shape the model (not the gate, which judges it afterwards)."""

    dataset: DatasetSettings
    split: SplitSettings
    model: ModelSettings
    #: the sensitive columns the model reads as tokens and the id of the salt that keyed them: both
    #: shape the model (its categories are tokens). Recorded only when there are any, so a model
    #: without sensitive columns keeps the params hash (and training key) it always had.
    tokenised: tuple[str, ...] = ()
    salt_id: str | None = None

    @classmethod
    def of(cls, settings: Settings, salt_id: str | None = None) -> TrainingSettings:
        tokenised = settings.tokenised_columns
        return cls(
            dataset=settings.dataset,
            split=settings.split,
            model=settings.model,
            tokenised=tokenised,
            salt_id=salt_id if tokenised else None,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSettings:
        """Read back what :meth:`to_dict` recorded in an evidence bundle."""
        return cls(
            dataset=DatasetSettings.model_validate(data["dataset"]),
            split=SplitSettings.model_validate(data["split"]),
            model=ModelSettings.model_validate(data["model"]),
            tokenised=tuple((data.get("privacy") or {}).get("tokenised", ())),
            salt_id=(data.get("privacy") or {}).get("salt_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "dataset": _dataset_record(self.dataset),
            "split": self.split.model_dump(mode="json"),
            "model": _model_record(self.model),
        }
        if self.tokenised:
            record["privacy"] = {"tokenised": list(self.tokenised), "salt_id": self.salt_id}
        return record

    def params_hash(self) -> str:
        return canonical_hash(self.to_dict())


def training_settings(settings: Settings, salt_id: str | None = None) -> dict[str, Any]:
    """The settings that shape the model, as recorded in ``evidence.json``."""
    return TrainingSettings.of(settings, salt_id).to_dict()


def training_params_hash(settings: Settings, salt_id: str | None = None) -> str:
    """The params part of the training key."""
    return TrainingSettings.of(settings, salt_id).params_hash()


@dataclass(frozen=True)
class Evidence:
    """What a model version was made from: enough to find its data, contract, params and code."""

    data_md5: str
    contract_name: str
    contract_version: int
    contract_hash: str
    params_hash: str
    code_version: str
    training_key: str
    flow_run_id: str
    triggered_by: str
    reason: str
    salt_id: str | None = None

    def tags(self) -> dict[str, str]:
        return {
            tags.TAG_TRAINING_KEY: self.training_key,
            tags.TAG_DATA_MD5: self.data_md5,
            tags.TAG_CONTRACT_NAME: self.contract_name,
            tags.TAG_CONTRACT_VERSION: str(self.contract_version),
            tags.TAG_CONTRACT_HASH: self.contract_hash,
            tags.TAG_PARAMS_HASH: self.params_hash,
            tags.TAG_CODE_VERSION: self.code_version,
            tags.TAG_FLOW_RUN: self.flow_run_id,
            tags.TAG_TRIGGERED_BY: self.triggered_by,
            tags.TAG_REASON: self.reason,
        }

    def version_tags(self) -> dict[str, str]:
        """The few a registered version carries (MLflow shows each as a chip on the version's page):
        what finds it again (the training key), its data and its contract. The rest is on its run."""
        keep = (tags.TAG_TRAINING_KEY, tags.TAG_DATA_MD5, tags.TAG_CONTRACT_NAME, tags.TAG_CONTRACT_VERSION)
        every = self.tags()
        kept = {key: every[key] for key in keep}
        if self.salt_id is not None:  # what a later training checks its salt against (never the salt)
            kept[tags.TAG_SALT_ID] = self.salt_id
        return kept

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        if record["salt_id"] is None:  # a model without sensitive columns records what it always did
            del record["salt_id"]
        return record


def gather_evidence(
    snapshot: Snapshot,
    settings: Settings,
    contract_hash: str,
    code_version: str,
    flow_run_id: str,
    triggered_by: str,
    reason: str,
    salt_id: str | None = None,
) -> Evidence:
    """Who and what made this model; the training key covers what shapes the model, not who asked
    (``salt_id``: the privacy salt's id, when the settings tokenise sensitive columns)."""
    params = training_params_hash(settings, salt_id)
    return Evidence(
        data_md5=snapshot.md5,
        contract_name=settings.contract.name,
        contract_version=settings.contract.version,
        contract_hash=contract_hash,
        params_hash=params,
        code_version=code_version,
        training_key=lifecycle.training_key(snapshot.md5, contract_hash, params, code_version),
        flow_run_id=flow_run_id,
        triggered_by=triggered_by,
        reason=reason,
        salt_id=salt_id if settings.tokenised_columns else None,
    )


def evidence_document(
    evidence: Evidence, snapshot: Snapshot, libraries: Mapping[str, str], settings: Settings
) -> dict[str, Any]:
    """The ``evidence.json`` bundle: the evidence, the snapshot, library versions and training settings."""
    return {
        **evidence.to_dict(),
        "snapshot": snapshot.to_dict(),
        "libraries": dict(libraries),
        "training_settings": training_settings(settings, evidence.salt_id),
    }


@dataclass(frozen=True)
class RecordedEvidence:
    """The parts of a logged ``evidence.json`` that a rebuild needs."""

    data_md5: str
    contract_hash: str
    training: TrainingSettings
    libraries: dict[str, str]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RecordedEvidence:
        return cls(
            data_md5=document["data_md5"],
            contract_hash=document["contract_hash"],
            training=TrainingSettings.from_dict(document["training_settings"]),
            libraries=dict(document.get("libraries", {})),
        )
