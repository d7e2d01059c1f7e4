"""Rebuild a registered model from its evidence and prove it is the same model, byte for byte.

The evidence bundle logged with every version names the data (DVC md5), the contract (its JSON and
hash) and the settings that shaped the model. XGBoost ``hist`` with the same data, params, seed and
thread count is deterministic, so an honest model can be rebuilt exactly; any difference means the
data, the settings, the library or the registered file is not what the evidence says.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.adapters import datastore, privacy_salt
from retrain.adapters.environment import Runtime
from retrain.adapters.registry import ModelRegistry
from retrain.application.engines import fit_snapshot_file
from retrain.domain.errors import InputError, RetrainError
from retrain.domain.evidence import CONTRACT_DOCUMENT, EVIDENCE_DOCUMENT, RecordedEvidence
from retrain.domain.lifecycle import canonical_hash
from retrain.domain.privacy import check_salt
from retrain.domain.sensitive import is_redacted


class ReproductionError(RetrainError):
    """The evidence is incomplete or inconsistent, so a rebuild cannot even be attempted."""


class DataPurged(InputError):
    """The version's training snapshot was deleted by ``retrain purge``: the ledger says when, by whom, why."""


def _purged(runtime: Runtime, model: str, version: str, md5: str, missing: datastore.DataMissingError) -> RetrainError:
    """Data that is gone: purged (the ledger's purge entries say when and by whom), or lost."""
    from retrain.adapters.ledger import Ledger
    from retrain.domain.retention import purged_snapshots

    ledger = Ledger(runtime.ledger_url)
    try:
        gone = purged_snapshots(ledger.entries(model)).get(md5)
    finally:
        ledger.dispose()
    return missing if gone is None else DataPurged(gone.sentence(version))


@dataclass(frozen=True)
class Reproduction:
    version: str
    identical: bool
    data_md5: str
    data_source: str
    registered_sha256: str
    rebuilt_sha256: str
    registered_bytes: int
    rebuilt_bytes: int
    registered_trees: int
    rebuilt_trees: int
    first_difference: int | None
    library_changes: dict[str, tuple[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _first_difference(a: bytes, b: bytes) -> int | None:
    for index, (left, right) in enumerate(zip(a, b, strict=False)):
        if left != right:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def _trees(content: bytes) -> int:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(content))
    return int(booster.num_boosted_rounds())


def _project_contract(runtime: Runtime, document: dict[str, Any]) -> dict[str, Any]:
    """The contract file of the project (git or DVC) a redacted logged copy stands for."""
    path = runtime.project_dir / "data_contracts" / document["contract_name"] / f"v{document['contract_version']}.json"
    try:
        contract: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReproductionError(
            f"the contract logged with this version withholds sensitive values, and {path} cannot be read: {error}"
        ) from None
    return contract


def reproduce(runtime: Runtime, registry: ModelRegistry, version: str) -> Reproduction:
    """Restore data, contract and settings from the evidence of ``version``, retrain, compare bytes."""
    from retrain.adapters.code_version import library_versions

    info = registry.by_version(version)
    document = registry.load_document(info.run_id, EVIDENCE_DOCUMENT)
    contract = registry.load_document(info.run_id, CONTRACT_DOCUMENT)
    if is_redacted(contract):  # values of sensitive columns withheld: the project's own file must match
        contract = _project_contract(runtime, document)
    if canonical_hash(contract) != document["contract_hash"]:
        raise ReproductionError(f"the contract logged with version {version} does not match its recorded hash")
    evidence = RecordedEvidence.from_document(document)
    training = evidence.training
    tokens = privacy_salt.tokeniser(runtime.state_dir, training.tokenised)
    check_salt(training.salt_id, tokens, f"version {version}")

    with tempfile.TemporaryDirectory(prefix="retrain-reproduce-") as scratch:
        workdir = Path(scratch)
        datastore.ensure_dvc_repo(runtime.project_dir)
        datastore.configure_remote(
            runtime.project_dir,
            runtime.dvc_remote_url,
            endpoint_url=runtime.dvc_remote_endpoint,
            encryption=runtime.s3_encryption,
        )
        snapshot = workdir / "training.parquet"
        try:
            source = datastore.restore_by_md5(runtime.project_dir, evidence.data_md5, snapshot)
        except datastore.DataMissingError as error:
            raise _purged(runtime, registry.model_name, version, evidence.data_md5, error) from error
        fitted = fit_snapshot_file(
            snapshot, training.dataset, training.split, training.model, runtime.dask_scheduler, tokens
        )
        rebuilt = fitted.model_bytes()
        registered = registry.model_file(version, workdir / "registered").read_bytes()

    now = library_versions()
    then = evidence.libraries
    changes = {name: (then[name], now.get(name, "absent")) for name in then if then[name] != now.get(name, "absent")}
    return Reproduction(
        version=version,
        identical=rebuilt == registered,
        data_md5=evidence.data_md5,
        data_source=source,
        registered_sha256=_sha256(registered),
        rebuilt_sha256=_sha256(rebuilt),
        registered_bytes=len(registered),
        rebuilt_bytes=len(rebuilt),
        registered_trees=_trees(registered),
        rebuilt_trees=_trees(rebuilt),
        first_difference=_first_difference(registered, rebuilt),
        library_changes=changes,
    )
