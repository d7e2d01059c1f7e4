"""DVC adapter: the project is a DVC repo, and each run's training snapshot is a DVC stage output.

The flow writes the snapshot itself (after validating every batch in Prefect tasks), then records it
with the equivalent of ``dvc commit training_set``: DVC hashes the stage's deps and outs into
``dvc.lock`` and the cache without re-running the stage's command, and ``push`` sends the output to
the remote. The remote is configured in ``.dvc/config.local`` (never committed), because where data
lives is a property of the machine or team, not of the project. DVC is imported inside functions:
it is heavy, and the CLI must start instantly.

Errors: every DVC failure leaves this module as a :class:`DataStoreError`. The subclasses say that
retrying cannot help (:class:`DataStoreConfigError`: the project or its DVC configuration is wrong;
:class:`DataMissingError`: the data is in neither the cache nor the remote); a plain
``DataStoreError`` is transient (remote unreachable, DVC lock held by another process).
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

import yaml

from retrain.domain.encryption import SSE_S3_ONLY, S3Encryption
from retrain.domain.errors import ServiceError

if TYPE_CHECKING:
    from dvc.repo import Repo

DEFAULT_REMOTE = "retrain"
_T = TypeVar("_T")


class DataStoreError(ServiceError):
    """A DVC operation failed; the message says what failed and what to do."""


class DataStoreConfigError(DataStoreError):
    """The project or its DVC setup is wrong (unknown stage, missing dep/out, no remote, bad URL).

    Retrying cannot help; fixing dvc.yaml, params.yaml, the data or the remote setting does.
    """

    exit_code: ClassVar[int] = 2
    transient: ClassVar[bool] = False


class DataMissingError(DataStoreError):
    """Data DVC needs is in neither the local cache nor the remote; retrying cannot bring it back."""

    exit_code: ClassVar[int] = 1
    transient: ClassVar[bool] = False


def _said(error: BaseException) -> str:
    """An error's text on one line, without a final period, to embed in a sentence of ours."""
    return " ".join(str(error).split()).rstrip(".")


