"""Workflow: the Express state machine, loaded from the one ASL file (the twin runs the same file).

``DefinitionBody.from_string`` inlines the definition into the template (template tests and cfn-lint
see it); the resource placeholders become ``DefinitionSubstitutions``.  A string definition gives CDK
nothing to derive permissions from, so every task's permission is granted here, one by one.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.constructs import nag
from infra.definition import apply_numbers, read_definition

_LOG_LEVELS = {
    "ALL": sfn.LogLevel.ALL,
    "ERROR": sfn.LogLevel.ERROR,
    "FATAL": sfn.LogLevel.FATAL,
    "OFF": sfn.LogLevel.OFF,
}


class Workflow(Construct):
    """Acquire Lock -> Resolve Attachments -> Render And Send -> Mark Sent, as an Express state machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        lock_table: dynamodb.ITable,
        attachments_bucket: s3.IBucket,
        sender: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = self._build_log_group()
        self.state_machine = self._build_state_machine(
            config,
            substitutions={
                "LockTableName": lock_table.table_name,
                "AttachmentsBucketName": attachments_bucket.bucket_name,
                "SenderFunctionArn": sender.function_arn,
                "DeadLetterQueueUrl": dead_letter_queue.queue_url,
            },
        )
        self._grant_lock_table(lock_table)
        self._grant_attachment_lookups(attachments_bucket)
        self._grant_send(sender)
        dead_letter_queue.grant(self.state_machine, "sqs:SendMessage")  # "Send To Dead-Letter Queue"
        self._acknowledge_log_delivery_and_tracing(config)

    def _build_log_group(self) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "Logs",
            # Step Functions' vended-log delivery adds a resource policy per log group unless the name
            # starts with /aws/vendedlogs/; that policy is capped at 5,120 characters per account.
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}",
            retention=constants.LOG_RETENTION,
            # Named, so a retained group would make re-creating the stack fail; retention ages it out anyway.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_state_machine(
        self, config: StepmailConfig, *, substitutions: dict[str, str]
    ) -> sfn.StateMachine:
        return sfn.StateMachine(
            self,
            constants.STATE_MACHINE_ID,
            state_machine_type=sfn.StateMachineType.EXPRESS,
            # TimeoutSeconds is in the ASL: CDK ignores `timeout` for string definitions.
            definition_body=sfn.DefinitionBody.from_string(apply_numbers(read_definition(), config)),
            definition_substitutions=substitutions,
            # Express runs have no execution history API: these logs are how a run is inspected.
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=_LOG_LEVELS[config.execution_log_level],
                include_execution_data=config.log_email_content,
            ),
            tracing_enabled=True,
        )

    def _grant_lock_table(self, table: dynamodb.ITable) -> None:
        # Exactly the four item operations of the ASL ("Acquire Lock", "Read Lock", "Mark Sent", "Release
        # Lock ..."): no scans, queries or batch writes.
        # An explicit statement, not table.grant: that adds '<table>/index/*' once the table has an
        # index (byMessageId, for delivery tracking), which these item operations never need.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=list(constants.LOCK_TABLE_ACTIONS), resources=[table.table_arn])
        )

    def _grant_attachment_lookups(self, bucket: s3.IBucket) -> None:
        """Allow "Head Attachment" (aws-sdk:s3:headObject), which S3 authorizes as s3:GetObject.

        s3:ListBucket on the bucket (not its objects) is what makes S3 answer a missing key with 404
        NoSuchKey instead of 403 AccessDenied: the ASL dead-letters NoSuchKey at once, whereas a 403
        would be retried as transient and come back from the queue until the redrive.
        """
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")])
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        nag.acknowledge(
            self.state_machine,
            f"IAM5[Resource::{nag.arn_reference(bucket)}/*]",
            "Attachment keys are <mailKey>/<file>, chosen per message at run time, so no fixed key can be "
            "named; s3:GetObject on 'bucket/*' (HeadObject's permission) is the least privilege for "
            "looking them up.",
        )

    def _grant_send(self, sender: lambda_.IFunction) -> None:
        # The unqualified ARN only (grant_invoke would add 'arn:*' for every version and alias).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[sender.function_arn])
        )

    def _acknowledge_log_delivery_and_tracing(self, config: StepmailConfig) -> None:
        nag.acknowledge(
            self.state_machine,
            "IAM5[Resource::*]",
            "CloudWatch Logs vended delivery (logs:CreateLogDelivery, logs:DescribeLogGroups, ...) and X-Ray "
            "(xray:PutTraceSegments, xray:GetSamplingRules, ...) support no resource-level permissions: "
            "AWS documents '*' as their only resource.",
        )
        if config.execution_log_level != "ALL":
            nag.acknowledge(
                self.state_machine,
                "SF1",
                f"The operator set execution_log_level={config.execution_log_level} in the stepmail "
                "configuration (default ALL), trading run inspection in the console for log volume.",
            )
