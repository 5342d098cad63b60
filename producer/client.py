"""The Python producer client: upload the attachments under ``<mailKey>/``, then enqueue the message.

Works the same against a deployed stack (its outputs) and the local twin (its info file)::

    from producer.client import StepmailClient, Target

    client = StepmailClient(Target.from_stack("Stepmail", region="eu-west-1"))
    client.send(
        {"mailKey": "invoice-1001", "toAddress": "jane@example.com", "subject": "Invoice", "body": "..."},
        attachments={"invoice.pdf": Path("invoice.pdf")},
    )

The message is validated locally first (the same model the starter uses), so a producer learns about
a malformed message at once instead of finding it in the dead-letter queue.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from pydantic import ValidationError

from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import MailMessage, check_attachment_name, describe_validation_error

STACK_OUTPUTS = ("QueueUrl", "AttachmentsBucketName")


@dataclass(frozen=True)
class Target:
    """Where to send: the queue, the bucket, and (for the twin) the endpoint."""

    queue_url: str
    bucket: str
    region: str
    endpoint_url: str | None = None

    @classmethod
    def from_stack(cls, stack_name: str, *, region: str | None = None) -> Target:
        """Read the deployed stack's outputs (needs cloudformation:DescribeStacks)."""
        cloudformation = boto3.client("cloudformation", region_name=region)
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        missing = [name for name in STACK_OUTPUTS if name not in outputs]
        if missing:
            raise ValueError(f"stack {stack_name} has no output {', '.join(missing)}")
        return cls(outputs["QueueUrl"], outputs["AttachmentsBucketName"], cloudformation.meta.region_name)

    @classmethod
    def from_info_file(cls, path: Path) -> Target:
        """The twin's ``--info-file``."""
        info = json.loads(path.read_text(encoding="utf-8"))
        return cls(info["queue_url"], info["bucket"], info["region"], info["endpoint_url"])


def aws_client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client for the deployed stack, or for the twin when ``endpoint_url`` is given."""
    if endpoint_url:  # the twin accepts any credentials; do not require real ones
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id="twin",
            aws_secret_access_key="twin",  # noqa: S106
        )
    return boto3.client(service, region_name=region)


def validate(message: Mapping[str, Any]) -> MailMessage:
    """Validate a message as the starter will (sender identities excepted: only the stack knows them)."""
    try:
        return MailMessage.model_validate(dict(message))
    except ValidationError as error:
        raise InvalidMessageError(describe_validation_error(error)) from None


class StepmailClient:
    def __init__(self, target: Target, *, s3: Any = None, sqs: Any = None) -> None:
        self.target = target
        self._s3 = s3 or aws_client("s3", target.region, target.endpoint_url)
        self._sqs = sqs or aws_client("sqs", target.region, target.endpoint_url)

    def send(self, message: Mapping[str, Any], attachments: Mapping[str, Path | bytes] | None = None) -> str:
        """Upload ``attachments`` (name -> file path or bytes) under ``<mailKey>/`` and enqueue ``message``.

        Names missing from ``attachedFileKeys`` are added.  Returns the SQS message id.

        Raises
        ------
        InvalidMessageError
            The message would be dead-lettered: nothing was uploaded or enqueued.
        """
        attachments = dict(attachments or {})
        body = dict(message)
        listed = list(body.get("attachedFileKeys") or [])
        body["attachedFileKeys"] = listed + [name for name in attachments if name not in listed]
        if not body["attachedFileKeys"]:
            del body["attachedFileKeys"]
        parsed = validate(body)
        for name, content in attachments.items():
            self.upload(parsed.mail_key, check_attachment_name(name), content)
        response = self._sqs.send_message(QueueUrl=self.target.queue_url, MessageBody=json.dumps(body))
        return str(response["MessageId"])

    def upload(self, mail_key: str, name: str, content: Path | bytes) -> None:
        key = f"{mail_key}/{name}"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if isinstance(content, Path):  # upload_file goes multipart for large files
            self._s3.upload_file(
                str(content), self.target.bucket, key, ExtraArgs={"ContentType": content_type}
            )
        else:
            self._s3.put_object(Bucket=self.target.bucket, Key=key, Body=content, ContentType=content_type)


def send(
    message: Mapping[str, Any], attachments: Mapping[str, Path | bytes] | None = None, *, target: Target
) -> str:
    """One-shot :meth:`StepmailClient.send`."""
    return StepmailClient(target).send(message, attachments)
