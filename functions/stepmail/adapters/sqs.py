"""SQS as the dead-letter queue the starter writes to (invalid messages, runs ended outside the contract)."""

from __future__ import annotations

from typing import Any

import boto3

from stepmail.core.budget import compact_json
from stepmail.core.contract import DeadLetterEnvelope


class SqsDeadLetterQueue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = client or boto3.client("sqs")

    def send(self, letter: DeadLetterEnvelope) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=compact_json(letter.to_json_dict()))
