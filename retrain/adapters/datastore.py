"""DVC adapter: the project is a DVC repo, and each run's training snapshot is a DVC stage output.

The flow writes the snapshot itself (after validating every batch in Prefect tasks), then records it
with the equivalent of ``dvc commit training_set``: DVC hashes the stage's deps and outs into
``dvc.lock`` and the cache without re-running the stage's command, and ``push`` sends the output to
the remote. The remote is configured in ``.dvc/config.local`` (never committed), because where data
lives is a property of the machine or team, not of the project. DVC is imported inside functions:
it is heavy, and the CLI must start instantly.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from dvc.repo import Repo

DEFAULT_REMOTE = "retrain"


class DataStoreError(RuntimeError):
    """A DVC operation failed; the message says what failed and what to do."""


class DataStoreConfigError(DataStoreError):
    """DVC is misconfigured (no remote, bad URL): retrying cannot help, fixing the configuration does."""


def _is_git_repo(root: Path) -> bool:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], check=False, cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


# DVC's Python API resolves stage names and paths from the working directory, so every operation
# runs inside the repo; the lock keeps two threads of this process from moving the cwd under each other.
_CWD_LOCK = threading.RLock()


def _quiet_dvc() -> None:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    import dvc.repo  # noqa: F401 - imported first: importing DVC configures its logger

    logging.getLogger("dvc").setLevel(logging.WARNING)  # DVC narrates every init and lock-file update


@contextmanager
def _open(root: Path) -> Iterator[Repo]:
    _quiet_dvc()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with _CWD_LOCK, contextlib.chdir(root):
        try:
            repo = Repo(str(root))
        except DvcException as error:
            raise DataStoreError(f"{root} is not a usable DVC repo ({error}); run `dvc init` there") from error
        try:
            yield repo
        finally:
            repo.close()


def ensure_dvc_repo(root: Path) -> None:
    """Make ``root`` a DVC repo (it must already be a git repo) with telemetry and update checks off."""
    _quiet_dvc()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        if not _is_git_repo(root):
            raise DataStoreError(
                f"{root} is not a git repository; DVC versions data alongside git. "
                "Run `git init` there (or clone the project) and try again."
            )
        try:
            with _CWD_LOCK, contextlib.chdir(root):
                Repo.init(str(root))
        except DvcException as error:
            raise DataStoreError(f"cannot initialise DVC in {root}: {error}") from error
    with _open(root) as repo, repo.config.edit("repo") as config:
        config["core"]["analytics"] = False
        config["core"]["check_update"] = False


def configure_remote(root: Path, url: str, *, endpoint_url: str | None = None, name: str = DEFAULT_REMOTE) -> None:
    """Make ``url`` the default remote in the local (uncommitted) config; credentials never go here."""
    if "://" not in url:
        try:
            Path(url).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataStoreError(
                f"cannot create the DVC remote directory {url}: {error}. Set RETRAIN_DVC_REMOTE to a writable place."
            ) from error
    remote: dict[str, str] = {"url": url}
    if endpoint_url and url.startswith("s3://"):
        remote["endpointurl"] = endpoint_url
    with _open(root) as repo, repo.config.edit("local") as config:
        config["remote"][name] = remote
        config["core"]["remote"] = name


def output_md5(root: Path, stage: str) -> dict[str, str]:
    """``{output path: md5}`` of a stage, as recorded in dvc.lock."""
    lock_path = root / "dvc.lock"
    if not lock_path.is_file():
        raise DataStoreError(f"{lock_path} does not exist: stage '{stage}' was never committed")
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    try:
        outs = lock["stages"][stage]["outs"]
    except KeyError as error:
        raise DataStoreError(f"stage '{stage}' is not in {lock_path}") from error
    return {Path(out["path"]).as_posix(): str(out["md5"]) for out in outs}


def commit_stage(root: Path, stage: str) -> dict[str, str]:
    """Record the stage's current deps and outs in dvc.lock and the cache, without running its command."""
    from dvc.exceptions import DvcException

    with _open(root) as repo:
        try:
            repo.commit(stage, force=True)
        except DvcException as error:
            raise DataStoreError(
                f"DVC could not record stage '{stage}' in {root}: {error}. "
                "Check that its deps and outs exist (see dvc.yaml and params.yaml)."
            ) from error
    return output_md5(root, stage)


