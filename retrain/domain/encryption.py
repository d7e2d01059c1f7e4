"""Encryption at rest of what Retrain writes to S3: the DVC remote and MLflow's artifacts.

Every object is written with server-side encryption: SSE-S3 (``AES256``, keys held by S3) unless a
KMS key is named (``RETRAIN_S3_KMS_KEY_ID``, read in :mod:`retrain.adapters.environment`), then
SSE-KMS with that key. One choice, said in each library's own words: boto3's upload arguments (what
MLflow's S3 artifact store reads from ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``, and any ``put_object``), and
the options of DVC's S3 remote (``sse``, ``sse_kms_key_id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
#: boto3 upload arguments that choose an encryption: a value naming any of them has chosen its own.
_ENCRYPTION_ARGS = frozenset({"ServerSideEncryption", "SSEKMSKeyId", "SSECustomerAlgorithm", "SSECustomerKey"})


@dataclass(frozen=True)
class S3Encryption:
    """Server-side encryption of every object Retrain writes to S3; SSE-S3 unless a KMS key is named."""

    kms_key_id: str | None = None

    @property
    def algorithm(self) -> Literal["AES256", "aws:kms"]:
        """What S3 reports as the object's ``ServerSideEncryption``."""
        return "aws:kms" if self.kms_key_id else "AES256"

    def upload_args(self) -> dict[str, str]:
        """boto3's parameters for an upload (``put_object``, ``upload_file``'s ``ExtraArgs``)."""
        if self.kms_key_id:
            return {"ServerSideEncryption": SSE_KMS, "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": SSE_S3}

    def dvc_remote_options(self) -> dict[str, str]:
        """The options of DVC's S3 remote (dvc-s3 passes them to every upload it makes)."""
        if self.kms_key_id:
            return {"sse": SSE_KMS, "sse_kms_key_id": self.kms_key_id}
        return {"sse": SSE_S3}

    def mlflow_upload_extra_args(self, existing: str | None = None) -> str:
        """The value of ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` (JSON of boto3 upload arguments).

        ``existing`` is what the environment already holds: its arguments are kept (an ACL, a storage
        class), and where it names an encryption of its own (SSE-S3, SSE-KMS or a customer key), that
        one stands. A value that is not a JSON object is left as it is, for MLflow to refuse with its
        own message at the first upload.
        """
        if not existing or not existing.strip():
            return json.dumps(self.upload_args(), sort_keys=True)
        try:
            given = json.loads(existing)
        except ValueError:
            return existing
        if not isinstance(given, dict):
            return existing
        if given.keys() & _ENCRYPTION_ARGS:
            return existing
        return json.dumps({**self.upload_args(), **given}, sort_keys=True)


#: SSE-S3: what every object gets when no KMS key is named.
SSE_S3_ONLY = S3Encryption()


def s3_encryption(kms_key_id: str | None) -> S3Encryption:
    """The encryption a (possibly blank) KMS key id asks for: SSE-KMS with it, else SSE-S3."""
    key = (kms_key_id or "").strip()
    return S3Encryption(key or None)