def _is_git_toplevel(root: Path) -> bool:
    """DVC is initialised at the top of a git work tree (a sub-directory would need ``--subdir``)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], check=False, cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and Path(done.stdout.strip()).resolve() == root.resolve()


# DVC's Python API resolves stage names, targets and its stage cache from the working directory
# (an absolute 'dvc.yaml:stage' target still fails with "path '<cwd>' is outside of DVC repo"), so
# every operation runs inside the repo; the lock keeps two threads of this process from moving the
# cwd under each other. Other threads of the process must not rely on the cwd while DVC runs.
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
            raise DataStoreConfigError(f"{root} is not a usable DVC repo ({error}); run `dvc init` there") from error
        try:
            yield repo
        finally:
            repo.close()


def _permanent_errors() -> tuple[type[Exception], ...]:
    """DVC errors that give the same answer on every try: configuration, unknown targets, bad templates."""
    from dvc.config import ConfigError
    from dvc.exceptions import InvalidArgumentError, NoOutputOrStageError, NotDvcRepoError
    from dvc.parsing import ResolveError
    from dvc.stage.exceptions import StageFileDoesNotExistError, StageNotFound

    return (
        ConfigError,
        InvalidArgumentError,
        NoOutputOrStageError,
        NotDvcRepoError,
        ResolveError,
        StageFileDoesNotExistError,
        StageNotFound,
    )


def _transport_errors() -> tuple[type[Exception], ...]:
    """What a push or pull to a remote can raise: DVC's own errors, local I/O, and S3 client errors."""
    from dvc.exceptions import DvcException

    errors: list[type[Exception]] = [DvcException, OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - botocore comes with dvc-s3
        return tuple(errors)
    return (*errors, BotoCoreError, ClientError)


def ensure_dvc_repo(root: Path) -> None:
    """Make ``root`` a DVC repo (it must already be a git repo) with telemetry and update checks off.

    Safe to call on every run: ``dvc init`` only happens when ``.dvc`` is missing, and the two
    settings are rewritten each time so a hand-edited config cannot turn telemetry back on.
    """
    _quiet_dvc()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        if not _is_git_toplevel(root):
            raise DataStoreConfigError(
                f"{root} is not a git repository (or not its top directory); DVC versions data alongside git. "
                "Run `git init` there (or clone the project) and try again."
            )
        try:
            with _CWD_LOCK, contextlib.chdir(root):
                Repo.init(str(root))
        except DvcException as error:
            raise DataStoreConfigError(f"cannot initialise DVC in {root}: {error}") from error
    try:
        with _open(root) as repo, repo.config.edit("repo") as config:
            config["core"]["analytics"] = False
            config["core"]["check_update"] = False
    except DvcException as error:
        raise DataStoreConfigError(f"cannot write {root / '.dvc' / 'config'}: {error}") from error


def _remote_url(url: str) -> str:
    """A local remote becomes an existing absolute directory (DVC reads relative ones from ``.dvc/``)."""
    if "://" in url:
        return url
    path = Path(url).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataStoreConfigError(
            f"cannot create the DVC remote directory {path}: {error}. Set RETRAIN_DVC_REMOTE to a writable place."
        ) from error
    return str(path)


def configure_remote(
    root: Path,
    url: str,
    *,
    endpoint_url: str | None = None,
    encryption: S3Encryption = SSE_S3_ONLY,
    name: str = DEFAULT_REMOTE,
) -> None:
    """Make ``url`` the default remote in the local (uncommitted) config; credentials never go here.

    ``url`` is a local directory (created) or ``s3://bucket/prefix``; ``endpoint_url`` points S3 at
    MinIO or moto. Credentials come from boto's standard chain (environment, profile, role). On S3,
    every object DVC pushes is encrypted at rest as ``encryption`` says (DVC's ``sse`` and
    ``sse_kms_key_id`` remote options; SSE-S3 unless a KMS key is named).
    The whole remote section is replaced, so switching remotes leaves no stale endpoint behind.
    """
    _quiet_dvc()
    from dvc.exceptions import DvcException

    remote: dict[str, str] = {"url": _remote_url(url)}
    if url.startswith("s3://"):
        remote.update(encryption.dvc_remote_options())
        if endpoint_url:
            remote["endpointurl"] = endpoint_url
    try:
        with _open(root) as repo, repo.config.edit("local") as config:
            config["remote"][name] = remote
            config["core"]["remote"] = name
    except DvcException as error:
        raise DataStoreConfigError(
            f"DVC refused the remote {url!r} for {root}: {_said(error)}. Use a local directory or an s3:// URL."
        ) from error


def output_md5(root: Path, stage: str) -> dict[str, str]:
    """``{output path: md5}`` of a stage, as recorded in dvc.lock (read as YAML: no DVC import)."""
    lock_path = root / "dvc.lock"
    if not lock_path.is_file():
        raise DataStoreError(f"{lock_path} does not exist: stage '{stage}' was never committed")
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    try:
        outs = lock["stages"][stage]["outs"]
    except (KeyError, TypeError) as error:
        raise DataStoreError(f"stage '{stage}' is not in {lock_path}: commit it first") from error
    return {Path(out["path"]).as_posix(): str(out["md5"]) for out in outs}


def _record(root: Path, what: str, action: Callable[[Repo], object]) -> None:
    """Run a local DVC write (commit, add): a held DVC lock or an I/O error may pass, the rest will not."""
    from dvc.exceptions import DvcException
    from dvc.lock import LockError

    try:
        with _open(root) as repo:
            action(repo)
    except (LockError, OSError) as error:
        raise DataStoreError(
            f"DVC could not record {what} in {root}: {_said(error)}. Another DVC process may hold the repo lock "
            "(.dvc/tmp/lock) or the disk is full; try again when it is free."
        ) from error
    except DvcException as error:
        raise DataStoreConfigError(
            f"DVC could not record {what} in {root}: {_said(error)}. "
            "Check that its deps and outs exist and that dvc.yaml and params.yaml agree."
        ) from error


def commit_stage(root: Path, stage: str) -> dict[str, str]:
    """Record the stage's current deps and outs in dvc.lock and the cache, without running its command.

    This is ``dvc commit --force <stage>``: force because DVC otherwise asks for confirmation when
    deps or outs changed (and refuses without a terminal). Unchanged data is cheap: DVC's state db
    (keyed by inode, mtime and size) skips re-hashing, and the cache object is already there.
    """
    _record(root, f"stage '{stage}'", lambda repo: repo.commit(stage, force=True))
    return output_md5(root, stage)


def track(root: Path, path: str) -> str:
    """``dvc add`` a file or directory (relative to root); returns its md5 from the .dvc file."""
    _record(root, path, lambda repo: repo.add(path))
    record = yaml.safe_load((root / f"{path}.dvc").read_text(encoding="utf-8"))
    return str(record["outs"][0]["md5"])


def cached_object(root: Path, oid: str) -> Path:
    """Where the local DVC cache keeps the object ``oid`` (a file md5, or a directory's ``<md5>.dir``)."""
    with _open(root) as repo:
        return Path(repo.cache.local.oid_to_path(oid))


def _with_retries(action: str, attempt: int, retries: int, error: Exception, hint: str) -> None:
    if attempt >= retries:
        raise DataStoreError(
            f"DVC {action} failed after {retries + 1} attempts: {_said(error)}. {hint} "
            "Check the remote (RETRAIN_DVC_REMOTE, credentials, network) and run again to resume."
        ) from error
    time.sleep(backoff_seconds(attempt))


def backoff_seconds(attempt: int) -> float:
    """Wait before retry ``attempt + 1``: 1 s, 2 s, 4 s... at most 30 s (a remote that is back answers soon)."""
    return float(min(2**attempt, 30))


def _retrying(root: Path, action: str, retries: int, hint: str, operation: Callable[[Repo], _T]) -> _T:
    """Run a remote operation with bounded exponential backoff (1 s, 2 s, 4 s...) on transient errors."""
    permanent, transport = _permanent_errors(), _transport_errors()
    for attempt in range(retries + 1):
        try:
            with _open(root) as repo:
                return operation(repo)
        except permanent as error:
            raise DataStoreConfigError(
                f"DVC cannot {action} in {root}: {_said(error)}. This is a project or remote configuration problem "
                "(stage name, dvc.yaml/params.yaml, RETRAIN_DVC_REMOTE); retrying cannot help."
            ) from error
        except transport as error:
            _with_retries(action, attempt, retries, error, hint)
    raise AssertionError("unreachable")  # pragma: no cover


def _dvc_target(root: Path, target: str) -> str:
    """A ``dvc add``-ed path as its ``.dvc`` file: DVC then reads that one file, instead of loading
    every stage of dvc.yaml (with its params) to learn whether a stage writes the path, which cost
    most of an ingest's push. A stage name, or a path without a ``.dvc`` file, is left as it is."""
    pointer = root / f"{target}.dvc"
    return f"{target}.dvc" if pointer.is_file() else target


def _require_on_remote(repo: Repo, target: str) -> None:
    """DVC's push silently skips data missing from the cache; a push must not report success then."""
    status = repo.status(targets=[target], cloud=True)
    absent = sorted(path for path, state in status.items() if state in ("new", "missing"))
    if absent:
        raise DataMissingError(
            f"DVC push of '{target}' left {', '.join(absent)} off the remote: the data is not in the local "
            "cache (was .dvc/cache cleared after the commit?). Write the data again, commit, then push."
        )


def push(root: Path, stage: str, *, retries: int = 3) -> int:
    """Push a stage's outputs (or a ``dvc add``-ed path) to the default remote; returns files sent.

    Returns 0 when the remote already holds everything. Afterwards the remote is checked to hold
    every output, so a success means the data is really there.
    """
    sent = 0

    target = _dvc_target(root, stage)

    def attempt(repo: Repo) -> int:
        nonlocal sent
        sent += int(repo.push(targets=[target]))
        _require_on_remote(repo, target)
        return sent

    return _retrying(root, "push", retries, "The local DVC cache is intact.", attempt)


def pull(root: Path, stage: str, *, retries: int = 3) -> None:
    """Restore a stage's outputs into the workspace from the local cache, else from the remote.

    The workspace copy is overwritten (``--force``): the data recorded in dvc.lock is the truth.
    """
    from dvc.exceptions import CheckoutError

    target = _dvc_target(root, stage)

    def attempt(repo: Repo) -> None:
        try:
            repo.pull(targets=[target], force=True)
        except CheckoutError as error:
            missing = ", ".join(str(target) for target in error.target_infos)
            raise DataMissingError(
                f"DVC cannot restore {missing} ('{stage}') in {root}: the data is in neither the local cache "
                "nor the remote. Push it from the machine that produced it, or point RETRAIN_DVC_REMOTE at "
                "the remote that holds it."
            ) from error

    _retrying(root, "pull", retries, "The workspace was left as it was.", attempt)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # DVC's content address, not a security hash
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """The md5 under which DVC caches this file."""
    return _md5_of(path)


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
            except FileNotFoundError as error:
                raise DataMissingError(
                    f"data with md5 {md5} is neither in the DVC cache of {root} nor on its remote; "
                    "point RETRAIN_DVC_REMOTE at the remote the run pushed to"
                ) from error
            except transport as error:
                raise DataStoreError(
                    f"data with md5 {md5} is not in the DVC cache of {root} and its remote failed: {error}"
                ) from error
            source = "remote"
    if _md5_of(destination) != md5:
        destination.unlink()
        raise DataStoreError(f"the {source} copy of md5 {md5} is damaged: its content does not hash to {md5}")
    return source


def tracked_files(root: Path, path: str) -> dict[str, str] | None:
    """``{file name: md5}`` of a ``dvc add``-ed directory as its ``.dvc`` pointer records it (the
    directory manifest in the local cache); None when the directory is not tracked or its manifest is
    not in the cache (read as JSON: no DVC import)."""
    import json

    pointer = root / f"{path}.dvc"
    if not pointer.is_file():
        return None
    record = yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}
    oid = str(record.get("outs", [{}])[0].get("md5", ""))
    manifest = root / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]
    if not oid.endswith(".dir") or not manifest.is_file():
        return None
    return {str(item["relpath"]): str(item["md5"]) for item in json.loads(manifest.read_text(encoding="utf-8"))}


