"""The project's git history: commit a named list of files, and nothing else.

DVC keeps the data; git keeps the pointers to it (``data/*.dvc``, ``dvc.lock``). Until they are
committed, a checkout of the project cannot say which data a model was trained on. Only the paths
the caller names are staged and committed (never ``git add -A``): whatever else the user changed or
staged stays as it was, uncommitted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrain.domain.errors import InputError, RetrainError


class GitCommitError(RetrainError):
    """git refused the commit (no identity configured, a hook failed, the index is locked)."""


@dataclass(frozen=True)
class GitCommit:
    """What a commit request did: the commit (``sha`` None when nothing of the listed paths changed)."""

    sha: str | None
    message: str
    paths: tuple[str, ...]  # the listed paths the commit holds (changed ones only)

    @property
    def summary(self) -> str:
        """One line for the terminal and the log."""
        if self.sha is None:
            return "git: nothing to commit (the DVC pointers and dvc.lock are as git already has them)"
        return f"git: committed {self.sha[:12]} {self.message!r} ({', '.join(self.paths)})"


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise GitCommitError(f"git {args[0]} could not run in {root}: {error}") from error
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise GitCommitError(f"git {args[0]} failed in {root}: {' '.join(said[-3:]) or f'exit {done.returncode}'}")
    return done


def _lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.strip()]


def commit_paths(root: Path, paths: Sequence[str], message: str) -> GitCommit:
    """Commit the listed paths (relative to ``root``, the top of the work tree) that changed.

    A listed path that neither exists nor is tracked is skipped, and so is one that git ignores and
    does not track. A tracked path that was deleted is committed as deleted. Other staged changes
    stay staged and out of the commit (``git commit --only``).
    """
    inside = _git(root, "rev-parse", "--show-toplevel", check=False)
    if inside.returncode != 0 or Path(inside.stdout.strip()).resolve() != root.resolve():
        raise InputError(
            f"{root} is not the top of a git work tree: nothing can be committed there "
            "(run `git init` in the project, or leave out --commit / set git.commit: false)"
        )
    listed = sorted(set(paths))
    tracked = set(_lines(_git(root, "ls-files", "--", *listed))) if listed else set()
    present = [path for path in listed if (root / path).exists() or path in tracked]
    ignored = set(_lines(_git(root, "check-ignore", "--", *present, check=False))) if present else set()
    candidates = [path for path in present if path in tracked or path not in ignored]
    if candidates:
        _git(root, "add", "--", *candidates)
    changed = _lines(_git(root, "diff", "--cached", "--name-only", "--", *candidates)) if candidates else []
    if not changed:
        return GitCommit(None, message, ())
    _git(root, "commit", "-q", "--only", "-m", message, "--", *changed)
    sha = _git(root, "rev-parse", "HEAD").stdout.strip()
    return GitCommit(sha, message, tuple(changed))
