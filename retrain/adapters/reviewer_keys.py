"""Reviewers' key files: public keys committed in the project, private keys in each reviewer's home.

Public keys are ``<project>/<approval.keys_dir>/NAME.pub`` (OpenSSH ``ssh-ed25519`` lines), so adding
a reviewer or replacing a key is a change someone reviews. The run trusts only that directory, and
only inside its project: a symlink leading elsewhere is refused, and no setting or environment
variable adds a key from anywhere else.

Private keys never enter the project, Prefect or MLflow: ``retrain reviewer keygen`` writes one
0600 file (PKCS#8 PEM) outside the project, by default ``~/.config/retrain/keys/NAME.key``
(``RETRAIN_REVIEWER_KEY`` names another file). Errors name the file, never its content.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from retrain.domain.approval import format_public_key, normalise, parse_public_key, reviewers_without_keys
from retrain.domain.errors import ApprovalConfigError, ApprovalInputError
from retrain.domain.settings import ApprovalSettings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_ENV: Final = "RETRAIN_REVIEWER_KEY"


def keys_dir(project_dir: Path, policy: ApprovalSettings) -> Path:
    """The project's public-key directory; refused when it resolves outside the project."""
    root = project_dir.resolve()
    directory = (root / policy.keys_dir).resolve()
    if not directory.is_relative_to(root):
        raise ApprovalConfigError(
            f"approval.keys_dir '{policy.keys_dir}' leads outside the project ({directory}): "
            "reviewers' public keys must be committed in the project"
        )
    return directory


def public_key_path(project_dir: Path, policy: ApprovalSettings, reviewer: str) -> Path:
    return keys_dir(project_dir, policy) / f"{reviewer}.pub"


def load_reviewer_keys(project_dir: Path, policy: ApprovalSettings) -> dict[str, bytes]:
    """Every listed reviewer's public key, by normalised name: the start-up check of a training run.

    A missing or unreadable key is one ``ApprovalConfigError`` line naming the reviewer and the file,
    raised before any work, never found only when the run reaches the gate.
    """
    directory = keys_dir(project_dir, policy)
    keys: dict[str, bytes] = {}
    for name in policy.reviewers:
        path = directory / f"{name}.pub"
        if not path.resolve().is_relative_to(directory):
            raise ApprovalConfigError(f"{path} leads outside {directory}: a reviewer's key must be a file in it")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as error:
            raise ApprovalConfigError(f"reviewer '{name}': cannot read {path} ({type(error).__name__})") from None
        try:
            keys[normalise(name)] = parse_public_key(text)
        except ValueError as error:
            raise ApprovalConfigError(f"reviewer '{name}': {path}: {error}") from None
    missing = reviewers_without_keys(policy, keys)
    if missing:
        files = ", ".join(str(directory / f"{name}.pub") for name in missing)
        raise ApprovalConfigError(
            f"approval.reviewers lists {', '.join(missing)} without a public key ({files}): "
            f"each runs `retrain reviewer keygen NAME` and commits the .pub file"
        )
    return keys


def default_private_key_path(reviewer: str) -> Path:
    """``RETRAIN_REVIEWER_KEY`` if set, else ``$XDG_CONFIG_HOME`` (or ``~/.config``)``/retrain/keys/NAME.key``."""
    named = os.environ.get(KEY_ENV, "")
    if named:
        return Path(named).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "retrain" / "keys" / f"{reviewer}.key"


def _write_private(path: Path, data: bytes) -> None:
    """Create the file readable by its owner only (0600, directory 0700) before the key is written."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def create_private_key(path: Path) -> Ed25519PrivateKey:
    """A new Ed25519 private key written to ``path`` (0600; never over an existing file)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    if path.exists():
        raise ApprovalConfigError(f"{path} exists already: keep it, or remove it yourself to replace it")
    key = Ed25519PrivateKey.generate()
    _write_private(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


def write_public_key(project_dir: Path, policy: ApprovalSettings, reviewer: str, key: Ed25519PrivateKey) -> Path:
    """``reviewer``'s public key into the project's key directory (a file to commit)."""
    public_path = public_key_path(project_dir, policy, reviewer)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_text(format_public_key(public_bytes(key), reviewer), encoding="utf-8")
    return public_path


@dataclass(frozen=True)
class KeyPairFiles:
    """Where keygen left a reviewer's keys, and whether the private key is new or an existing one reused."""

    public_path: Path
    private_created: bool


def generate_key_pair(project_dir: Path, policy: ApprovalSettings, reviewer: str, private_path: Path) -> KeyPairFiles:
    """The reviewer's public key into the project's key directory, from their private key at
    ``private_path``: a new Ed25519 key (0600) when there is none, else the existing one, so one
    reviewer keeps one key across every project they review (an existing file is never overwritten).

    Refused: a private key inside the project, and a public file already holding another key
    (replacing a reviewer's key is a change someone makes by hand and reviews)."""
    private_path = private_path.expanduser().absolute()
    if private_path.resolve().is_relative_to(project_dir.resolve()):
        raise ApprovalConfigError(f"{private_path} is inside the project: a private key must never be committed")
    created = not private_path.exists()
    key = create_private_key(private_path) if created else _existing_private_key(private_path)
    public_path = public_key_path(project_dir, policy, reviewer)
    if public_path.exists() and _holds_another_key(public_path, public_bytes(key)):
        raise ApprovalConfigError(
            f"{public_path} holds another key than {private_path}: remove it yourself to replace it "
            "(a reviewer's new key is a reviewed change)"
        )
    return KeyPairFiles(write_public_key(project_dir, policy, reviewer, key), created)


def _existing_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        return load_private_key(path)
    except ApprovalInputError as error:
        raise ApprovalConfigError(f"{error} (keygen reuses an existing private key, never replaces it)") from None


def _holds_another_key(public_path: Path, expected: bytes) -> bool:
    try:
        return parse_public_key(public_path.read_text(encoding="utf-8")) != expected
    except (OSError, UnicodeDecodeError, ValueError):
        return True


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """A reviewer's private key (PKCS#8 PEM or OpenSSH, unencrypted), refused when others may read it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

    path = path.expanduser()
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise ApprovalInputError(
            f"no private key at {path}: pass --key PATH, set {KEY_ENV}, or create one with `retrain reviewer keygen`"
        ) from None
    except OSError as error:
        raise ApprovalInputError(f"cannot read the private key {path} ({type(error).__name__})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ApprovalInputError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 {path}")
    loader = load_ssh_private_key if data.lstrip().startswith(b"-----BEGIN OPENSSH") else load_pem_private_key
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError):
        raise ApprovalInputError(f"{path} is not an unencrypted Ed25519 private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ApprovalInputError(f"{path} is not an Ed25519 private key")
    return key


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