def remove_objects(root: Path, md5s: list[str], *, retries: int = 3) -> dict[str, list[str]]:
    """Delete the objects ``md5s`` from the local DVC cache and from the default remote (a local
    directory or S3), by content address; returns, per md5, where it was found and deleted ("cache",
    "remote"; empty when it was already gone). Safe to repeat: an absent object is skipped.

    This is the precise form of ``dvc gc --cloud``: gc deletes whatever the current workspace (or the
    git revisions named) does not use, which would take the champion's snapshot too; here only the
    objects a purge decided on go, and nothing else.
    """
    where: dict[str, list[str]] = {md5: [] for md5 in md5s}

    def attempt(repo: Repo) -> dict[str, list[str]]:
        remote = repo.cloud.get_remote_odb()
        for md5 in md5s:
            cached = Path(repo.cache.local.oid_to_path(md5))
            if cached.is_file():
                cached.unlink()
                where[md5].append("cache")
            stored = remote.oid_to_path(md5)
            if remote.fs.exists(stored):
                remote.fs.remove(stored)
                where[md5].append("remote")
        return where

    return _retrying(root, "delete objects", retries, "Deleting again skips what is already gone.", attempt)


def stored_objects(root: Path, md5s: list[str], *, retries: int = 3) -> set[str]:
    """Which of ``md5s`` the local DVC cache or the default remote still holds."""

    def attempt(repo: Repo) -> set[str]:
        remote = repo.cloud.get_remote_odb()
        return {
            md5
            for md5 in md5s
            if Path(repo.cache.local.oid_to_path(md5)).is_file() or remote.fs.exists(remote.oid_to_path(md5))
        }

    return _retrying(root, "look for objects", retries, "Nothing was changed.", attempt)
