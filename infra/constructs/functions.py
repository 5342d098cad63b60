"""Functions: the starter (SQS batch -> synchronous Express runs) and the sender (MIME + SES v2).

Both run the same bundled code asset with different handlers.  Each has its own role with exactly the
permissions of its job: no managed policies, logs only to its own log group.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.constructs import nag
from stepmail.core.addresses import normalize_address

# Lambda's log levels spell WARNING as WARN.
_APPLICATION_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


class _PythonFunction(Construct):
    """A stepmail function: arm64, Python 3.13, JSON logs to its own log group, X-Ray, its own role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        code: lambda_.Code,
        handler: str,
        description: str,
        timeout_seconds: int,
        memory_mb: int,
        environment: dict[str, str],
        wildcard_actions: str = "",
    ) -> None:
        """
        Parameters
        ----------
        wildcard_actions
            Why the role also needs other actions that have no resource-level permission (a
            sentence added to the acknowledgment of the role's '*' resources).
        """
        super().__init__(scope, construct_id)
        self.log_group = self._build_log_group()
        self.role = self._build_role(self.log_group)
        self.function = lambda_.Function(
            self,
            constants.FUNCTION_ID,
            code=code,
            handler=handler,
            description=description,
            runtime=constants.LAMBDA_RUNTIME,
            architecture=constants.LAMBDA_ARCHITECTURE,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            role=self.role,
            environment=self._environment(config, environment),
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=_APPLICATION_LOG_LEVELS[config.log_level],
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
        )
        self._acknowledge_runtime_and_tracing(wildcard_actions)

    def _build_log_group(self) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "Logs",
            retention=constants.LOG_RETENTION,
            # Logs age out by retention anyway; keeping them after the stack is gone has no owner.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_role(self, log_group: logs.ILogGroup) -> iam.Role:
        # Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): write to this group only.
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)
        return role

    @staticmethod
    def _environment(config: StepmailConfig, settings: dict[str, str]) -> dict[str, str]:
        return {
            **settings,
            "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": config.log_level,
        }

    def _acknowledge_runtime_and_tracing(self, wildcard_actions: str) -> None:
        nag.acknowledge(
            self.function,
            "L1",
            "Python 3.13 is the runtime the project targets (infra.constants.LAMBDA_RUNTIME): the bundled "
            "wheels (pydantic-core) are built for cp313. Moving to 3.14 is a deliberate upgrade of runtime, "
            "bundling and tests.",
        )
        nag.acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "Active X-Ray tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support "
            "no resource-level permissions: '*' is their only possible resource." + wildcard_actions,
        )


class SenderFunction(Construct):
    """The "Render And Send" task: reads attachments, sends raw MIME with SES v2 from allowed identities."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        code: lambda_.Code,
        attachments_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.sender_settings(attachments_bucket=attachments_bucket.bucket_name)
        self._lambda = _PythonFunction(
            self,
            "Lambda",
            config=config,
            code=code,
            handler=constants.SENDER_HANDLER,
            description="stepmail sender: builds the MIME message with S3 attachments, sends it with SES v2",
            timeout_seconds=config.sender_timeout_seconds,
            memory_mb=config.sender_memory_mb,
            environment=settings.to_environment(),
        )
        self.function = self._lambda.function
        self._grant_read_attachments(attachments_bucket)
        self._grant_send_email(config)

    def _grant_read_attachments(self, bucket: s3.IBucket) -> None:
        # GetObject only (not grant_read's List*/GetBucket*): the sender reads keys it was given.
        self._lambda.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")])
        )
        nag.acknowledge(
            self._lambda.role,
            f"IAM5[Resource::{nag.arn_reference(bucket)}/*]",
            "Attachments live under a per-message prefix (<mailKey>/<file>) chosen by producers at run time, "
            "so no fixed key can be named; s3:GetObject on 'bucket/*' is the least privilege: read the "
            "objects of this one bucket, nothing else.",
        )

    def _grant_send_email(self, config: StepmailConfig) -> None:
        stack = Stack.of(self)
        for statement in ses_send_statements(stack, config):
            self._lambda.role.add_to_principal_policy(statement)
        for pattern in sandbox_recipient_wildcards(config):
            nag.acknowledge(
                self._lambda.role,
                f"IAM5[Resource::{nag.format_arn_finding(stack, ses_identity_arn(stack, pattern))}]",
                "In the SES sandbox SES also checks the sender's permission on each recipient's identity ARN "
                "(identity/<recipient address>). Every address at a verified recipient domain (or at the "
                "mailbox simulator) is a possible recipient, so the ARN must end in '*@domain'; the From "
                "address stays pinned by the ses:FromAddress condition, and this is only in sandbox mode.",
            )


#: The SES send actions.  SES v2 ``SendEmail`` is authorized as ``ses:SendEmail`` (Service Authorization
#: Reference), but public reports show raw-content sends refused as ``ses:SendRawEmail``: allow both, on
#: the same resources and conditions, so neither reading can deny a send (docs/aws-assumptions.md).
SES_SEND_ACTIONS = ("ses:SendEmail", "ses:SendRawEmail")
SES_FROM_ADDRESS_CONDITION = "StringLikeIfExists"


def ses_send_statements(stack: Stack, config: StepmailConfig) -> list[iam.PolicyStatement]:
    """SES sends only from the configured identities (and through the configured configuration sets).

    * The resources are the sender identities' ARNs (SES checks the From identity's ARN) and the
      configuration sets' (checked when a message names one).
    * ``ses:FromAddress`` pins the From address to what the starter accepts (``address_allowed``): an
      address identity allows that address, a domain identity any address at that domain.  How SES
      fills the key for raw content is not documented, so the condition is ``...IfExists``: if SES
      leaves the key out, the identity ARNs alone limit the sender instead of every send being denied.
    * With ``ses_sandbox``, a second statement allows the sandbox recipients' identity ARNs (reported:
      SES checks them in the sandbox), under the same From condition.
    """
    condition = {
        SES_FROM_ADDRESS_CONDITION: {"ses:FromAddress": from_address_patterns(config.sender_identities)}
    }
    senders = [ses_identity_arn(stack, identity) for identity in config.sender_identities]
    configuration_sets = [
        stack.format_arn(service="ses", resource="configuration-set", resource_name=name)
        for name in config.sendable_configuration_sets
    ]
    statements = [
        iam.PolicyStatement(
            sid="SendFromConfiguredIdentities",
            actions=list(SES_SEND_ACTIONS),
            resources=[*senders, *configuration_sets],
            conditions=condition,
        )
    ]
    recipients = [
        ses_identity_arn(stack, pattern)
        for recipient in config.sandbox_recipient_identities
        for pattern in recipient_identity_patterns(recipient)
    ]
    if recipients:
        statements.append(
            iam.PolicyStatement(
                sid="SendToSandboxRecipients",
                actions=list(SES_SEND_ACTIONS),
                resources=recipients,
                conditions=condition,
            )
        )
    return statements


def ses_identity_arn(stack: Stack, identity: str) -> str:
    """The ARN of an SES identity (or identity pattern) of this stack's account and region."""
    return stack.format_arn(service="ses", resource="identity", resource_name=identity)


