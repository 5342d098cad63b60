"""The lock table and the attachments bucket."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Match

from infra.resources import MAIL_KEY_INDEX
from tests.infrastructure.synth import Synthesized


def test_lock_table_is_on_demand_keyed_by_pk_with_ttl_and_encryption(synthesized: Synthesized) -> None:
    # Given the lock table
    table = synthesized.resource(synthesized.stack.storage.lock_table)

    # Then it is keyed by the lock key, billed on demand, expires records and is encrypted with KMS
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert {"AttributeName": "pk", "AttributeType": "S"} in properties["AttributeDefinitions"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": synthesized.config.point_in_time_recovery
    }


def test_lock_table_has_a_keys_only_index_on_the_mail_key(synthesized: Synthesized) -> None:
    # Given the lock table and the state machine's Acquire Lock item (the lock record it writes)
    table = synthesized.resource(synthesized.stack.storage.lock_table)["Properties"]
    asl = json.loads((Path(__file__).parents[2] / "statemachine" / "stepmail.asl.json").read_text())
    item = asl["States"]["Acquire Lock"]["Parameters"]["Item"]

    # Then `stepmail status MAILKEY` has a key to Query: every lock record carries its mail key, and
    # the table indexes it, projecting only the lock key (status reads the record itself next)
    assert item["mailKey"] == {"S.$": "$.message.mailKey"}
    (index,) = [index for index in table["GlobalSecondaryIndexes"] if index["IndexName"] == MAIL_KEY_INDEX]
    assert index == {
        "IndexName": MAIL_KEY_INDEX,
        "KeySchema": [{"AttributeName": "mailKey", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    assert {"AttributeName": "mailKey", "AttributeType": "S"} in table["AttributeDefinitions"]


def test_lock_table_and_buckets_survive_a_stack_deletion(synthesized: Synthesized) -> None:
    # Given the stateful resources
    storage = synthesized.stack.storage
    stateful = [storage.lock_table, storage.attachments_bucket, storage.access_logs_bucket]

    # Then none of them is deleted with the stack
    for construct in stateful:
        assert synthesized.resource(construct)["DeletionPolicy"] == "Retain"


def test_attachments_bucket_is_private_encrypted_and_expires_objects(synthesized: Synthesized) -> None:
    # Given the attachments bucket
    bucket = synthesized.resource(synthesized.stack.storage.attachments_bucket)["Properties"]

    # Then nothing in it can be public, it is encrypted, ACLs are off and objects expire as configured
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == synthesized.config.attachments_expiry_days
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_attachments_bucket_logs_access_to_the_access_logs_bucket(synthesized: Synthesized) -> None:
    # Given both buckets
    storage = synthesized.stack.storage

    # When we read the attachments bucket's logging configuration
    logging = synthesized.resource(storage.attachments_bucket)["Properties"]["LoggingConfiguration"]

    # Then its server access logs go to the access-logs bucket
    assert logging["DestinationBucketName"] == {"Ref": synthesized.logical_id(storage.access_logs_bucket)}


def test_buckets_refuse_requests_without_tls(synthesized: Synthesized) -> None:
    # Given both buckets
    storage = synthesized.stack.storage

    for bucket in (storage.attachments_bucket, storage.access_logs_bucket):
        # Then each bucket policy denies plain HTTP and TLS older than 1.2
        synthesized.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": synthesized.logical_id(bucket)},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                            ),
                            Match.object_like(
                                {"Effect": "Deny", "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}}
                            ),
                        ]
                    )
                },
            },
        )
