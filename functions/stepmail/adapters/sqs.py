"""SQS at the starter's edges: the dead-letter queue it writes to, and the mail queue's redeliveries."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stepmail.core.budget import compact_json
from stepmail.core.contract import DeadLetterEnvelope

log = logging.getLogger(__name__)


class SqsDeadLetterQueue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = client or boto3.client("sqs")

    def send(self, letter: DeadLetterEnvelope) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=compact_json(letter.to_json_dict()))


class SqsRedeliveries:
    """The mail queue, for the messages the starter gives back: when each comes back."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = client or boto3.client("sqs")

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """Make the message visible again in ``seconds``; never raises (if this fails, the queue's
        visibility timeout brings it back, later)."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError) as error:
            log.warning("could not shorten a redelivery: %s", type(error).__name__)
