"""Where people open what a run made: MLflow and Prefect UI pages, and artifact files, as plain strings.

Pure string building, so every link a report or a notice carries is built one way and unit-tested
without a server. A link needs the UI's base URL; where none is known the callers show the id (or,
for a logged file, where it is stored) as plain text instead of a link that leads nowhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlparse


def _base(ui_url: str) -> str:
    return ui_url.rstrip("/")


def mlflow_run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI (params, metrics, artifacts)."""
    return f"{_base(ui_url)}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_artifact_url(ui_url: str, experiment_id: str, run_id: str, path: str) -> str:
    """The run's artifact page with ``path`` opened (the UI shows a PNG in place)."""
    return f"{mlflow_run_url(ui_url, experiment_id, run_id)}/artifacts/{path}"


def mlflow_version_url(ui_url: str, model_name: str, version: str) -> str:
    """A registered model version's page (aliases, tags, description, source run)."""
    return f"{_base(ui_url)}/#/models/{model_name}/versions/{version}"


def prefect_flow_run_url(ui_url: str | None, flow_run_id: str) -> str | None:
    """The flow run's page in the Prefect UI; None without a UI or for a run Prefect does not know (a
    direct call outside a flow is named ``local``, not a UUID)."""
    if not ui_url:
        return None
    try:
        uuid.UUID(flow_run_id)
    except ValueError:
        return None
    return f"{_base(ui_url)}/runs/flow-run/{flow_run_id}"


def local_path(artifact_uri: str) -> str | None:
    """The file system path behind a ``file:`` artifact URI (the embedded default stores artifacts
    there), else None: an S3 or proxied (``mlflow-artifacts:``) location is no path a reader opens."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "" and artifact_uri.startswith("/"):
        return artifact_uri
    return None


@dataclass(frozen=True)
class FigureRef:
    """A figure logged to a run, as a report names it: the artifact path in the run, its page in the
    MLflow UI (when a UI URL is known) and where the file itself is (when no link can say it)."""

    path: str
    url: str | None = None
    location: str | None = None


def figure_refs(
    paths: Sequence[str], ui_url: str | None, experiment_id: str, run_id: str, artifact_uri: str
) -> tuple[FigureRef, ...]:
    """What a report lists of the figures at ``paths`` of a run whose artifacts are at ``artifact_uri``.

    A Prefect markdown artifact cannot carry a local image, so each figure is linked to its page in
    the MLflow UI. Where the artifacts are local files (the embedded default, whose UI may not be
    running) the file's path is given too; without a UI URL, the artifact URI is all there is to give.
    """
    local = local_path(artifact_uri)
    root = local if local is not None else artifact_uri.rstrip("/")
    refs = []
    for path in paths:
        url = mlflow_artifact_url(ui_url, experiment_id, run_id, path) if ui_url else None
        location = f"{root}/{path}" if local is not None or url is None else None
        refs.append(FigureRef(path, url, location))
    return tuple(refs)


def markdown_link(text: str, url: str | None) -> str:
    """``text`` as inline code, linked to ``url`` when there is one (an id stays copyable either way)."""
    code = f"`{text}`"
    return f"[{code}]({url})" if url else code
