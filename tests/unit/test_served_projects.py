"""A worker serves only the projects under the roots the operator listed (team stack)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrain.adapters.environment import SERVED_PROJECTS, resolve_runtime
from retrain.domain.errors import ProjectNotServed
from retrain.stack import StackConfig, worker_env
from tests.unit.test_compose import KEYS


def test_a_project_outside_the_served_roots_is_refused_before_anything_resolves(tmp_path: Path):
    served, elsewhere = tmp_path / "served", tmp_path / "elsewhere"
    env = {SERVED_PROJECTS: os.pathsep.join([str(served), str(tmp_path / "other-root")])}
    assert resolve_runtime(env, served).project_dir == served.resolve()
    assert resolve_runtime(env, served / "team" / "project").project_dir == (served / "team" / "project").resolve()
    with pytest.raises(ProjectNotServed, match="serves only projects under"):
        resolve_runtime(env, elsewhere)
    with pytest.raises(ProjectNotServed):  # a sibling whose name starts like a root is not inside it
        resolve_runtime(env, tmp_path / "served-evil")
    with pytest.raises(ProjectNotServed):  # .. cannot climb out of a root
        resolve_runtime(env, served / ".." / "elsewhere")


def test_without_the_setting_every_project_is_served(tmp_path: Path):
    assert resolve_runtime({}, tmp_path / "anywhere").project_dir == (tmp_path / "anywhere").resolve()


def test_the_worker_serves_the_operators_project_its_state_dir_and_the_listed_roots(tmp_path: Path):
    env = {"RETRAIN_STACK_PROJECTS": os.pathsep.join([str(tmp_path / "team")])}
    config = StackConfig.from_env(tmp_path / "state", "pool", env, project_dir=tmp_path / "repo")
    served = worker_env(config, KEYS)[SERVED_PROJECTS].split(os.pathsep)
    assert served == [str((tmp_path / name).resolve()) for name in ("repo", "state", "team")]
