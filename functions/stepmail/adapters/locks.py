"""DynamoDB as the starter's side of the lock table: freeing a dead run's lock, noting failed deliveries."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stepmail.adapters.aws_errors import error_code
from stepmail.core.contract import Delivery, FailedDeliveryNote
from stepmail.core.errors import MAX_REASON_CHARS

log = logging.getLogger(__name__)


class DynamoDbLockTable:
    """
    Parameters
    ----------
    table_name
        The lock table.
    note_ttl_seconds
        How long a failed delivery's note lives: as long as its message can be on the queue or in
        the dead-letter queue.
    """

    def __init__(self, table_name: str, note_ttl_seconds: int, client: Any | None = None) -> None:
        self._table = table_name
        self._note_ttl_seconds = note_ttl_seconds
        self._client = client or boto3.client("dynamodb")

    def release(self, lock_key: str, owner: str) -> bool:
        """Delete the lock if ``owner`` holds it and has not sent (the ASL's "Release Lock", the same
        condition); False when someone else holds it or it is gone."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": lock_key}},
                ConditionExpression="#owner = :owner AND #status = :inProgress",
                ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":inProgress": {"S": "IN_PROGRESS"}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def note_failed_delivery(self, delivery: Delivery, error: str, now: datetime) -> None:
        """Write the delivery's last error; never raises (the message is retried either way)."""
        note = FailedDeliveryNote(
            queue_message_id=delivery.queue_message_id,
            receive_count=delivery.receive_count,
            error=error[:MAX_REASON_CHARS],
            noted_at=now.isoformat(),
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": note.key},
                    "receiveCount": {"N": str(note.receive_count)},
                    "lastError": {"S": note.error},
                    "notedAt": {"S": note.noted_at},
                    "expiresAt": {"N": str(int(now.timestamp()) + self._note_ttl_seconds)},
                },
            )
        except (ClientError, BotoCoreError) as failure:
            log.warning("could not note a failed delivery: %s", type(failure).__name__)
