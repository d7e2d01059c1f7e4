"""Tasks retry on transient I/O and service errors, never on a judgement (contract, gate, settings)."""

from __future__ import annotations

import pytest

from retrain.adapters.datastore import DataStoreConfigError, DataStoreError
from retrain.adapters.files import BatchReadError
from retrain.domain.errors import ContractViolation
from retrain.domain.settings import SettingsError
from retrain.domain.splitting import SplitError
from retrain.domain.training import TrainingDataError
from tasks.policy import is_transient, retry_on_transient


class _State:
    def __init__(self, error: BaseException):
        self.data = error


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError("reset"), TimeoutError("slow"), OSError("disk busy"), DataStoreError("push failed")],
)
def test_transient_errors_are_retried(error):
    assert is_transient(error)
    assert retry_on_transient(None, None, _State(error))


@pytest.mark.parametrize(
    "error",
    [
        ContractViolation("expect_column_values_to_be_between on credit_score"),
        SettingsError("params.yaml: key 'x' is missing"),
        SplitError("too few days"),
        TrainingDataError("single class"),
        BatchReadError("corrupt parquet"),
        FileNotFoundError("no such batch"),
        DataStoreConfigError("no remote specified"),
        ValueError("bad value"),
    ],
)
def test_judgements_and_bad_input_are_never_retried(error):
    assert not is_transient(error)
    assert not retry_on_transient(None, None, _State(error))
