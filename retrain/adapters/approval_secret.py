"""Where the reviewer-token secret lives: a Prefect Secret block, or the environment when embedded.

The secret is read only where tokens are checked or issued and never returned to a caller that
logs, stores or passes it on as a task parameter.
"""

from __future__ import annotations

import os

from retrain.domain.settings import ApprovalSettings
from retrain.errors import ApprovalConfigError


def load_approval_secret(policy: ApprovalSettings) -> str:
    """The HMAC secret from the Prefect Secret block named in params, else from its env variable."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(policy.secret_block).get()  # type: ignore[union-attr]
    except ValueError:  # no such block on this Prefect API
        value = None
    if isinstance(value, str) and value:
        return value
    from_env = os.environ.get(policy.secret_env, "")
    if from_env:
        return from_env
    raise ApprovalConfigError(
        "no secret to check reviewer tokens against: create the Prefect Secret block "
        f"'{policy.secret_block}' (team stack) or set {policy.secret_env} (embedded default)"
    )