def from_address_patterns(identities: tuple[str, ...]) -> list[str]:
    """The ``ses:FromAddress`` patterns of the identities, as the functions send addresses.

    ``StringLike`` is case-sensitive; the functions send an address with its domain lower-cased (and in
    IDNA form), so a pattern is normalized the same way.  An address identity also gets its all-lower-
    case form, in case SES lower-cases the key's value (it is not documented): the same mailbox.
    """
    patterns: list[str] = []
    for identity in identities:
        if "@" in identity:
            address = normalize_address(identity)
            candidates = [address, address.lower()]
        else:
            candidates = [f"*@{identity.lower()}"]
        patterns.extend(candidate for candidate in candidates if candidate not in patterns)
    return patterns


def recipient_identity_patterns(recipient: str) -> list[str]:
    """The identity ARN names SES may check for a sandbox recipient (an address or a domain).

    An address is its own identity: as the functions send it (domain lower-cased) and all lower-case,
    as for ``ses:FromAddress`` (ARNs match case-sensitively).  For a domain it is not documented whether
    SES checks the domain's identity or the recipient address's, so both: ``example.org`` and
    ``*@example.org``.
    """
    if "@" in recipient:
        address = normalize_address(recipient)
        return list(dict.fromkeys([address, address.lower()]))
    domain = recipient.lower()
    return [domain, f"*@{domain}"]


def sandbox_recipient_wildcards(config: StepmailConfig) -> list[str]:
    """The recipient identity patterns with a wildcard (each one a cdk-nag finding to acknowledge)."""
    return [
        pattern
        for recipient in config.sandbox_recipient_identities
        for pattern in recipient_identity_patterns(recipient)
        if "*" in pattern
    ]


class StarterFunction(Construct):
    """Consumes the mail queue in batches and runs one synchronous Express execution per message."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        code: lambda_.Code,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.IStateMachine,
        lock_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.starter_settings(
            state_machine_arn=state_machine.state_machine_arn,
            dead_letter_queue_url=dead_letter_queue.queue_url,
            lock_table=lock_table.table_name,
            mail_queue_url=queue.queue_url,
        )
        self._lambda = _PythonFunction(
            self,
            "Lambda",
            config=config,
            code=code,
            handler=constants.STARTER_HANDLER,
            description="stepmail starter: validates queued messages and runs the workflow for each",
            timeout_seconds=config.starter_timeout_seconds,
            memory_mb=config.starter_memory_mb,
            environment=settings.to_environment(),
            wildcard_actions=" The starter also reads the account's SES sending quota to pace sends "
            "(ses:GetAccount), which has no resource-level permission either; it reveals no email.",
        )
        self.function = self._lambda.function
        state_machine.grant_start_sync_execution(self._lambda.role)
        # Invalid messages go straight to the DLQ with their reason, without burning retries.
        dead_letter_queue.grant(self._lambda.role, "sqs:SendMessage")
        # A run that fails outside the contract leaves its lock: the starter frees it (DeleteItem, on
        # the same condition as the ASL's) and notes each failed delivery's error (PutItem).  Item
        # operations on the table itself only: no index, no scan.
        self._lambda.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:DeleteItem", "dynamodb:PutItem"], resources=[lock_table.table_arn]
            )
        )
        self._grant_read_send_quota()
        self.function.add_event_source(self._build_event_source(config, queue))

    def _grant_read_send_quota(self) -> None:
        # Pacing follows the live SES quota (stepmail.core.pacing): the starter reads it with GetAccount.
        self._lambda.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["ses:GetAccount"], resources=["*"])
        )

    @staticmethod
    def _build_event_source(config: StepmailConfig, queue: sqs.IQueue) -> event_sources.SqsEventSource:
        return event_sources.SqsEventSource(
            queue,
            batch_size=config.batch_size,
            max_batching_window=Duration.seconds(config.batching_window_seconds),
            # How many batches run at once: the rate control against the SES sending quota.
            max_concurrency=config.max_concurrency,
            report_batch_item_failures=True,
        )
