"""The stack's Prefect server logs no URL path: a webhook URL is itself a credential.

The server's automations post to the team's webhook through a notification block that keeps the URL
as a secret. When the post fails (a revoked Slack hook answers 404), httpx's error names the URL and
Prefect's event consumer logs it with its traceback, into ``logs/prefect-server.log``. This filter,
put on every handler of the server's logging config (``PREFECT_LOGGING_SETTINGS_PATH``), rewrites
every ``http(s)://host/path?query`` in a record's message and traceback to ``http(s)://host/…``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

URL = re.compile(r"(?P<origin>https?://[^/\s'\"<>]+)(?P<rest>/[^\s'\"<>]*)")
FILTER_NAME = "retrain_redact_url_paths"


def redact_url_paths(text: str) -> str:
    return URL.sub(lambda match: f"{match['origin']}/…" if len(match["rest"]) > 1 else match[0], text)


class RedactUrlPaths(logging.Filter):
    """Every URL in the record keeps its scheme and host only (the message and any traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact_url_paths(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and "://" in record.exc_text:
            record.exc_text = redact_url_paths(record.exc_text)
        return True


def write_server_logging_config(path: Path) -> Path:
    """Prefect's own logging config with :class:`RedactUrlPaths` on every handler."""
    import yaml
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH, load_logging_config

    from retrain.stack.secrets import write_private  # here: the server imports this module for its filter

    config: dict[str, Any] = load_logging_config(DEFAULT_LOGGING_SETTINGS_PATH)
    config.setdefault("filters", {})[FILTER_NAME] = {"()": f"{__name__}.RedactUrlPaths"}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), FILTER_NAME]
    write_private(path, yaml.safe_dump(config, sort_keys=False))  # the state dir's files are all 0600
    return path
