"""Where things are at run time: project, state directory and service locations.

params.yaml says *what* to train; the environment says *where* the services are, so the same
project runs on a laptop (embedded defaults under ``RETRAIN_HOME``) and on a team stack (service
URIs in the environment) without an edit. Nothing here imports a heavy library.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from retrain.domain.encryption import SSE_S3_ONLY, S3Encryption, s3_encryption

#: Telemetry and update checks off: tests and CI have no network, and users did not ask for it.
QUIET_ENVIRONMENT: Mapping[str, str] = {
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow writes "🏃 View run … at: URL" to stdout when a run on a tracking server ends, into the
    # middle of `--json` output; Retrain prints its own links where they help.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


@dataclass(frozen=True)
class Runtime:
    """Resolved locations for one process."""

    project_dir: Path
    state_dir: Path
    mlflow_tracking_uri: str
    mlflow_artifact_location: str | None
    dvc_remote_url: str
    dvc_remote_endpoint: str | None
    prefect_home: Path
    ledger_url: str
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    dask_scheduler: str | None = None  # RETRAIN_DASK_SCHEDULER: where model.engine dask trains
    #: How objects written to S3 (DVC remote, MLflow artifacts) are encrypted: RETRAIN_S3_KMS_KEY_ID
    s3_encryption: S3Encryption = SSE_S3_ONLY

    @property
    def params_path(self) -> Path:
        return self.project_dir / "params.yaml"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def validation_cache_dir(self) -> Path:
        """Contract verdicts by content (:mod:`retrain.adapters.validation_cache`)."""
        return self.state_dir / "validation-cache"

    @property
    def embedded_mlflow(self) -> bool:
        return self.mlflow_tracking_uri.startswith("sqlite:///") and str(self.state_dir) in self.mlflow_tracking_uri


SERVED_PROJECTS = "RETRAIN_SERVED_PROJECTS"
#: The Dask scheduler (``tcp://host:8786``) that ``model.engine: dask`` trains and validates on.
DASK_SCHEDULER = "RETRAIN_DASK_SCHEDULER"
#: A KMS key (id, ARN or alias) for SSE-KMS on every object written to S3; unset: SSE-S3 (AES256).
S3_KMS_KEY_ID = "RETRAIN_S3_KMS_KEY_ID"


def served_roots(env: Mapping[str, str]) -> list[Path]:
    """The directories under which a worker runs projects (``RETRAIN_SERVED_PROJECTS``, path-separated)."""
    return [Path(item).resolve() for item in env.get(SERVED_PROJECTS, "").split(os.pathsep) if item.strip()]


def check_served_project(project: Path, env: Mapping[str, str]) -> None:
    """On a worker that serves listed projects only, refuse any other project directory.

    A run's ``project_dir`` comes from whoever starts it (a custom run in the UI). Its params name the
    registered model and its ``reviewers/`` the keys that may approve, so a directory a person wrote
    could list themselves as reviewer of the real model. The operator lists the roots at
    ``retrain stack up``; a run naming a project outside them fails before any work.
    """
    roots = served_roots(env)
    if roots and not any(project == root or root in project.parents for root in roots):
        from retrain.domain.errors import ProjectNotServed

        raise ProjectNotServed(
            f"this worker serves only projects under {', '.join(str(root) for root in roots)}; "
            f"{project} is not one of them (the operator adds roots with RETRAIN_STACK_PROJECTS at `retrain stack up`)"
        )


def resolve_runtime(env: Mapping[str, str] | None = None, project_dir: Path | None = None) -> Runtime:
    """Read locations from the environment, falling back to embedded defaults under the state dir."""
    env = os.environ if env is None else env
    project = (project_dir or Path(env.get("RETRAIN_PROJECT", "."))).resolve()
    check_served_project(project, env)
    state = Path(env.get("RETRAIN_HOME", project / ".retrain")).resolve()
    tracking = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"
    embedded_artifacts = (state / "mlflow" / "artifacts").as_uri()
    artifacts = env.get("RETRAIN_MLFLOW_ARTIFACTS") or (None if "MLFLOW_TRACKING_URI" in env else embedded_artifacts)
    return Runtime(
        project_dir=project,
        state_dir=state,
        mlflow_tracking_uri=tracking,
        mlflow_artifact_location=artifacts,
        dvc_remote_url=env.get("RETRAIN_DVC_REMOTE") or str(state / "dvc-remote"),
        dvc_remote_endpoint=env.get("RETRAIN_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or None,
        prefect_home=Path(env.get("PREFECT_HOME", state / "prefect")),
        ledger_url=env.get("RETRAIN_LEDGER_URL") or f"sqlite:///{state / 'ledger.db'}",
        mlflow_ui_url=(
            env.get("RETRAIN_MLFLOW_UI_URL")
            or (tracking if tracking.startswith(("http://", "https://")) else "http://127.0.0.1:5000")
        ).rstrip("/"),
        dask_scheduler=env.get(DASK_SCHEDULER, "").strip() or None,
        s3_encryption=s3_encryption(env.get(S3_KMS_KEY_ID)),
    )


def apply_process_defaults(runtime: Runtime, env: MutableMapping[str, str] | None = None) -> None:
    """Set quiet, embedded defaults for this process before Prefect/MLflow/GX are imported.

    Only defaults: anything the user exported wins. Prefect reads PREFECT_HOME when it is first
    imported, so this must run before any ``import prefect``.
    """
    env = os.environ if env is None else env
    for key, value in QUIET_ENVIRONMENT.items():
        env.setdefault(key, value)
    env.setdefault("PREFECT_HOME", str(runtime.prefect_home))
    if runtime.dvc_remote_endpoint:  # one S3 endpoint (MinIO, moto) for DVC and MLflow artifacts alike
        env.setdefault("MLFLOW_S3_ENDPOINT_URL", runtime.dvc_remote_endpoint)
    # Pin the state dir: flows started from here on another project dir (the demo's workspace) share it.
    env.setdefault("RETRAIN_HOME", str(runtime.state_dir))
    runtime.state_dir.mkdir(parents=True, exist_ok=True)