def track(root: Path, path: str) -> str:
    """``dvc add`` a file or directory (relative to root); returns its md5 from the .dvc file."""
    from dvc.exceptions import DvcException

    with _open(root) as repo:
        try:
            repo.add(path)
        except DvcException as error:
            raise DataStoreError(f"DVC could not track {path} in {root}: {error}") from error
    record = yaml.safe_load((root / f"{path}.dvc").read_text(encoding="utf-8"))
    return str(record["outs"][0]["md5"])


def _transport_errors() -> tuple[type[Exception], ...]:
    """What a push or pull to a remote can raise: DVC's own errors, local I/O, and S3 client errors."""
    from dvc.exceptions import DvcException

    errors: list[type[Exception]] = [DvcException, OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - botocore comes with dvc-s3
        return tuple(errors)
    return (*errors, BotoCoreError, ClientError)


def _with_retries(action: str, attempt: int, retries: int, error: Exception) -> None:
    if attempt >= retries:
        raise DataStoreError(
            f"DVC {action} failed after {retries + 1} attempts: {error}. The local DVC cache is intact; "
            "check the remote (RETRAIN_DVC_REMOTE, credentials, network) and run the flow again to resume."
        ) from error
    time.sleep(min(2**attempt, 30))


def push(root: Path, stage: str, *, retries: int = 3) -> int:
    """Push a stage's outputs (or a ``dvc add``-ed path) to the default remote; returns files sent."""
    from dvc.config import ConfigError

    transport = _transport_errors()
    for attempt in range(retries + 1):
        try:
            with _open(root) as repo:
                return int(repo.push(targets=[stage]))
        except ConfigError as error:
            raise DataStoreConfigError(f"DVC cannot push from {root}: {error}") from error
        except transport as error:
            _with_retries("push", attempt, retries, error)
    raise AssertionError("unreachable")  # pragma: no cover


def pull(root: Path, stage: str, *, retries: int = 3) -> None:
    """Restore the stage's outputs into the workspace, from the cache or else the remote."""
    from dvc.config import ConfigError

    transport = _transport_errors()
    for attempt in range(retries + 1):
        try:
            with _open(root) as repo:
                repo.pull(targets=[stage], force=True)
            return
        except ConfigError as error:
            raise DataStoreConfigError(f"DVC cannot pull into {root}: {error}") from error
        except transport as error:
            _with_retries("pull", attempt, retries, error)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # DVC's content address, not a security hash
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def restore_by_md5(root: Path, md5: str, destination: Path) -> str:
    """Put the file with this DVC md5 at ``destination``: from the local cache, else from the remote.

    Returns where it came from ("cache" or "remote"). The bytes are checked against the md5, so a
    damaged cache or remote can never pass for the original data.
    """
    transport = _transport_errors()
    destination.parent.mkdir(parents=True, exist_ok=True)
    with _open(root) as repo:
        cached = Path(repo.cache.local.oid_to_path(md5))
        if cached.is_file():
            shutil.copyfile(cached, destination)
            source = "cache"
        else:
            try:
                remote = repo.cloud.get_remote_odb()
                remote.fs.get_file(remote.oid_to_path(md5), str(destination))
            except transport as error:
                raise DataStoreError(
                    f"data with md5 {md5} is neither in the DVC cache of {root} nor on the remote: {error}"
                ) from error
            source = "remote"
    if _md5_of(destination) != md5:
        destination.unlink()
        raise DataStoreError(f"the {source} copy of md5 {md5} is damaged: its content does not hash to {md5}")
    return source
