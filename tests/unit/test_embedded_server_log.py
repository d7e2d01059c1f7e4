"""The embedded Prefect server keeps a busy database's retried errors out of the user's terminal."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator

import pytest
import sqlalchemy.exc
from prefect.settings import PREFECT_SERVER_LOG_RETRYABLE_ERRORS, temporary_settings

from retrain.adapters.prefect_server import quiet_retried_errors


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collected() -> Iterator[_Collect]:
    logger = logging.getLogger("retrain-test.embedded-server")
    handler = _Collect()
    logger.addHandler(handler)
    logger.propagate = False
    quiet_retried_errors()
    yield handler
    logger.removeHandler(handler)


def _log_error(error: Exception) -> None:
    try:
        raise error
    except Exception:
        logging.getLogger("retrain-test.embedded-server").exception("Encountered error during state validation")


def _locked() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError(
        "INSERT INTO flow_run_state", {}, sqlite3.OperationalError("database is locked")
    )


def test_a_locked_sqlite_write_the_client_retries_is_not_printed(collected: _Collect):
    _log_error(_locked())
    assert collected.messages == []


def test_other_errors_are_still_printed(collected: _Collect):
    _log_error(ValueError("a real bug"))
    _log_error(sqlalchemy.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: flow_run")))
    # retryable for Prefect's client, but a bug on the server: its traceback stays
    _log_error(sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))
    _log_error(sqlalchemy.exc.InvalidRequestError("a session in a bad state"))
    logging.getLogger("retrain-test.embedded-server").error("no exception attached")
    assert len(collected.messages) == 5


def test_prefects_own_setting_turns_them_back_on(collected: _Collect):
    with temporary_settings({PREFECT_SERVER_LOG_RETRYABLE_ERRORS: True}):
        _log_error(_locked())
    assert collected.messages == ["Encountered error during state validation"]


def test_installing_twice_adds_one_filter(collected: _Collect):
    quiet_retried_errors()
    assert len(collected.filters) == 1
