"""Self-contained project workspaces (a git + DVC repo with params, contract and stage files).

The demo and the integration tests run the real flow in such a copy, so they never touch the user's
own project tree or data, and start from a known state every time.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from retrain.adapters import datastore

PROJECT_FILES = ("params.yaml", "dvc.yaml")
PROJECT_DIRS = ("data_contracts",)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: nested mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def write_params(project: Path, overrides: Mapping[str, Any]) -> None:
    """Apply overrides to a workspace's params.yaml (a data scientist editing a knob)."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(merge(params, overrides), sort_keys=False), encoding="utf-8")


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True)


def commit_all(project: Path, message: str) -> None:
    """Commit every change in a workspace (e.g. a reviewer's public key the demo adds)."""
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", message)


def _keys_dir(source: Path) -> str | None:
    """The project's reviewers' key directory (approval.keys_dir), if it has one to copy."""
    params = yaml.safe_load((source / "params.yaml").read_text(encoding="utf-8")) or {}
    keys_dir = (params.get("approval") or {}).get("keys_dir")
    return str(keys_dir) if keys_dir and (source / str(keys_dir)).is_dir() else None


def create_workspace(source: Path, target: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """A fresh copy of the project's configuration at ``target`` (wiped first), as a git + DVC repo."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy2(source / name, target / name)
    for name in PROJECT_DIRS:
        shutil.copytree(source / name, target / name)
    keys_dir = _keys_dir(source)
    if keys_dir is not None:  # the reviewers' committed public keys come with the project
        shutil.copytree(source / keys_dir, target / keys_dir)
    if overrides:
        write_params(target, overrides)
    _git(target, "init", "-q", "-b", "main")
    _git(target, "config", "user.name", "retrain")
    _git(target, "config", "user.email", "retrain@localhost")
    datastore.ensure_dvc_repo(target)
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "workspace created by retrain")
    return target
