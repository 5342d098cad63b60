"""Names shared by the stack, its constructs and the tests: construct ids and the Lambda runtime's facts.

What the stateful resources look like, and the stack's output keys, are in :mod:`infra.resources`
(no CDK import there: the twin and the producer read them too).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

SERVICE_NAME = "stepmail"
REPO_ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- construct ids (they shape logical ids)
STORAGE_ID = "Storage"
LOCK_TABLE_ID = "LockTable"
ATTACHMENTS_BUCKET_ID = "AttachmentsBucket"
ACCESS_LOGS_BUCKET_ID = "AccessLogsBucket"

QUEUEING_ID = "Queueing"
QUEUE_ID = "MailQueue"
DEAD_LETTER_QUEUE_ID = "DeadLetterQueue"

SENDER_ID = "Sender"
STARTER_ID = "Starter"
FUNCTION_ID = "Function"

WORKFLOW_ID = "Workflow"
STATE_MACHINE_ID = "StateMachine"

MONITORING_ID = "Monitoring"
ALARM_TOPIC_ID = "AlarmTopic"
DEAD_LETTER_ALARM_ID = "DeadLetterQueueNotEmpty"
WORKFLOW_ALARM_ID = "WorkflowRunsFailed"
RETRIED_LATER_ALARM_ID = "MessagesRetriedLater"
TRACKER_DEAD_LETTER_ALARM_ID = "TrackerDeadLetterQueueNotEmpty"
QUEUE_AGE_ALARM_ID = "MailQueueOldestMessage"
BOUNCE_RATE_ALARM_ID = "SesBounceRate"
COMPLAINT_RATE_ALARM_ID = "SesComplaintRate"
SLACK_CHANNEL_ID = "SlackChannel"
DASHBOARD_ID = "Dashboard"

TRACKING_ID = "Tracking"
TRACKER_ID = "Tracker"
CONFIGURATION_SET_ID = "ConfigurationSet"
DELIVERY_EVENTS_RULE_ID = "DeliveryEvents"
TRACKER_DEAD_LETTER_QUEUE_ID = "TrackerDeadLetterQueue"

SENDING_DOMAIN_ID = "SendingDomain"
SENDING_DOMAIN_IDENTITY_ID = "Identity"

# ---------------------------------------------------------------- the Lambda code (one asset, two handlers)
FUNCTIONS_DIR = REPO_ROOT / "functions"
FUNCTIONS_PACKAGE = "stepmail"
FUNCTIONS_REQUIREMENTS = FUNCTIONS_DIR / "requirements.txt"
STARTER_HANDLER = "stepmail.handlers.starter.handler"
SENDER_HANDLER = "stepmail.handlers.sender.handler"
TRACKER_HANDLER = "stepmail.handlers.tracker.handler"

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = "3.13"  # must match LAMBDA_RUNTIME: pip picks the wheels by it
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")  # must match LAMBDA_ARCHITECTURE

# ---------------------------------------------------------------- retention of operational data
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# ---------------------------------------------------------------- the state machine's table actions
LOCK_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
