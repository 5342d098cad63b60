"""The twin's resources are the stack's: what the twin creates on moto, read back through the AWS API,
equals what the synthesized template declares (queue attributes, redrive policy, key schema, TTL,
indexes, bucket settings), for both configurations.

Not compared, because the twin does not emulate them: TLS-only resource policies, the access-logs
bucket and the attachments bucket's server access logging, the table's retention on stack deletion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.config import StepmailConfig
from infra.resources import MAIL_KEY_INDEX
from stepmail.core.tracking import MESSAGE_ID_INDEX
from tests.infrastructure.synth import Synthesized
from twin.twin import LocalTwin


@pytest.fixture(params=["full", "minimal"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Synthesized, LocalTwin]]:
    """A synthesized stack and a twin started on the same configuration."""
    synthesized: Synthesized = request.getfixturevalue(request.param)
    twin = LocalTwin(StepmailConfig.model_validate(synthesized.config.model_dump()))
    twin.start()
    try:
        yield synthesized, twin
    finally:
        twin.stop()


def _queue(twin: LocalTwin, queue_url: str) -> dict[str, Any]:
    """A twin's queue in the template's terms."""
    attributes = twin.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    shown = {
        "MaximumMessageSize": int(attributes["MaximumMessageSize"]),
        "MessageRetentionPeriod": int(attributes["MessageRetentionPeriod"]),
        "SqsManagedSseEnabled": attributes.get("SqsManagedSseEnabled") == "true",
    }
    if "RedrivePolicy" in attributes:
        shown["maxReceiveCount"] = json.loads(attributes["RedrivePolicy"])["maxReceiveCount"]
    return shown | {"VisibilityTimeout": int(attributes["VisibilityTimeout"])}


def _template_queue(properties: dict[str, Any]) -> dict[str, Any]:
    shown = {
        name: properties[name]
        for name in ("MaximumMessageSize", "MessageRetentionPeriod", "SqsManagedSseEnabled")
    }
    if "RedrivePolicy" in properties:
        shown["maxReceiveCount"] = properties["RedrivePolicy"]["maxReceiveCount"]
    # A queue that sets none has SQS's default visibility timeout (30 s), as the twin's has.
    return shown | {"VisibilityTimeout": properties.get("VisibilityTimeout", 30)}


def test_the_twins_queues_are_the_templates(pair: tuple[Synthesized, LocalTwin]) -> None:
    # Given the stack's queues and the twin's, built from one configuration
    synthesized, twin = pair
    queueing, info = synthesized.stack.queueing, twin.info
    assert info is not None

    # When each is read in the template's terms
    declared = [
        synthesized.resource(queue)["Properties"] for queue in (queueing.queue, queueing.dead_letter_queue)
    ]
    created = [_queue(twin, url) for url in (info.queue_url, info.dlq_url)]

    # Then they agree, and the mail queue redrives to the dead-letter queue in both
    assert created == [_template_queue(properties) for properties in declared]
    redrive = json.loads(
        twin.client("sqs").get_queue_attributes(QueueUrl=info.queue_url, AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    dlq_arn = twin.client("sqs").get_queue_attributes(QueueUrl=info.dlq_url, AttributeNames=["QueueArn"])
    assert redrive["deadLetterTargetArn"] == dlq_arn["Attributes"]["QueueArn"]
    assert declared[0]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [synthesized.logical_id(queueing.dead_letter_queue), "Arn"]
    }


def test_the_twins_lock_table_is_the_templates(pair: tuple[Synthesized, LocalTwin]) -> None:
    # Given the stack's lock table and the twin's
    synthesized, twin = pair
    declared = synthesized.resource(synthesized.stack.storage.lock_table)["Properties"]
    assert twin.info is not None
    dynamodb, name = twin.client("dynamodb"), twin.info.table

    # When the twin's is described
    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]

    # Then keys, attributes, billing, TTL, point-in-time recovery and indexes agree
    assert table["KeySchema"] == declared["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(declared["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
    assert {
        "AttributeName": ttl["AttributeName"],
        "Enabled": ttl["TimeToLiveStatus"] == "ENABLED",
    } == declared["TimeToLiveSpecification"]
    recovery = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert recovery == declared["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    indexes = [
        {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
        for index in table.get("GlobalSecondaryIndexes", [])
    ]
    assert indexes == declared.get("GlobalSecondaryIndexes", [])
    names = {index["IndexName"] for index in indexes}
    assert names == {MAIL_KEY_INDEX} | ({MESSAGE_ID_INDEX} if synthesized.config.delivery_tracking else set())


def test_the_twins_attachments_bucket_is_the_templates(pair: tuple[Synthesized, LocalTwin]) -> None:
    # Given the stack's attachments bucket and the twin's
    synthesized, twin = pair
    declared = synthesized.resource(synthesized.stack.storage.attachments_bucket)["Properties"]
    assert twin.info is not None
    s3, bucket = twin.client("s3"), twin.info.bucket

    # When the twin's settings are read
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    public_access = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]

    # Then encryption, public access, object ownership and lifecycle agree
    assert (
        encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        == (
            declared["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
                "ServerSideEncryptionByDefault"
            ]
        )
    )
    assert public_access == declared["PublicAccessBlockConfiguration"]
    assert ownership["Rules"] == declared["OwnershipControls"]["Rules"]
    assert [_lifecycle_rule(rule) for rule in rules] == declared["LifecycleConfiguration"]["Rules"]


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A lifecycle rule as S3's API returns it, in CloudFormation's terms."""
    shown: dict[str, Any] = {"Id": rule["ID"], "Status": rule["Status"]}
    if "AbortIncompleteMultipartUpload" in rule:
        shown["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return shown | {"ExpirationInDays": rule["Expiration"]["Days"]}
