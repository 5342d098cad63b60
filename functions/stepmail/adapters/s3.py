"""S3 as the attachment store: read an object pinned to the ETag the workflow resolved.

Every error names the attachment and where it was looked for (``s3://bucket/key``): that sentence is
the reason an operator reads in the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from stepmail.adapters.aws_errors import NETWORK_ERRORS, error_code, status_code
from stepmail.core.errors import AttachmentChangedError, AttachmentMissingError, AttachmentUnavailableError
from stepmail.core.sending import StoredFile


class S3AttachmentStore:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self._bucket = bucket
        self._client = client or boto3.client("s3")

    def read(self, key: str, etag: str) -> StoredFile:
        """Raises AttachmentMissingError, AttachmentChangedError or AttachmentUnavailableError."""
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key, IfMatch=etag)
            # One read: urllib3 fills a single buffer of the object's length. Reading in chunks into a
            # bytearray and converting it held every byte twice (bench/sender_memory.py).
            data = bytes(response["Body"].read())
        except ClientError as error:
            raise self._attachment_error(error, key) from error
        except NETWORK_ERRORS as error:
            raise AttachmentUnavailableError(
                f"attachment {_name(key)} could not be read from {self._where(key)}: {type(error).__name__}"
            ) from error
        return StoredFile(data, str(response.get("ContentType") or ""))

    def _where(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def _attachment_error(self, error: ClientError, key: str) -> Exception:
        code, status = error_code(error), status_code(error)
        name, where = _name(key), self._where(key)
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return AttachmentMissingError(
                f"attachment {name} was not found at {where}: upload it, then redrive the message"
            )
        if code == "PreconditionFailed" or status == 412:
            return AttachmentChangedError(
                f"attachment {name} at {where} was replaced after it was looked up (ETag mismatch): "
                "the message will be sent with the new version"
            )
        return AttachmentUnavailableError(
            f"attachment {name} could not be read from {where}: S3 {code or status}"
        )


def _name(key: str) -> str:
    return key.rpartition("/")[2]
