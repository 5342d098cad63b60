"""The twin's DynamoDB keeps AWS's guarantee the pipeline rests on: each item write is atomic.

Two runs adding to one pacing counter at once both count, and of runs racing for one lock exactly one
wins — with requests arriving on the twin's server threads, as they do from concurrent runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError


def test_concurrent_adds_to_one_counter_all_count(twin) -> None:
    # Given 8 clients adding 1 to the same counter 25 times each, at once
    def add(_: int) -> None:
        client = twin.twin.client("dynamodb")
        for _ in range(25):
            client.update_item(
                TableName=twin.info.table,
                Key={"pk": {"S": "rate#2026-12-03T05:00:00.0"}},
                UpdateExpression="ADD sent :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(8)))

    # Then the counter holds every one of them
    item = twin.dynamodb.get_item(TableName=twin.info.table, Key={"pk": {"S": "rate#2026-12-03T05:00:00.0"}})
    assert item["Item"]["sent"]["N"] == "200"


def test_of_concurrent_conditional_writes_exactly_one_wins(twin) -> None:
    # Given 16 clients writing the same new item, each on the condition that it does not exist
    def claim(owner: int) -> str:
        try:
            twin.twin.client("dynamodb").put_item(
                TableName=twin.info.table,
                Item={"pk": {"S": "race#1"}, "owner": {"S": str(owner)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "won"

    with ThreadPoolExecutor(16) as pool:
        wins = list(pool.map(claim, range(16)))

    # Then exactly one did, every other was refused by its condition, and the item is the winner's
    assert sorted(set(wins)) == ["ConditionalCheckFailedException", "won"] and wins.count("won") == 1
    item = twin.dynamodb.get_item(TableName=twin.info.table, Key={"pk": {"S": "race#1"}})["Item"]
    assert item["owner"]["S"] == str(wins.index("won"))
