"""S3 as the attachment store: read an object pinned to the ETag the workflow resolved."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from stepmail.adapters.aws_errors import NETWORK_ERRORS, error_code, status_code
from stepmail.core.errors import AttachmentChangedError, AttachmentMissingError, AttachmentUnavailableError


class S3AttachmentStore:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self._bucket = bucket
        self._client = client or boto3.client("s3")

    def read(self, key: str, etag: str) -> bytes:
        """Raises AttachmentMissingError, AttachmentChangedError or AttachmentUnavailableError."""
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key, IfMatch=etag)
            # One read: urllib3 fills a single buffer of the object's length. Reading in chunks into a
            # bytearray and converting it held every byte twice (bench/sender_memory.py).
            return bytes(response["Body"].read())
        except ClientError as error:
            raise _attachment_error(error, key) from error
        except NETWORK_ERRORS as error:
            raise AttachmentUnavailableError(f"attachment {key!r}: {type(error).__name__}") from error


def _attachment_error(error: ClientError, key: str) -> Exception:
    code, status = error_code(error), status_code(error)
    if code in ("NoSuchKey", "404", "NotFound") or status == 404:
        return AttachmentMissingError(f"attachment {key!r} does not exist")
    if code == "PreconditionFailed" or status == 412:
        return AttachmentChangedError(f"attachment {key!r} changed after it was resolved (ETag mismatch)")
    return AttachmentUnavailableError(f"attachment {key!r}: S3 {code or status}")
