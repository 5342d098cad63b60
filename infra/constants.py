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
PYTHON_VERSION = "3.13"  # must match LAMBDA_RUNTIME: pip picks the wheels by it, bytecode is compiled by it
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")  # must match LAMBDA_ARCHITECTURE
#: Where Lambda unpacks the asset (its LAMBDA_TASK_ROOT): the file names the bytecode carries.
LAMBDA_TASK_ROOT = "/var/task"
#: Names a Python of PYTHON_VERSION to compile the asset with, when it is neither on PATH nor in pyenv.
LAMBDA_PYTHON_ENV = "STEPMAIL_LAMBDA_PYTHON"

# ---------------------------------------------------------------- what the asset leaves out
# The handlers import Logger, the EMF metrics provider and the SQS batch processor from Powertools,
# and the batch processor imports data_classes and jmespath_utils; its other utilities (idempotency,
# parameters...) and event_handler are never imported.  Nor is its parser: the batch processor
# imports the parser's models only if pydantic was imported before it, and the starter imports it
# first (were it not, each cold start would build every parser model; without the parser in the
# asset, that fails the bundling test instead).  tests/infrastructure proves the rest is enough:
# every handler path runs from the unpacked asset on Python 3.13.
POWERTOOLS_UTILITIES_SHIPPED = ("batch", "data_classes", "jmespath_utils")
#: Paths (relative to the asset root) of installed requirements that no handler imports.
REQUIREMENTS_NOT_SHIPPED = (
    "bin",  # console scripts (jmespath's jp.py): nothing runs them in a Lambda
    "aws_lambda_powertools/event_handler",  # API Gateway / AppSync routers
    "aws_lambda_powertools/metrics/provider/datadog",
    "pydantic/v1",  # the pydantic 1 compatibility package
    "pydantic/experimental",
    "pydantic/mypy.py",  # a mypy plugin
)
#: File patterns only type checkers read.
TYPING_ONLY_FILES = ("*.pyi", "py.typed")
#: pip's bookkeeping in each *.dist-info (RECORD would list the files left out); METADATA, WHEEL and
#: the licenses stay.
DIST_INFO_NOT_SHIPPED = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "sboms")

# ---------------------------------------------------------------- retention of operational data
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# ---------------------------------------------------------------- the state machine's table actions
LOCK_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
