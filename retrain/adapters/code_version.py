"""Which code trained a model: the package version and, in a git checkout, the commit."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


@lru_cache(maxsize=1)
def describe() -> str:
    """``retrain==X`` plus ``+g<commit>`` (and ``.dirty`` for uncommitted code) when known."""
    try:
        version = metadata.version("retrain")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    source = Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "--short=12", "HEAD"], source)
    if commit is None:
        return f"retrain=={version}"
    dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", "retrain", "tasks", "flows"], source)
    return f"retrain=={version}+g{commit}{'.dirty' if dirty else ''}"


EVIDENCE_LIBRARIES = (
    "xgboost",
    "numpy",
    "pandas",
    "scikit-learn",
    "pyarrow",
    "mlflow",
    "dvc",
    "great-expectations",
    "prefect",
)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape or record a model, for the evidence bundle."""
    import platform

    versions = {"python": platform.python_version()}
    for name in EVIDENCE_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
