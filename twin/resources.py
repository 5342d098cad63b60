"""The twin's AWS resources, created on moto from the same description the stack's constructs use.

:func:`infra.resources.stateful_resources` says what the queues, the lock table and the attachments
bucket look like; this module makes each with the AWS API, then the SES identities and the state
machine (the ASL file, filled with the twin's names).  ``tests/infrastructure/
test_twin_matches_template.py`` compares the result with the synthesized template.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from infra.config import StepmailConfig
from infra.definition import render_definition
from infra.resources import BucketSpec, LifecycleRule, QueueSpec, ResourceNames, TableSpec, stateful_resources
from producer.deployment import Deployment, twin_arn

#: ``service -> boto3 client`` aimed at the twin.
ClientFactory = Callable[[str], Any]


def sender_arn(region: str, names: ResourceNames) -> str:
    """The sender function's ARN, as the state machine's definition names it."""
    return twin_arn("lambda", region, f"function:{names.sender}")


def create_resources(
    config: StepmailConfig,
    deployment: Deployment,
    client: ClientFactory,
    *,
    visibility_timeout_seconds: int | None = None,
) -> None:
    """Create everything ``deployment`` names on the twin behind ``client``.

    ``visibility_timeout_seconds`` overrides the mail queue's (tests see redeliveries in seconds).

    Raises
    ------
    RuntimeError
        moto named a resource differently from ``deployment`` (it derives both from the stack name).
    """
    specs = stateful_resources(config)
    queue = specs.queue
    if visibility_timeout_seconds is not None:
        queue = dataclasses.replace(queue, visibility_timeout_seconds=visibility_timeout_seconds)
    sqs, names = client("sqs"), ResourceNames.for_stack(config.stack_name)
    dlq_url = _create_queue(sqs, names.dead_letter_queue, specs.dead_letter_queue)
    queue_url = _create_queue(sqs, names.queue, queue, dead_letter_arn=_queue_arn(sqs, dlq_url))
    _create_table(client("dynamodb"), deployment.table, specs.lock_table)
    _create_bucket(client("s3"), deployment.bucket, deployment.region, specs.attachments_bucket)
    for identity in config.sender_identities:
        client("sesv2").create_email_identity(EmailIdentity=identity)
    state_machine_arn = _create_state_machine(client("stepfunctions"), config, deployment, names)
    created = (queue_url, dlq_url, state_machine_arn)
    expected = (deployment.queue_url, deployment.dlq_url, deployment.state_machine_arn)
    if created != expected:
        raise RuntimeError(f"the twin created {created}, not {expected}")


def _create_queue(sqs: Any, name: str, spec: QueueSpec, dead_letter_arn: str | None = None) -> str:
    attributes = {
        "MaximumMessageSize": str(spec.max_message_bytes),
        "MessageRetentionPeriod": str(spec.retention_seconds),
        "SqsManagedSseEnabled": "true",
    }
    if spec.visibility_timeout_seconds is not None:
        attributes["VisibilityTimeout"] = str(spec.visibility_timeout_seconds)
    if spec.max_receive_count is not None:
        redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": spec.max_receive_count}
        attributes["RedrivePolicy"] = json.dumps(redrive)
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )


def _create_table(dynamodb: Any, name: str, spec: TableSpec) -> None:
    keys = [spec.partition_key, *(index.partition_key for index in spec.indexes)]
    options: dict[str, Any] = {}
    if spec.indexes:
        options["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": index.projection},
            }
            for index in spec.indexes
        ]
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
        **options,
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
    )
    dynamodb.update_continuous_backups(
        TableName=name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": spec.point_in_time_recovery},
    )


def _create_bucket(s3: Any, name: str, region: str, spec: BucketSpec) -> None:
    """The bucket and its settings (the twin keeps no access logs: S3 server logging is not emulated)."""
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced", **location)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in spec.lifecycle_rules]},
    )


def _lifecycle_rule(rule: LifecycleRule) -> dict[str, Any]:
    document: dict[str, Any] = {
        "ID": rule.id,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": rule.expiration_days},
    }
    if rule.abort_incomplete_upload_days is not None:
        document["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": rule.abort_incomplete_upload_days
        }
    return document


def _create_state_machine(
    stepfunctions: Any, config: StepmailConfig, deployment: Deployment, names: ResourceNames
) -> str:
    definition = render_definition(
        config,
        {
            "LockTableName": deployment.table,
            "AttachmentsBucketName": deployment.bucket,
            "SenderFunctionArn": sender_arn(deployment.region, names),
            "DeadLetterQueueUrl": deployment.dlq_url,
        },
    )
    return str(
        stepfunctions.create_state_machine(
            name=names.state_machine,
            definition=definition,
            roleArn=twin_arn("iam", "", f"role/{names.state_machine}"),
            type="EXPRESS",
        )["stateMachineArn"]
    )
