"""SQS as the dead-letter queue the starter writes invalid messages to."""

from __future__ import annotations

import json
from typing import Any

import boto3


class SqsDeadLetterQueue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = client or boto3.client("sqs")

    def send(self, letter: dict[str, Any]) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(letter))
