"""Self-contained project workspaces (a git + DVC repo with params, contract and stage files).

The demo and the integration tests run the real flow in such a copy, so they never touch the user's
own project tree or data, and start from a known state every time.
"""

from __future__ import annotations

import re
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


TEMPLATE_DIR_IN_PACKAGE = "_project"
"""Where a wheel carries the project's own params.yaml and dvc.yaml (pyproject's force-include)."""


def template_dir() -> Path:
    """The directory holding the reference ``params.yaml`` and ``dvc.yaml`` that ``retrain init`` starts from.

    A source checkout or an editable install has them at the project root, beside the ``retrain``
    package; a wheel carries copies inside the package (``retrain/_project``).
    """
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / TEMPLATE_DIR_IN_PACKAGE, package.parent):
        if all((candidate / name).is_file() for name in PROJECT_FILES):
            return candidate
    raise FileNotFoundError(f"no params.yaml and dvc.yaml beside or inside {package}: the installation is incomplete")


Path_ = tuple[str, ...]
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
_TRAILING = re.compile(r"\s+(#.*)$")


def _key_paths(lines: list[str]) -> list[tuple[int, Path_ | None]]:
    """Each line's key path (``("gate", "slices", "min_rows")``), or None for comments, blanks and list items."""
    stack: list[tuple[int, str]] = []
    paths: list[tuple[int, Path_ | None]] = []
    for line in lines:
        match = _KEY_LINE.match(line)
        if match is None or line.lstrip().startswith("#"):
            paths.append((len(line) - len(line.lstrip()), None))
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        paths.append((indent, tuple(key for _, key in stack)))
    return paths


def _template_comments(text: str) -> tuple[dict[Path_, list[str]], dict[Path_, str]]:
    """The comment lines above each key and the comment after it, by key path."""
    lines = text.splitlines()
    leading: dict[Path_, list[str]] = {}
    trailing: dict[Path_, str] = {}
    pending: list[str] = []
    for line, (_, path) in zip(lines, _key_paths(lines), strict=True):
        stripped = line.strip()
        if path is None:
            if stripped.startswith("#") or not stripped:
                pending.append(stripped)
            continue
        leading[path], pending = pending, []
        found = _TRAILING.search(_KEY_LINE.match(line)["rest"])  # type: ignore[index]
        if found:
            trailing[path] = found.group(1)
    return leading, trailing


class _Dumper(yaml.SafeDumper):
    """Short lists of scalars on one line (``[0, 1]``), everything else as blocks, list items indented."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    short = all(not isinstance(v, dict | list) for v in data) and len(str(data)) <= 60
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=short)


_Dumper.add_representer(list, _represent_list)


def render_params(params: Mapping[str, Any], template_text: str, comments: Mapping[Path_, str] | None = None) -> str:
    """``params`` as YAML carrying the template's comments: the file a user reads is as explained as ours.

    ``comments`` replaces (or adds) the comment after a key, e.g. why ``retrain init`` set a threshold.
    """
    leading, trailing = _template_comments(template_text)
    trailing.update(comments or {})
    dumped = yaml.dump(dict(params), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    lines = dumped.splitlines()
    out: list[str] = []
    for line, (indent, path) in zip(lines, _key_paths(lines), strict=True):
        if path is not None:
            if len(path) == 1 and out and leading.get(path, [""])[:1] != [""]:
                out.append("")
            out.extend((" " * indent + c) if c else "" for c in leading.get(path, []) if c or len(path) == 1)
        out.append(f"{line}  {trailing[path]}" if path is not None and path in trailing else line)
    return "\n".join(out) + "\n"


def git_toplevel(directory: Path) -> Path | None:
    """The top of the git work tree ``directory`` (or, not made yet, its nearest existing parent) is in,
    or None outside any."""
    directory = directory.resolve()
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    inside = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True, text=True, check=False
    )
    return Path(inside.stdout.strip()).resolve() if inside.returncode == 0 else None


def ensure_git_repo(project: Path) -> bool:
    """``git init`` the directory unless it is a work tree's top already; True when it was initialised."""
    if git_toplevel(project) == project.resolve():
        return False
    _git(project, "init", "-q", "-b", "main")
    return True
