"""DynamoDB as the store of delivery events: the email's record (the lock item) and its index items."""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stepmail.adapters.aws_errors import error_code
from stepmail.core.tracking import (
    MESSAGE_ID_INDEX,
    DeliveryEvent,
    RecordOutcome,
    index_key,
)

_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoDbDeliveryRecords:
    """Finds an email's record by SES message id and appends delivery events to it.

    Parameters
    ----------
    table_name
        The lock table.
    index_ttl_seconds
        How long an index item lives (the dedup window: the record it points to lives as long).
    """

    def __init__(self, table_name: str, index_ttl_seconds: int, client: Any | None = None) -> None:
        self._table = table_name
        self._index_ttl_seconds = index_ttl_seconds
        self._client = client or boto3.client("dynamodb")

    def lock_key_for(self, message_id: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": index_key(message_id)}}, ConsistentRead=True
        ).get("Item")
        if item:
            return str(item["lockKey"]["S"])
        found = self._client.query(
            TableName=self._table,
            IndexName=MESSAGE_ID_INDEX,
            KeyConditionExpression="messageId = :id",
            ExpressionAttributeValues={":id": {"S": message_id}},
            Limit=1,
        ).get("Items", [])
        if not found:
            return None
        lock_key = str(found[0]["pk"]["S"])
        self._write_index_item(message_id, lock_key)
        return lock_key

    def _write_index_item(self, message_id: str, lock_key: str) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": index_key(message_id)},
                "lockKey": {"S": lock_key},
                "expiresAt": {"N": str(int(time.time()) + self._index_ttl_seconds)},
            },
        )

    def record(self, lock_key: str, event: DeliveryEvent) -> RecordOutcome:
        # First try to append and move the status forward; if a stronger status stands, only append;
        # if the record no longer carries this message id (a later send, or expired), drop the event.
        if self._update(lock_key, event, with_status=True):
            return RecordOutcome.RECORDED
        if self._update(lock_key, event, with_status=False):
            return RecordOutcome.RECORDED_WITHOUT_STATUS
        return RecordOutcome.STALE

    def _update(self, lock_key: str, event: DeliveryEvent, *, with_status: bool) -> bool:
        element = {"M": {name: {"S": value} for name, value in event.as_item().items()}}
        values: dict[str, Any] = {
            ":event": {"L": [element]},
            ":empty": {"L": []},
            ":id": {"S": event.message_id},
        }
        update = "SET deliveryEvents = list_append(if_not_exists(deliveryEvents, :empty), :event)"
        condition = "messageId = :id"
        if with_status:
            update += ", deliveryStatus = :status, deliveryRank = :rank"
            condition += " AND (attribute_not_exists(deliveryRank) OR deliveryRank <= :rank)"
            values[":status"] = {"S": str(event.status)}
            values[":rank"] = {"N": str(event.rank)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": lock_key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error_code(error) == _CONDITION_FAILED:
                return False
            raise
        return True
