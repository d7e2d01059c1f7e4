"""MLflow adapter: experiment runs, the model registry and its aliases.

The only module that talks to MLflow. Models are stored in XGBoost's native UBJSON format (never
pickle) with a signature, an input example and explicit pip requirements (inferring requirements
costs ~14 s per model). The feature spec travels in the MLmodel metadata, so a version loaded by
alias can encode raw rows exactly as at training time.

No MLflow (or HTTP client) exception leaves this module: each becomes :class:`RegistryError`
(transient: the tasks retry it) or :class:`RegistryRefused` (a permanent refusal such as
PERMISSION_DENIED or RESOURCE_DOES_NOT_EXIST), with the original as its cause.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from retrain.domain.encryption import SSE_S3_ONLY, S3Encryption
from retrain.domain.errors import RetrainError, ServiceError
from retrain.domain.features import FeatureSpec
from retrain.domain.fitting import ResourceSample
from retrain.domain.lifecycle import ALIASES, DecisionRecord, ModelVersionInfo
from retrain.domain.links import mlflow_artifact_url, mlflow_run_url, mlflow_version_url
from retrain.domain.tags import (
    DECISION_DOCUMENT,
    RUN_PLOTS,
    TAG_CONTRACT_NAME,
    TAG_CONTRACT_VERSION,
    TAG_CRASHED,
    TAG_DATA_MD5,
    TAG_DECISION,
    TAG_FLOW_RUN,
    TAG_MONITORING_DECISION,
    TAG_SALT_ID,
    TAG_TRAINING_KEY,
)

if TYPE_CHECKING:
    import pandas as pd
    import xgboost as xgb
    from matplotlib.figure import Figure
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from retrain.adapters.environment import Runtime
    from retrain.domain.settings import Settings

HOLDOUT_PREFIX = "holdout_"
#: MLflow 3 opens an experiment without this tag on its GenAI overview; ours are model development.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"


class RegistryError(ServiceError):
    """MLflow could not be reached, or failed in a way that may heal (a server error, a timeout)."""


class RegistryRefused(RetrainError):
    """MLflow refused the request for good (not authenticated, no permission, no such object, bad
    input): the same request gets the same answer, so it is not retried."""

    def __init__(self, message: str, error_code: str):
        super().__init__(message)
        self.error_code = error_code


#: MLflow error codes that answer the request itself, not the state of the service: retrying the
#: same request cannot change them. Every other code (INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE,
#: REQUEST_LIMIT_EXCEEDED, a dropped connection reported as INTERNAL_ERROR, ...) may heal.
PERMANENT_ERROR_CODES: Final = frozenset(
    {
        "BAD_REQUEST",
        "CUSTOMER_UNAUTHORIZED",
        "ENDPOINT_NOT_FOUND",
        "FEATURE_DISABLED",
        "INVALID_PARAMETER_VALUE",
        "INVALID_STATE",
        "MALFORMED_REQUEST",
        "NOT_FOUND",
        "NOT_IMPLEMENTED",
        "PERMISSION_DENIED",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
        "UNAUTHENTICATED",
    }
)
_PERMANENT_HTTP: Final = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 422})


def translate_error(error: Exception, tracking_uri: str) -> RetrainError | None:
    """Retrain's error for an exception MLflow (or the HTTP client under it) raised; None for any other
    exception, which then leaves the adapter unchanged (a bug must not pass for a service failure).

    A refusal keeps the wording ``retrain status`` has always printed ("MLflow at URI refused: CODE").
    """
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        code = str(error.error_code)
        if code in PERMANENT_ERROR_CODES:
            hint = " (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)" if code == "UNAUTHENTICATED" else ""
            return RegistryRefused(f"MLflow at {tracking_uri} refused: {code}{hint}", code)
        return RegistryError(f"MLflow at {tracking_uri} failed ({code}): {_first_line(error.message)}")
    if isinstance(error, requests.RequestException):
        status = None if error.response is None else error.response.status_code
        if status in _PERMANENT_HTTP:
            return RegistryRefused(f"MLflow at {tracking_uri} refused: HTTP {status}", f"HTTP_{status}")
        return RegistryError(f"MLflow at {tracking_uri} could not be reached: {_first_line(str(error))}")
    return None


def _first_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else f"{line[: limit - 1]}…"


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _translated(method: _Method) -> _Method:
    """Let no MLflow or HTTP-client exception leave a registry method: callers (and the tasks' retry
    policy) see :class:`RegistryError` (transient) or :class:`RegistryRefused` (permanent), with the
    original as the cause."""

    @functools.wraps(method)
    def wrapper(self: ModelRegistry, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RetrainError:
            raise
        except Exception as error:
            translated = translate_error(error, self.tracking_uri)
            if translated is None:
                raise
            raise translated from error

    return cast(_Method, wrapper)


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str
    model_id: str | None = None  # MLflow 3 logged-model id: a tracking server needs it to register


def _quiet_mlflow() -> None:
    """MLflow logs a uv-project notice and a missing-pip warning per model: noise for our users."""
    for name in ("mlflow.utils.uv_utils", "mlflow.utils.environment", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)


#: MLflow's S3 artifact store reads its boto3 upload arguments from this variable at every upload.
S3_UPLOAD_ARGS = "MLFLOW_S3_UPLOAD_EXTRA_ARGS"


def encrypt_s3_uploads(encryption: S3Encryption) -> None:
    """Every artifact this process writes to S3 through MLflow is encrypted at rest as ``encryption``
    says (MLflow takes the arguments from the environment only; arguments already there are kept).
    Through a tracking server that proxies artifacts, the server writes them: the team stack gives
    its process the same variable (:mod:`retrain.stack.services`)."""
    os.environ[S3_UPLOAD_ARGS] = encryption.mlflow_upload_extra_args(os.environ.get(S3_UPLOAD_ARGS))


def _client(tracking_uri: str, encryption: S3Encryption) -> MlflowClient:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    encrypt_s3_uploads(encryption)  # before any upload: each goes through this client or its experiment
    from mlflow import MlflowClient

    _quiet_mlflow()

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class ModelRegistry:
    """One registered model and its experiment on one MLflow tracking server."""

    @classmethod
    def for_project(cls, runtime: Runtime, settings: Settings) -> ModelRegistry:
        """The registered model params.yaml names, on the MLflow server the environment names."""
        return cls(
            runtime.mlflow_tracking_uri,
            settings.model.registered_name,
            settings.model.experiment,
            runtime.mlflow_artifact_location,
            runtime.s3_encryption,
            state_dir=runtime.state_dir,
        )

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        experiment: str,
        artifact_location: str | None,
        s3_encryption: S3Encryption = SSE_S3_ONLY,
        state_dir: Path | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.state_dir = state_dir  # where the environment's state (and its privacy salt file) lives
        self.model_name = model_name
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.s3_encryption = s3_encryption  # of the artifacts this process writes to S3 itself
        self._mlflow_client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._mlflow_client is None:
            if self.tracking_uri.startswith("sqlite:///"):
                Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._mlflow_client = _client(self.tracking_uri, self.s3_encryption)
        return self._mlflow_client

    @_translated
    def experiment_id(self, name: str | None = None) -> str:
        """The experiment's id (ours unless named), creating it with our artifact location on first use."""
        name = name or self.experiment
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                self.client.restore_experiment(existing.experiment_id)
            if EXPERIMENT_KIND not in (existing.tags or {}):
                self.client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND, MODEL_DEVELOPMENT)
            return str(existing.experiment_id)
        location = None if self.artifact_location is None else f"{self.artifact_location.rstrip('/')}/{name}"
        if name == self.experiment:
            location = self.artifact_location
        from mlflow.exceptions import MlflowException

        try:
            created = self.client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_DEVELOPMENT}
            )
            return str(created)
        except MlflowException as error:  # another run made it first (runs started at once): use theirs
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            made = self.client.get_experiment_by_name(name)
            if made is None:
                raise
            return str(made.experiment_id)

    @property
    def monitoring_experiment(self) -> str:
        return f"{self.experiment}-monitoring"

    @_translated
    def log_monitoring_run(
        self,
        *,
        run_name: str,
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        figures: Mapping[str, Figure],
        documents: Mapping[str, Any],
        texts: Mapping[str, str] | None = None,
    ) -> str:
        """A drift check or a scoring pass as a run of the monitoring experiment; returns the run id.

        Through the client API (not mlflow's fluent, process-global active run), so that checks
        running at the same time in one process each log to their own run.
        """
        client = self.client
        run = client.create_run(self.experiment_id(self.monitoring_experiment), run_name=run_name, tags=dict(tags))
        run_id = str(run.info.run_id)
        try:
            for key, value in metrics.items():
                client.log_metric(run_id, key, value)
            for path, figure in figures.items():
                client.log_figure(run_id, figure, path)
            for path, document in documents.items():
                client.log_dict(run_id, document, path)
            for path, text in (texts or {}).items():
                client.log_text(run_id, text, path)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id)
        return run_id

    # --- runs -----------------------------------------------------------------------------

    @_translated
    def log_training_run(
        self,
        *,
        run_name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        booster: xgb.Booster,
        spec: FeatureSpec,
        input_example: pd.DataFrame,
        figures: Mapping[str, Figure],
        documents: Mapping[str, Any],
        resources: Sequence[ResourceSample] = (),
    ) -> LoggedModel:
        """One MLflow run: params, metrics, plots, JSON documents, the native-format model, and the CPU
        and memory sampled while it was fitted (MLflow's ``system/`` metrics, one step a sample)."""
        import mlflow
        import mlflow.xgboost
        import xgboost as xgb
        from mlflow.models import infer_signature

        mlflow.set_tracking_uri(self.tracking_uri)
        example = input_example.head(5)
        signature = infer_signature(example, booster.predict(xgb.DMatrix(example)))
        with mlflow.start_run(experiment_id=self.experiment_id(), run_name=run_name, tags=dict(tags)) as run:
            mlflow.log_params({key: str(value) for key, value in params.items()})
            mlflow.log_metrics(dict(metrics))
            if resources:
                self._log_resources(run.info.run_id, resources)
            for path, figure in figures.items():
                mlflow.log_figure(figure, path)
            for path, document in documents.items():
                mlflow.log_dict(document, path)
            info = mlflow.xgboost.log_model(
                booster,
                name="model",
                model_format="ubj",
                signature=signature,
                input_example=example,
                pip_requirements=[f"xgboost=={xgb.__version__}", f"mlflow=={mlflow.__version__}"],
                metadata={"feature_spec": spec.to_dict()},
            )
        return LoggedModel(run_id=run.info.run_id, model_uri=info.model_uri, model_id=info.model_id)

    def _log_resources(self, run_id: str, resources: Sequence[ResourceSample]) -> None:
        import time

        from mlflow.entities import Metric

        from retrain.adapters.system_metrics import SERIES

        now = int(time.time() * 1000)
        last = resources[-1].seconds
        batch = [
            Metric(key, float(getattr(sample, field)), now - int((last - sample.seconds) * 1000), step)
            for step, sample in enumerate(resources)
            for key, field in SERIES.items()
        ]
        for start in range(0, len(batch), 900):  # MLflow takes at most 1000 metrics a call
            self.client.log_batch(run_id, metrics=batch[start : start + 900])

    @_translated
    def fail_runs_of_flow(self, flow_run_id: str, reason: str) -> list[str]:
        """End every MLflow run that a (crashed) flow run left, as FAILED with the reason as a tag.

        A killed process never closes its run, so it stays RUNNING; a run that finished before the
        flow died is marked FAILED too, because the flow it belongs to never concluded. Searches
        every experiment: training and monitoring runs carry the flow run id in the same tag.
        """
        from mlflow.entities import RunStatus, ViewType

        experiments = [e.experiment_id for e in self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
        if not experiments:
            return []
        runs = self.client.search_runs(
            experiments, filter_string=f"tags.`{TAG_FLOW_RUN}` = '{flow_run_id}'", max_results=1000
        )
        failed = []
        for run in runs:
            if run.info.status == RunStatus.to_string(RunStatus.FAILED):
                continue
            self.client.set_tag(run.info.run_id, TAG_CRASHED, reason)
            self.client.set_terminated(run.info.run_id, status="FAILED")
            failed.append(run.info.run_id)
        return failed

    # --- registry -------------------------------------------------------------------------

    @_translated
    def register(self, logged: LoggedModel, tags: Mapping[str, str]) -> ModelVersionInfo:
        """A new version of the registered model, from a logged model, with its evidence tags."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            _raise_unless_absent(error)
            self.client.create_registered_model(self.model_name)
        version = self.client.create_model_version(
            self.model_name, source=logged.model_uri, run_id=logged.run_id, tags=dict(tags), model_id=logged.model_id
        )
        self._name_run(logged.run_id, f"{self.model_name} v{version.version}")
        return self._describe(version)

    def _name_run(self, run_id: str, name: str) -> None:
        """The run's name in the runs list (``MODEL vN``); best effort, the version exists either way."""
        try:
            self.client.update_run(run_id, name=name)
        except Exception as error:  # the run keeps its first name
            logging.getLogger("retrain.registry").warning(f"run {run_id} was not renamed ({type(error).__name__})")

    def record_verdict(self, version: str, run_id: str | None, decision: str, why: str) -> None:
        """Where people look in MLflow: the version's one-line description (the decision and why) and
        its training run's ``retrain.decision`` tag (a column of the runs list).

        Display only, written after the decision's commit point, and never raises: a refusal (the
        run was deleted, MLflow is down) is a warning, never a promotion or rollout that fails."""
        try:
            self.client.update_model_version(self.model_name, version, description=f"{decision}: {why}"[:500])
            run = run_id or self.client.get_model_version(self.model_name, version).run_id
            if run:
                self.client.set_tag(run, TAG_MONITORING_DECISION, decision)
        except Exception as error:  # what people read is late, the decision stands
            logging.getLogger("retrain.registry").warning(
                f"v{version}'s description was not updated ({type(error).__name__}); the decision stands"
            )

    @_translated
    def record_decision(self, version: ModelVersionInfo, record: DecisionRecord, *, tag: bool = True) -> None:
        """The decision's document on the version's run (any earlier decision kept in its history),
        then, with ``tag``, its one-word tag on the version. The document goes before a move's commit
        point: the doctor rebuilds a missing ledger entry from it. A promotion tags after its commit
        point, so the tag never says promoted for a version that did not serve."""
        earlier = self.decision_record(version)
        if earlier is not None:
            summary = {"decision": earlier.decision, "reasons": earlier.reasons, "decided_at": earlier.decided_at}
            record = replace(record, history=(*earlier.history, summary))
        self._write_decision(version, record, tag)

    def _write_decision(self, version: ModelVersionInfo, record: DecisionRecord, tag: bool) -> None:
        self.client.log_dict(version.run_id, record.to_dict(), DECISION_DOCUMENT)
        if tag:
            self.client.set_model_version_tag(self.model_name, version.version, TAG_DECISION, record.decision)

    @_translated
    def decision_record(self, version: ModelVersionInfo) -> DecisionRecord | None:
        """The version's decision document, or None when it was never judged, has no run (registered
        by hand from a source) or its run is gone."""
        from mlflow.exceptions import MlflowException

        if version.run_id in ("", "None"):
            return None
        folder = DECISION_DOCUMENT.rpartition("/")[0]
        try:
            listed = self.client.list_artifacts(version.run_id, folder)
        except MlflowException as error:
            _raise_unless_absent(error)
            return None
        if not any(item.path == DECISION_DOCUMENT for item in listed):
            return None
        return DecisionRecord.from_dict(self.load_document(version.run_id, DECISION_DOCUMENT))

    @_translated
    def clear_decision_tag(self, version: str) -> None:
        """The version is judged again: its earlier decision stays in its document (the next record
        keeps it in its history), not on its tag."""
        self.client.delete_model_version_tag(self.model_name, version, TAG_DECISION)

    @_translated
    def decide_again(self, version: ModelVersionInfo, decision: str, reasons: str, **changes: Any) -> None:
        """A later decision about a judged version (a rollout's end, a rollback): the record keeps
        the earlier one in its history; a version never judged (or without a run) gets a record of
        this one alone, or only its tag when it has no run to hold the document."""
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        earlier = self.decision_record(version)
        if version.run_id in ("", "None"):
            self.client.set_model_version_tag(self.model_name, version.version, TAG_DECISION, decision)
            return
        record = (
            DecisionRecord(decision, reasons, decided_at=at, **changes)
            if earlier is None
            else earlier.then(decision, reasons, at, **changes)
        )
        self._write_decision(version, record, tag=True)

    @_translated
    def ui_links(self, ui_url: str, run_id: str, version: str) -> dict[str, str]:
        """Deep links into the MLflow UI for a gate report: the run, the model version, each logged plot."""
        experiment = self.experiment_id()
        links = {
            "MLflow run": mlflow_run_url(ui_url, experiment, run_id),
            f"model version {version}": mlflow_version_url(ui_url, self.model_name, version),
        }
        links.update(
            {
                f"plot: {path}": mlflow_artifact_url(ui_url, experiment, run_id, path)
                for path in self.artifact_paths(run_id, RUN_PLOTS)
            }
        )
        return links

    @_translated
    def artifact_place(self, ui_url: str, run_id: str, path: str) -> tuple[str, str]:
        """Where people find one artifact of a run (of any experiment): its page in the MLflow UI, and
        its stored URI (a file or S3 URI: what ``mlflow artifacts download`` and the store know)."""
        info = self.client.get_run(run_id).info
        page = mlflow_artifact_url(ui_url, str(info.experiment_id), run_id, path)
        return page, f"{str(info.artifact_uri).rstrip('/')}/{path}"

    @_translated
    def artifact_paths(self, run_id: str, folder: str) -> list[str]:
        """The files directly in one folder of a run's artifacts (paths relative to the run), sorted."""
        return sorted(item.path for item in self.client.list_artifacts(run_id, folder) if not item.is_dir)

    @_translated
    def artifact_uri(self, run_id: str) -> str:
        """Where a run's artifacts are stored (``file:`` on the embedded default, else S3 or the server)."""
        return str(self.client.get_run(run_id).info.artifact_uri)

    @_translated
    def log_figures(self, run_id: str, figures: Mapping[str, Figure]) -> list[str]:
        """Add figures to a run that already ended (the comparison, drawn once the version is judged);
        a figure at a path the run already has replaces it. Returns the paths, sorted."""
        for path, figure in figures.items():
            self.client.log_figure(run_id, figure, path)
        return sorted(figures)

    @_translated
    def find_by_training_key(self, key: str) -> ModelVersionInfo | None:
        """The version already trained from this exact data, contract, params and code, if any."""
        for version in self._versions():
            if version.tags.get(TAG_TRAINING_KEY) == key:
                return self._describe(version)
        return None

    @_translated
    def recorded_salt_ids(self, read_specs: bool = False) -> list[tuple[str, str]]:
        """``(version, privacy salt id)`` of every version tokens were keyed for, oldest first: its
        tag, or with ``read_specs`` its feature spec when it has no tag (a download per version)."""
        found: list[tuple[str, str | None]] = []
        for version in self._versions():
            number, recorded = str(version.version), (version.tags or {}).get(TAG_SALT_ID)
            if recorded is None and read_specs:
                with contextlib.suppress(KeyError):  # a version logged without a spec
                    recorded = self.feature_spec(number).salt_id
            found.append((number, recorded))
        return sorted(((number, sid) for number, sid in found if sid), key=lambda pair: int(pair[0]))

    def _versions(self) -> Iterable[ModelVersion]:
        return self.client.search_model_versions(f"name='{self.model_name}'")

    @_translated
    def versions(self) -> list[ModelVersionInfo]:
        """Every registered version of the model, oldest first, with its aliases (a search of versions
        does not return them: each alias is read on its own)."""
        held: dict[str, list[str]] = {}
        for alias in ALIASES:
            info = self.by_alias(alias)
            if info is not None:
                held.setdefault(info.version, []).append(alias)
        found = [self._describe(v) for v in self._versions()]
        found = [replace(info, aliases=tuple(held.get(info.version, ()))) for info in found]
        return sorted(found, key=lambda info: int(info.version))

    @_translated
    def recent_versions(self, limit: int) -> list[ModelVersionInfo]:
        """The newest ``limit`` versions and every version an alias holds, newest first, with aliases."""
        held: dict[str, list[str]] = {}
        holders: dict[str, ModelVersionInfo] = {}
        for alias in ALIASES:
            info = self.by_alias(alias)
            if info is not None:
                held.setdefault(info.version, []).append(alias)
                holders[info.version] = info
        newest = self.client.search_model_versions(
            f"name='{self.model_name}'", max_results=limit, order_by=["version_number DESC"]
        )
        found = {**{str(v.version): self._describe(v) for v in newest}, **holders}
        described = [replace(info, aliases=tuple(held.get(number, ()))) for number, info in found.items()]
        return sorted(described, key=lambda info: -int(info.version))

    @_translated
    def runs(self, experiment: str, limit: int = 1000) -> list[TrackedRun]:
        """The newest ``limit`` runs of an experiment (none when it does not exist yet), oldest first."""
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return []
        newest = self.client.search_runs(
            [found.experiment_id], max_results=limit, order_by=["attributes.start_time DESC"]
        )
        return [
            TrackedRun(
                run_id=str(run.info.run_id),
                name=str(run.info.run_name or ""),
                started=_moment(run.info.start_time),
                ended=None if run.info.end_time is None else _moment(run.info.end_time),
                status=str(run.info.status),
                metrics=dict(run.data.metrics),
                tags=dict(run.data.tags),
            )
            for run in reversed(newest)
        ]

    @_translated
    def metric_history(self, run_id: str, key: str) -> list[tuple[float, float]]:
        """A metric's values over a run: (seconds since its first value, value)."""
        history = sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        if not history:
            return []
        first = history[0].timestamp
        return [((m.timestamp - first) / 1000.0, float(m.value)) for m in history]

    @_translated
    def by_alias(self, alias: str) -> ModelVersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as error:
            _raise_unless_absent(error)
            return None
        return self._describe(version)

    @_translated
    def by_version(self, version: str) -> ModelVersionInfo:
        return self._describe(self.client.get_model_version(self.model_name, version))

    @_translated
    def has_version(self, version: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(self.model_name, version)
        except MlflowException as error:
            _raise_unless_absent(error)
            return False
        return True

    @_translated
    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    @_translated
    def delete_alias(self, alias: str) -> None:
        """Idempotent: an absent alias is fine; anything else (no permission, outage) is an error."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model_alias(self.model_name, alias)
        except MlflowException as error:
            _raise_unless_absent(error)

    @_translated
    def tag_version(self, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)

    @_translated
    def load(self, version: str) -> tuple[xgb.Booster, FeatureSpec]:
        """The native booster of a version and the feature spec it was trained with."""
        import mlflow.xgboost
        from mlflow.models import get_model_info

        uri = f"models:/{self.model_name}/{version}"
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        booster = mlflow.xgboost.load_model(uri)
        metadata = get_model_info(uri).metadata or {}
        return booster, FeatureSpec.from_dict(metadata["feature_spec"])

    @_translated
    def feature_spec(self, version: str) -> FeatureSpec:
        """The feature spec a version was trained with (its metadata only: the booster stays unloaded)."""
        import mlflow
        from mlflow.models import get_model_info

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        metadata = get_model_info(f"models:/{self.model_name}/{version}").metadata or {}
        return FeatureSpec.from_dict(metadata["feature_spec"])

    @_translated
    def load_document(self, run_id: str, path: str) -> dict[str, Any]:
        """A JSON document logged with a run (the evidence bundle, the contract, the settings)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        document: dict[str, Any] = mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
        return document

    @_translated
    def model_file(self, version: str, directory: Path) -> Path:
        """Download a version's native model file (``model.ubj``) into ``directory``."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{self.model_name}/{version}", dst_path=str(directory)
        )
        return Path(local) / "model.ubj"

    def _describe(self, version: ModelVersion) -> ModelVersionInfo:
        run_metrics: dict[str, float] = {}
        if version.run_id:
            data = self.client.get_run(version.run_id).data
            run_metrics = {
                key.removeprefix(HOLDOUT_PREFIX): value
                for key, value in data.metrics.items()
                if key.startswith(HOLDOUT_PREFIX)
            }
        tags = dict(version.tags or {})
        contract = None
        if TAG_CONTRACT_NAME in tags:
            contract = {"name": tags[TAG_CONTRACT_NAME], "version": int(tags.get(TAG_CONTRACT_VERSION, "0"))}
        aliases = tuple(alias for alias in (version.aliases or []) if alias in ALIASES)
        return ModelVersionInfo(
            version=str(version.version),
            run_id=str(version.run_id),
            metrics=run_metrics,
            data_md5=tags.get(TAG_DATA_MD5),
            contract=contract,
            training_key=tags.get(TAG_TRAINING_KEY),
            aliases=aliases,
            tags=tags,
        )


@dataclass(frozen=True)
class TrackedRun:
    """What the dashboard reads of one MLflow run."""

    run_id: str
    name: str
    started: dt.datetime
    ended: dt.datetime | None
    status: str
    metrics: dict[str, float]
    tags: dict[str, str]


def _moment(milliseconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(milliseconds / 1000.0, tz=dt.UTC)


def _raise_unless_absent(error: Exception) -> None:
    """MLflow says "not found" with these codes; anything else (401/403, an outage) must not read as
    "no such model": a flow would then see no champion and skip the comparison."""
    if getattr(error, "error_code", None) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
        raise error
