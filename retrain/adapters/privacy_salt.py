"""The privacy salt: the secret that keys the tokens of sensitive columns (:mod:`retrain.domain.privacy`).

Read from ``RETRAIN_PRIVACY_SALT``, else from ``$RETRAIN_HOME/privacy/salt`` (directory 0700, file
0600). Only a training that has a sensitive column to tokenise creates the file, and only while no
registered version records a salt id (or on purpose: ``--new-privacy-salt``, also ``retrain fit``'s);
everything else reads, and says where it looked when there is none. The file appears whole (written
aside, then linked into place) and is never replaced.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from retrain.domain.privacy import SALT_ENV, PrivacyError, Tokeniser, salt_id, training_salt_problem

SALT_BYTES = 32


def salt_path(state_dir: Path) -> Path:
    return state_dir / "privacy" / "salt"


def read_salt(state_dir: Path, env: Mapping[str, str] | None = None) -> bytes | None:
    """The salt from the environment or the state dir; None when neither holds one. Never creates it."""
    env = os.environ if env is None else env
    value = env.get(SALT_ENV, "").strip()
    if value:
        return value.encode()
    path = salt_path(state_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if not text:
        raise _empty(path)
    return text.encode()


def _empty(path: Path) -> PrivacyError:
    return PrivacyError(
        f"the privacy salt file {path} is empty (a creation was interrupted, or it was truncated): restore "
        f"the salt the models were trained with into it (or set {SALT_ENV}); delete the empty file only if "
        "no model was ever trained under a salt here"
    )


def require_salt(state_dir: Path, env: Mapping[str, str] | None = None) -> bytes:
    salt = read_salt(state_dir, env)
    if salt is None:
        raise PrivacyError(
            f"sensitive columns are tokenised with a privacy salt, and there is none: set {SALT_ENV} "
            f"or restore {salt_path(state_dir)} (the salt the models were trained with)"
        )
    return salt


def create_salt(state_dir: Path, env: Mapping[str, str] | None = None) -> bytes:
    """The salt, written to the state dir (0700/0600) when neither the environment nor the file holds one."""
    existing = read_salt(state_dir, env)
    if existing is not None:
        return existing
    path = salt_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    text = secrets.token_hex(SALT_BYTES)
    # written whole to a temporary 0600 file beside it, then linked into place: the salt file appears
    # complete or not at all, and a link never replaces a salt another process created meanwhile
    descriptor, temporary = tempfile.mkstemp(prefix=".salt-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _written_by_another(path)
    finally:
        os.unlink(temporary)
    return text.encode()


def _written_by_another(path: Path, wait_seconds: float = 2.0) -> bytes:
    """The salt another creator put in place first (waiting briefly for one that writes in place)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        text = path.read_text(encoding="ascii").strip()
        if text:
            return text.encode()
        if time.monotonic() >= deadline:
            raise _empty(path)
        time.sleep(0.05)


def tokeniser(state_dir: Path, columns: tuple[str, ...], *, create: bool = False) -> Tokeniser:
    """The tokeniser of ``columns`` under this environment's salt (none needed when there are none)."""
    if not columns:
        return Tokeniser.none()
    salt = create_salt(state_dir) if create else require_salt(state_dir)
    return Tokeniser.of(salt, columns)


def training_tokeniser(
    state_dir: Path, columns: tuple[str, ...], recorded: Sequence[tuple[str, str]], *, new_salt: bool = False
) -> Tokeniser:
    """The tokeniser of a training: under the salt registered versions record (``(version, salt id)``),
    created only when none does, or on purpose (``new_salt``); else a clear error saying which to restore."""
    if not columns:
        return Tokeniser.none()
    salt = read_salt(state_dir)
    problem = training_salt_problem(
        None if salt is None else salt_id(salt), recorded, new_salt, str(salt_path(state_dir))
    )
    if problem is not None:
        raise PrivacyError(problem)
    return Tokeniser.of(salt if salt is not None else create_salt(state_dir), columns)
