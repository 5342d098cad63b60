"""The stack's stateful resources as plain data: what the CDK constructs and the local twin both build.

The queues, the lock table and the attachments bucket are described here once, from the configuration;
``infra.constructs`` turns each description into CDK constructs and ``twin.resources`` into moto calls.
No ``aws_cdk`` import: the twin and the producer read this module without paying for CDK's import.
``tests/infrastructure/test_twin_matches_template.py`` holds what the twin creates against the
synthesized template.

Also here: the stack's output keys (what a producer reads to find the system), the names the twin
gives the resources (a deployed stack lets CloudFormation name them), and the EventBridge detail-types
of SES's delivery events.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import StepmailConfig
from stepmail.core.budget import MAX_PAYLOAD_BYTES
from stepmail.core.tracking import MESSAGE_ID_INDEX

DAY_SECONDS = 86_400

# ---------------------------------------------------------------- SQS limits
# Source: "Amazon SQS message quotas", https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
# SQSDeveloperGuide/quotas-messages.html (read November 2026): a message is at most 1 MiB (1,048,576 bytes).
#: Step Functions takes at most 256 KiB of input, so the mail queue refuses anything larger.
QUEUE_MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES
#: A dead letter is the original message plus its reason, so it may exceed 256 KiB: allow SQS's maximum.
DEAD_LETTER_MAX_MESSAGE_BYTES = 1_048_576

# ---------------------------------------------------------------- retention of operational data
ACCESS_LOG_RETENTION_DAYS = 90
INCOMPLETE_UPLOAD_EXPIRY_DAYS = 1
ATTACHMENTS_ACCESS_LOG_PREFIX = "attachments/"

# ---------------------------------------------------------------- the lock table's keys
LOCK_TABLE_PARTITION_KEY = "pk"
#: TTL deletes up to ~48 h late; the ASL's conditions check expiresAt themselves.
LOCK_TABLE_TTL_ATTRIBUTE = "expiresAt"
MESSAGE_ID_ATTRIBUTE = "messageId"
#: Every lock record carries its mail key (the ASL's Acquire Lock writes it): ``stepmail status
#: MAILKEY`` finds the mail key's emails through this index instead of scanning the table.
MAIL_KEY_ATTRIBUTE = "mailKey"
MAIL_KEY_INDEX = "byMailKey"

# ---------------------------------------------------------------- stack outputs (what producers read)
QUEUE_URL_OUTPUT = "QueueUrl"
DEAD_LETTER_QUEUE_URL_OUTPUT = "DeadLetterQueueUrl"
ATTACHMENTS_BUCKET_OUTPUT = "AttachmentsBucketName"
LOCK_TABLE_OUTPUT = "LockTableName"
STATE_MACHINE_ARN_OUTPUT = "StateMachineArn"
CONFIGURATION_SET_OUTPUT = "ConfigurationSetName"
TRACKER_DEAD_LETTER_QUEUE_URL_OUTPUT = "TrackerDeadLetterQueueUrl"
ALARM_TOPIC_OUTPUT = "AlarmTopicArn"
#: Without a hosted zone, each DNS record of the sending domain is an output "DnsRecord<key>" (Dkim1,
#: MailFromMx, MailFromSpf, Dmarc) whose value reads like a zone file line: "name TYPE rdata".
DNS_RECORD_OUTPUT_PREFIX = "DnsRecord"

# ---------------------------------------------------------------- SES delivery events on EventBridge
#: SES's event type -> the ``detail-type`` EventBridge gives it.  Source: "Monitor email sending using
#: Amazon SES event publishing", EventBridge event examples, https://docs.aws.amazon.com/ses/latest/dg/
#: event-publishing-retrieving-eventbridge.html (read November 2026).
SES_DETAIL_TYPES = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Reject": "Email Rejected",
    "DeliveryDelay": "Email Delivery Delayed",
}


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue: SQS-managed encryption, TLS only (both always), and these numbers."""

    max_message_bytes: int
    retention_seconds: int
    #: None: SQS's default (30 s).
    visibility_timeout_seconds: int | None = None
    #: Receives before the queue moves a message to the dead-letter queue (None: no redrive policy).
    max_receive_count: int | None = None


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index keyed by one string attribute."""

    name: str
    partition_key: str
    projection: str = "KEYS_ONLY"


@dataclass(frozen=True)
class TableSpec:
    """A pay-per-request DynamoDB table keyed by one string attribute, AWS-managed encryption."""

    partition_key: str
    ttl_attribute: str
    point_in_time_recovery: bool
    indexes: tuple[IndexSpec, ...] = ()


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    expiration_days: int
    abort_incomplete_upload_days: int | None = None


@dataclass(frozen=True)
class BucketSpec:
    """An S3 bucket: public access blocked, ACLs disabled, SSE-S3, TLS >= 1.2 only, and these rules."""

    lifecycle_rules: tuple[LifecycleRule, ...]
    #: Where its server access logs go in the access-logs bucket (None: it is the access-logs bucket).
    access_log_prefix: str | None = None


@dataclass(frozen=True)
class StatefulResources:
    """Everything of the stack that holds data."""

    queue: QueueSpec
    dead_letter_queue: QueueSpec
    lock_table: TableSpec
    attachments_bucket: BucketSpec
    access_logs_bucket: BucketSpec


def stateful_resources(config: StepmailConfig) -> StatefulResources:
    """The stack's queues, table and buckets as ``config`` shapes them."""
    return StatefulResources(
        queue=QueueSpec(
            max_message_bytes=QUEUE_MAX_MESSAGE_BYTES,
            retention_seconds=config.message_retention_days * DAY_SECONDS,
            # At least 6 x the starter's timeout, so a batch still being processed is not delivered again.
            visibility_timeout_seconds=config.queue_visibility_timeout_seconds,
            max_receive_count=config.max_receive_count,
        ),
        dead_letter_queue=QueueSpec(
            max_message_bytes=DEAD_LETTER_MAX_MESSAGE_BYTES,
            retention_seconds=config.dead_letter_retention_days * DAY_SECONDS,
        ),
        lock_table=TableSpec(
            partition_key=LOCK_TABLE_PARTITION_KEY,
            ttl_attribute=LOCK_TABLE_TTL_ATTRIBUTE,
            point_in_time_recovery=config.point_in_time_recovery,
            # The tracker finds an email's record by the SES message id Mark Sent wrote; an operator
            # finds a mail key's emails by the mail key.  Only keys are projected (both read the record
            # itself next), and only lock records carry either attribute (not the notes, the tracker's
            # index items or the send-rate counters), so each index is as small as the emails it serves.
            indexes=(
                IndexSpec(MAIL_KEY_INDEX, MAIL_KEY_ATTRIBUTE),
                *((IndexSpec(MESSAGE_ID_INDEX, MESSAGE_ID_ATTRIBUTE),) if config.delivery_tracking else ()),
            ),
        ),
        attachments_bucket=BucketSpec(
            lifecycle_rules=(
                LifecycleRule(
                    "expire-attachments",
                    expiration_days=config.attachments_expiry_days,
                    abort_incomplete_upload_days=INCOMPLETE_UPLOAD_EXPIRY_DAYS,
                ),
            ),
            access_log_prefix=ATTACHMENTS_ACCESS_LOG_PREFIX,
        ),
        access_logs_bucket=BucketSpec(
            lifecycle_rules=(LifecycleRule("expire-access-logs", expiration_days=ACCESS_LOG_RETENTION_DAYS),)
        ),
    )


@dataclass(frozen=True)
class ResourceNames:
    """The names the twin gives the resources (a deployed stack lets CloudFormation choose them)."""

    queue: str
    dead_letter_queue: str
    bucket: str
    lock_table: str
    state_machine: str
    sender: str
    starter: str
    tracker: str

    @classmethod
    def for_stack(cls, stack_name: str) -> ResourceNames:
        prefix = stack_name.lower()
        return cls(
            queue=f"{prefix}-mail",
            dead_letter_queue=f"{prefix}-dead-letters",
            bucket=f"{prefix}-attachments",
            lock_table=f"{prefix}-locks",
            state_machine=f"{prefix}-workflow",
            sender=f"{prefix}-sender",
            starter=f"{prefix}-starter",
            tracker=f"{prefix}-tracker",
        )
