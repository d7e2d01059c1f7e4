"""Tasks retry on transient I/O and service errors, never on a judgement (contract, gate, settings)."""

from __future__ import annotations

import pytest

from retrain.adapters import datastore
from retrain.adapters.datastore import DataStoreConfigError, DataStoreError
from retrain.adapters.files import BatchReadError
from retrain.adapters.registry import ModelRegistry, RegistryError, RegistryRefused, translate_error
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


# --- adapters translate their library's exceptions, so the policy needs no list of foreign classes ---


class _FailingMlflowClient:
    """Stands in for MlflowClient: every registry call raises the given exception."""

    def __init__(self, error: Exception):
        self.error = error

    def get_model_version_by_alias(self, *args: object) -> None:
        raise self.error

    def set_registered_model_alias(self, *args: object) -> None:
        raise self.error


def _registry_failing_with(error: Exception) -> ModelRegistry:
    registry = ModelRegistry("http://mlflow.invalid:5000", "m", "e", None)
    registry._mlflow_client = _FailingMlflowClient(error)  # type: ignore[assignment]
    return registry


@pytest.mark.parametrize("code", ["INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"])
def test_an_mlflow_failure_leaves_the_registry_as_a_transient_registry_error(code):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode

    message = "API request to http://mlflow.invalid:5000 failed: connection refused"
    original = MlflowException(message, error_code=ErrorCode.Value(code))
    with pytest.raises(RegistryError, match=f"failed \\({code}\\)") as raised:
        _registry_failing_with(original).by_alias("champion")
    assert raised.value.__cause__ is original
    assert is_transient(raised.value) and retry_on_transient(None, None, _State(raised.value))
    assert is_transient(translate_error(original, "http://mlflow.invalid:5000"))


@pytest.mark.parametrize("code", ["RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST"])
def test_a_permanent_mlflow_refusal_is_never_retried(code):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode

    original = MlflowException("no", error_code=ErrorCode.Value(code))
    with pytest.raises(RegistryRefused, match=f"MLflow at http://mlflow.invalid:5000 refused: {code}") as raised:
        _registry_failing_with(original).set_alias("champion", "1")
    assert raised.value.error_code == code and raised.value.__cause__ is original
    assert not isinstance(raised.value, RegistryError)
    assert not is_transient(raised.value) and not retry_on_transient(None, None, _State(raised.value))


def test_an_absent_alias_is_still_none_not_an_error():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode

    absent = MlflowException("alias not found", error_code=ErrorCode.Value("RESOURCE_DOES_NOT_EXIST"))
    assert _registry_failing_with(absent).by_alias("champion") is None


def test_an_unreachable_tracking_server_over_http_is_transient():
    import requests

    with pytest.raises(RegistryError, match="could not be reached"):
        _registry_failing_with(requests.ConnectionError("Max retries exceeded")).by_alias("champion")
    forbidden = requests.Response()
    forbidden.status_code = 403
    refused = translate_error(requests.HTTPError("403 Forbidden", response=forbidden), "http://x")
    assert isinstance(refused, RegistryRefused) and not is_transient(refused)


def test_a_bug_in_the_adapter_is_not_disguised_as_a_service_failure():
    with pytest.raises(ValueError, match="a bug"):
        _registry_failing_with(ValueError("a bug")).by_alias("champion")


@pytest.fixture()
def dvc_repo(tmp_path):
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    return tmp_path


def test_an_unreachable_s3_endpoint_becomes_a_transient_data_store_error(dvc_repo, monkeypatch):
    from botocore.exceptions import EndpointConnectionError
    from dvc.repo import Repo

    def unreachable(self, *args, **kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/bucket")

    monkeypatch.setattr(Repo, "push", unreachable)
    with pytest.raises(DataStoreError, match=r"failed after 1 attempts.*Could not connect") as raised:
        datastore.push(dvc_repo, "data.dvc", retries=0)
    assert isinstance(raised.value.__cause__, EndpointConnectionError)
    assert is_transient(raised.value) and retry_on_transient(None, None, _State(raised.value))


def test_an_s3_client_error_becomes_a_data_store_error(dvc_repo, monkeypatch):
    from botocore.exceptions import ClientError
    from dvc.repo import Repo

    def throttled(self, *args, **kwargs):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject")

    monkeypatch.setattr(Repo, "pull", throttled)
    with pytest.raises(DataStoreError, match="SlowDown") as raised:
        datastore.pull(dvc_repo, "data.dvc", retries=0)
    assert isinstance(raised.value.__cause__, ClientError) and is_transient(raised.value)
