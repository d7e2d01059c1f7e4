"""Test-wide setup: quiet, offline, and every piece of state in temporary directories.

Environment variables are set here, at import, because Prefect reads PREFECT_HOME and its
settings when it is first imported; nothing a test does may touch ~/.prefect or the project's .retrain/.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from retrain.environment import QUIET_ENVIRONMENT

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="retrain-tests-"))

for _key, _value in QUIET_ENVIRONMENT.items():
    os.environ[_key] = _value
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["RETRAIN_HOME"] = str(_SESSION_HOME / "state")
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
