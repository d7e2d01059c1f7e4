"""The stack's state dir on disk, for the operator's eyes only.

Everything under ``$RETRAIN_HOME/stack`` is a secret or opens one: ``secrets.json``, people's
profiles, MLflow's auth config, nginx's logins, the PostgreSQL cluster, the logs. Directories are
0700 and files 0600, whatever the umask: each is chmod-ed after it is made (``write_private``,
``private_dir`` and the supervisor's logs and pid files), and :func:`secure_state` makes the
directories and narrows what an older stack left wider at every ``up``.

Run as root, two servers run as other OS users and must reach their own directories: PostgreSQL as
``postgres`` (its ``postgres/`` is theirs, 0700, the data dir 0700 from ``initdb``) and nginx's
workers as ``www-data`` (their temp files under ``nginx/``). Then the state dir, its parent and
``nginx/`` are 0711: others may pass through, never list or read, and every file stays 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from retrain.stack.config import StackConfig
from retrain.stack.secrets import PRIVATE_DIR, PRIVATE_FILE, private_dir

#: A directory other OS users of the stack's servers pass through (execute), never list or read.
PASSAGE_DIR = 0o711
#: nginx's files the stack writes (nginx writes its pid, log and temp dirs beside them itself).
NGINX_FILES = ("nginx.conf", "people.map")


def runs_as_root() -> bool:
    """As root, PostgreSQL and nginx's workers run as their own OS users (``postgres``, ``www-data``)."""
    return os.geteuid() == 0


def state_dirs(config: StackConfig, as_root: bool) -> dict[Path, int]:
    """Every directory of the stack's state and its mode."""
    passage = PASSAGE_DIR if as_root else PRIVATE_DIR
    return {
        config.home: passage,
        config.postgres_data.parent: PRIVATE_DIR,  # the cluster's (the data dir inside is initdb's, 0700)
        config.pids_dir: PRIVATE_DIR,
        config.logs_dir: PRIVATE_DIR,
        config.people_dir: PRIVATE_DIR,
        config.mlflow_auth_file.parent: PRIVATE_DIR,
        config.nginx_dir: passage,
        config.prefect_server_home: PRIVATE_DIR,
        config.worker_prefect_home: PRIVATE_DIR,
        config.worker_home: PRIVATE_DIR,
    }


def private_files(config: StackConfig) -> list[Path]:
    """The files the stack writes (secrets, profiles, ports, configs, logs, pid files), as they are now."""
    directories = (
        config.home,
        config.pids_dir,
        config.logs_dir,
        config.people_dir,
        config.mlflow_auth_file.parent,
        config.prefect_server_home,
    )
    found = [path for directory in directories if directory.is_dir() for path in directory.iterdir()]
    found += [config.nginx_dir / name for name in NGINX_FILES]
    return sorted(path for path in found if path.is_file() and not path.is_symlink())


def secure_state(config: StackConfig, as_root: bool | None = None) -> None:
    """Make the state dir's directories with their modes, and narrow every file the stack wrote to 0600.

    Idempotent (``up`` runs it each time, before it writes anything else): a state dir an older
    version left 0755 with 0644 files is the operator's alone afterwards. Nothing of PostgreSQL's
    data dir, or of what nginx and the worker write, is touched."""
    as_root = runs_as_root() if as_root is None else as_root
    for directory, mode in state_dirs(config, as_root).items():
        private_dir(directory).chmod(mode)
    if as_root:  # PostgreSQL and nginx's workers pass through the parent too; nothing more is added
        parent = config.home.parent
        parent.chmod(parent.stat().st_mode & 0o7777 | 0o011)
    for path in private_files(config):
        path.chmod(PRIVATE_FILE)
