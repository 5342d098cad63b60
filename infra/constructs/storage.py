"""Storage: the lock table (one record per email) and the attachments bucket (``<mailKey>/<file>``)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.constructs import nag
from infra.resources import BucketSpec, TableSpec, stateful_resources

_ACCESS_LOGS_BY_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


class Storage(Construct):
    """The lock table, the attachments bucket and the bucket that keeps its access logs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StepmailConfig) -> None:
        super().__init__(scope, construct_id)
        # ACLs are disabled on both buckets, so S3 must deliver access logs through a bucket policy (not
        # the LogDeliveryWrite ACL), whatever feature flags the app runs with.
        self.node.set_context(_ACCESS_LOGS_BY_BUCKET_POLICY, True)
        resources = stateful_resources(config)
        self.lock_table = self._build_lock_table(resources.lock_table)
        self.access_logs_bucket = self._build_access_logs_bucket(resources.access_logs_bucket)
        self.attachments_bucket = self._build_attachments_bucket(
            resources.attachments_bucket, self.access_logs_bucket
        )

    def _build_lock_table(self, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            constants.LOCK_TABLE_ID,
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=spec.point_in_time_recovery
            ),
            # A KMS key the table's readers need no grant for (the aws/dynamodb key works through DynamoDB).
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # The sent records are the only trace of which emails went out (with SES message ids); a stack
            # deletion or replacement must not erase them.  The table is unnamed, so a retained one never
            # blocks a redeploy.
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(
                    name=index.partition_key, type=dynamodb.AttributeType.STRING
                ),
                projection_type=dynamodb.ProjectionType(index.projection),
            )
        if not spec.point_in_time_recovery:
            nag.acknowledge(
                table,
                "DDB3",
                "The operator set point_in_time_recovery=false in the stepmail configuration: the table only "
                "holds locks and dedup records, which expire within the dedup window anyway.",
            )
        return table

    def _build_access_logs_bucket(self, spec: BucketSpec) -> s3.Bucket:
        # An audit trail outlives the stack; the lifecycle rule empties a retained bucket by itself.
        return self._private_bucket(constants.ACCESS_LOGS_BUCKET_ID, spec)

    def _build_attachments_bucket(self, spec: BucketSpec, access_logs: s3.IBucket) -> s3.Bucket:
        # CloudFormation cannot delete a non-empty bucket, and auto-deleting would add a custom-resource
        # Lambda allowed to delete every object.  Retained, the bucket empties itself by its lifecycle.
        return self._private_bucket(
            constants.ATTACHMENTS_BUCKET_ID,
            spec,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=spec.access_log_prefix,
        )

    def _private_bucket(self, construct_id: str, spec: BucketSpec, **logging: Any) -> s3.Bucket:
        """A bucket nothing can make public, TLS only, emptied by its lifecycle, kept on stack deletion."""
        return s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # SSE-S3: producers upload and the workflow reads without any KMS grant to manage, and S3
            # server access logging only delivers to buckets encrypted with SSE-S3.
            encryption=s3.BucketEncryption.S3_MANAGED,
            # ACLs disabled: nothing (a producer included) can make an object public through an ACL.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=_lifecycle_rules(spec),
            removal_policy=RemovalPolicy.RETAIN,
            **logging,
        )


def _lifecycle_rules(spec: BucketSpec) -> list[s3.LifecycleRule]:
    return [
        s3.LifecycleRule(
            id=rule.id,
            expiration=Duration.days(rule.expiration_days),
            abort_incomplete_multipart_upload_after=(
                Duration.days(rule.abort_incomplete_upload_days)
                if rule.abort_incomplete_upload_days is not None
                else None
            ),
        )
        for rule in spec.lifecycle_rules
    ]
