"""The stack's Prefect server logs no URL path (a webhook URL is a credential), tracebacks included."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from retrain.stack.log_redaction import FILTER_NAME, RedactUrlPaths, write_server_logging_config

SECRET_HOOK = "https://hooks.slack.com/services/T000/B000/not-for-logs"


def _record_of_a_failed_post() -> logging.LogRecord:
    try:
        raise RuntimeError(f"Client error '404 Not Found' for url '{SECRET_HOOK}'")
    except RuntimeError:
        import sys

        return logging.LogRecord(
            "prefect.server.events", logging.ERROR, __file__, 1, "Failed posting to %s", (SECRET_HOOK,), sys.exc_info()
        )


def test_a_failed_webhook_post_is_logged_without_the_urls_path():
    record = _record_of_a_failed_post()
    assert RedactUrlPaths().filter(record)
    shown = logging.Formatter().format(record)
    assert "not-for-logs" not in shown and "T000" not in shown
    assert "https://hooks.slack.com/…" in shown and "RuntimeError" in shown  # the error itself stays


def test_every_handler_of_the_servers_logging_config_redacts(tmp_path: Path):
    config = yaml.safe_load(write_server_logging_config(tmp_path / "logging.yml").read_text())
    assert config["handlers"] and all(FILTER_NAME in handler["filters"] for handler in config["handlers"].values())
    assert config["filters"][FILTER_NAME] == {"()": "retrain.stack.log_redaction.RedactUrlPaths"}
    assert "$" not in (tmp_path / "logging.yml").read_text()  # Prefect reads it as a template


def test_the_compose_servers_logging_config_is_the_same_with_the_filter():
    """infra/prefect-server-logging.yml (what the Docker stack's Prefect server reads) redacts too."""
    from tests.conftest import REPO_ROOT

    committed = yaml.safe_load((REPO_ROOT / "infra" / "prefect-server-logging.yml").read_text())
    assert all(FILTER_NAME in handler["filters"] for handler in committed["handlers"].values())
    assert committed["filters"][FILTER_NAME] == {"()": "retrain.stack.log_redaction.RedactUrlPaths"}
    assert set(committed["loggers"]) >= {"prefect.server", "uvicorn"}
