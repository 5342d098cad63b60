"""The Python producer client: upload the attachments under ``<mailKey>/``, then enqueue the message.

Works the same against a deployed stack (its outputs) and the local twin (its info file)::

    from producer.client import StepmailClient
    from producer.deployment import Deployment

    client = StepmailClient(Deployment.from_stack("Stepmail", region="eu-west-1"))
    client.send(
        {"mailKey": "invoice-1001", "toAddress": "jane@example.com", "subject": "Invoice", "body": "..."},
        attachments={"invoice.pdf": Path("invoice.pdf")},
    )

The message is validated locally first, by the starter's own strict reading of the body it will
enqueue (:func:`stepmail.core.message.parse_document` then ``validate_message``), so a producer learns
about a malformed message at once instead of finding it in the dead-letter queue.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from producer.deployment import Deployment
from stepmail.core.message import (
    MailMessage,
    check_attachment_name,
    message_body,
    parse_document,
    validate_message,
)


def validate(message: Mapping[str, Any]) -> MailMessage:
    """Validate a message as the starter will (sender identities excepted: only the stack knows them).

    Raises
    ------
    InvalidMessageError
        With the starter's reason.
    """
    return prepare(message)[0]


def prepare(message: Mapping[str, Any]) -> tuple[MailMessage, str]:
    """The message validated and the exact body to enqueue: the body the starter will read, read the
    starter's way (size, JSON, surrogates, then the contract)."""
    body = message_body(message)
    return validate_message(parse_document(body)), body


class StepmailClient:
    def __init__(self, deployment: Deployment, *, s3: Any = None, sqs: Any = None) -> None:
        self.deployment = deployment
        self._s3 = s3 or deployment.client("s3")
        self._sqs = sqs or deployment.client("sqs")

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
        parsed, text = prepare(body)
        for name, content in attachments.items():
            self.upload(parsed.mail_key, check_attachment_name(name), content)
        response = self._sqs.send_message(QueueUrl=self.deployment.queue_url, MessageBody=text)
        return str(response["MessageId"])

    def upload(self, mail_key: str, name: str, content: Path | bytes) -> None:
        key = f"{mail_key}/{name}"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if isinstance(content, Path):  # upload_file goes multipart for large files
            self._s3.upload_file(
                str(content), self.deployment.bucket, key, ExtraArgs={"ContentType": content_type}
            )
        else:
            self._s3.put_object(
                Bucket=self.deployment.bucket, Key=key, Body=content, ContentType=content_type
            )


def send(
    message: Mapping[str, Any],
    attachments: Mapping[str, Path | bytes] | None = None,
    *,
    deployment: Deployment,
) -> str:
    """One-shot :meth:`StepmailClient.send`."""
    return StepmailClient(deployment).send(message, attachments)
