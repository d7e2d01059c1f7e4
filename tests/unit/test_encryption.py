"""Encryption at rest on S3, as each library is told it: boto3's upload arguments (MLflow's
``MLFLOW_S3_UPLOAD_EXTRA_ARGS``), DVC's S3 remote options, and the team stack's processes.

What S3 then stores is read back from real objects in tests/integration/test_s3.py (moto) and
tests/stack/test_live_stack.py (the live stack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrain.adapters.environment import S3_KMS_KEY_ID, resolve_runtime
from retrain.domain.encryption import S3Encryption, s3_encryption
from retrain.stack import StackConfig, services, worker_env
from tests.unit.test_compose import KEYS

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_sse_s3_unless_a_kms_key_is_named():
    default = S3Encryption()
    assert default.algorithm == "AES256"
    assert default.upload_args() == {"ServerSideEncryption": "AES256"}
    assert default.dvc_remote_options() == {"sse": "AES256"}
    kms = S3Encryption(KEY)
    assert kms.algorithm == "aws:kms"
    assert kms.upload_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY}
    assert kms.dvc_remote_options() == {"sse": "aws:kms", "sse_kms_key_id": KEY}
    assert s3_encryption("  ") == s3_encryption(None) == default  # a blank variable names no key
    assert s3_encryption(f" {KEY}\n") == kms


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY}),
        ("", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY}),
        (
            '{"ACL": "bucket-owner-full-control"}',
            {"ACL": "bucket-owner-full-control", **S3Encryption(KEY).upload_args()},
        ),
        ('{"ServerSideEncryption": "AES256"}', {"ServerSideEncryption": "AES256"}),  # the user's own choice stands
        ('{"SSECustomerAlgorithm": "AES256"}', {"SSECustomerAlgorithm": "AES256"}),  # SSE-C: never mixed with ours
    ],
)
def test_mlflow_upload_args_keep_what_the_environment_holds(existing: str | None, expected: dict[str, str]):
    assert json.loads(S3Encryption(KEY).mlflow_upload_extra_args(existing)) == expected


def test_mlflow_upload_args_that_are_not_a_json_object_are_left_for_mlflow_to_refuse():
    assert S3Encryption().mlflow_upload_extra_args("not json") == "not json"
    assert S3Encryption().mlflow_upload_extra_args("[1]") == "[1]"


def test_the_environment_names_the_kms_key(tmp_path: Path):
    assert resolve_runtime({}, project_dir=tmp_path).s3_encryption == S3Encryption()
    assert resolve_runtime({S3_KMS_KEY_ID: KEY}, project_dir=tmp_path).s3_encryption == S3Encryption(KEY)


@pytest.mark.parametrize("key", [None, KEY], ids=["sse-s3", "sse-kms"])
def test_the_stack_s_writers_of_the_bucket_encrypt_as_up_was_told(tmp_path: Path, key: str | None):
    """The MLflow server writes the artifacts it proxies, the worker's flows push to the DVC remote:
    both get the encryption ``RETRAIN_S3_KMS_KEY_ID`` named at ``up`` (SSE-S3 without it)."""
    env = {S3_KMS_KEY_ID: key} if key else {}
    config = StackConfig.from_env(tmp_path, "retrain-process", env)
    plan = {service.name: service for service in services(config, KEYS)}
    uploads = json.loads(plan["mlflow"].env["MLFLOW_S3_UPLOAD_EXTRA_ARGS"])
    assert uploads == S3Encryption(key).upload_args()
    worker = worker_env(config, KEYS)
    assert resolve_runtime(worker, project_dir=tmp_path).s3_encryption == S3Encryption(key)
    assert plan["prefect-worker"].env[S3_KMS_KEY_ID] == (key or "")  # set either way: nothing inherited decides
