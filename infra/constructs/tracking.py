"""Delivery tracking: SES configuration set -> EventBridge -> tracker Lambda -> the email's record.

The stack's configuration set is what the sender uses when a message names none.  Its event
destination publishes send, delivery, bounce, complaint, reject and delivery-delay events to the
default event bus (the only bus SES publishes to); a rule that matches this configuration set's
events invokes the tracker, which finds the email's record by SES message id (the lock table's
``byMessageId`` index over the id Mark Sent writes) and appends the event.

Nothing is dropped silently: an event the tracker cannot record (no record even after waiting for
Mark Sent and two more attempts, or not an SES event) goes to the tracker's dead-letter queue as the
asynchronous invoke's on-failure destination, and an event EventBridge cannot deliver to the tracker
at all goes there as the rule target's dead-letter queue.  That queue has its own alarm.
"""

from __future__ import annotations

import math
from typing import Any

import jsii
from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.constructs import nag
from infra.constructs.functions import _PythonFunction
from infra.resources import DEAD_LETTER_MAX_MESSAGE_BYTES, SES_DETAIL_TYPES
from stepmail.core.tracking import MESSAGE_ID_INDEX, RECORD_WAIT_SECONDS

TRACKED_EVENTS = (
    ses.EmailSendingEvent.SEND,
    ses.EmailSendingEvent.DELIVERY,
    ses.EmailSendingEvent.BOUNCE,
    ses.EmailSendingEvent.COMPLAINT,
    ses.EmailSendingEvent.REJECT,
    ses.EmailSendingEvent.DELIVERY_DELAY,
)
#: How SES names those events on EventBridge (``detail-type``), in the same order.
TRACKED_DETAIL_TYPES = tuple(SES_DETAIL_TYPES.values())
_SUPPRESSION: dict[str, ses.SuppressionReasons | None] = {
    "bounces-and-complaints": ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
    "bounces": ses.SuppressionReasons.BOUNCES_ONLY,
    "complaints": ses.SuppressionReasons.COMPLAINTS_ONLY,
    "account": None,  # no override: the account-level suppression list applies
}
# The tracker may wait RECORD_WAIT_SECONDS for Mark Sent; the rest is for its lookups and writes
# (with the SDK's retries), so the wait always ends, and the event fails cleanly, before the timeout.
_TRACKER_WORK_SECONDS = 10
TRACKER_TIMEOUT_SECONDS = math.ceil(RECORD_WAIT_SECONDS) + _TRACKER_WORK_SECONDS
_TRACKER_MEMORY_MB = 256
# Lambda retries a failed asynchronous event twice (the most it allows), after about 1 and 2 minutes:
# that covers a Mark Sent held up longer than the in-invocation wait.  An hour bounds it all.
TRACKER_ASYNC_RETRIES = 2
TRACKER_MAX_EVENT_AGE = Duration.hours(1)


@jsii.implements(lambda_.IDestination)
class SendOnlyQueueDestination:
    """An SQS on-failure destination whose grant is ``sqs:SendMessage`` alone.

    CDK's ``SqsDestination`` grants ``grant_send_messages`` (SendMessage plus GetQueueAttributes and
    GetQueueUrl); Lambda needs only SendMessage to deliver a failed event.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    # jsii passes the options (the destination type) positionally, the stubs declare them keyword-only:
    # take both ways, the grant does not depend on them.
    def bind(
        self, scope: Construct, fn: lambda_.IFunction, *_options: Any, **_keywords: Any
    ) -> lambda_.DestinationConfig:
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self._queue.queue_arn])
        )
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


class Tracking(Construct):
    """The configuration set, its event destination, the rule and the tracker function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        code: lambda_.Code,
        lock_table: dynamodb.Table,
    ) -> None:
        super().__init__(scope, construct_id)
        self.configuration_set = self._build_configuration_set(config)
        self.dead_letter_queue = self._build_dead_letter_queue(config)
        self._lambda = self._build_tracker(config, code, lock_table, self.dead_letter_queue)
        self.function = self._lambda.function
        self.rule = self._build_rule(config, self.dead_letter_queue)

    def _build_configuration_set(self, config: StepmailConfig) -> ses.ConfigurationSet:
        suppression = config.suppression
        configuration_set = ses.ConfigurationSet(
            self,
            constants.CONFIGURATION_SET_ID,
            configuration_set_name=config.tracking_configuration_set,
            # Publishes Reputation.BounceRate / ComplaintRate for this set (the account's are always on).
            reputation_metrics=True,
            sending_enabled=True,
            suppression_reasons=_SUPPRESSION.get(suppression),
            disable_suppression_list=suppression == "off",
        )
        configuration_set.add_event_destination(
            "ToEventBridge",
            destination=ses.EventDestination.event_bus(
                events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
            ),
            events=list(TRACKED_EVENTS),
        )
        return configuration_set

    def _build_dead_letter_queue(self, config: StepmailConfig) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            constants.TRACKER_DEAD_LETTER_QUEUE_ID,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(config.dead_letter_retention_days),
            # A failed event comes wrapped in Lambda's failure record (request, error): up to SQS's maximum.
            max_message_size_bytes=DEAD_LETTER_MAX_MESSAGE_BYTES,
        )
        nag.acknowledge(
            queue,
            "SQS3",
            "This queue is itself a dead-letter queue: the tracker's on-failure destination and its rule "
            "target's DLQ (cdk-nag only recognizes queue redrive policies and Lambda DeadLetterConfig). "
            "Nothing consumes it automatically, so a DLQ behind it would never receive anything.",
        )
        return queue

    def _build_tracker(
        self, config: StepmailConfig, code: lambda_.Code, lock_table: dynamodb.Table, dead_letters: sqs.IQueue
    ) -> _PythonFunction:
        settings = config.tracker_settings(lock_table=lock_table.table_name)
        tracker = _PythonFunction(
            self,
            constants.TRACKER_ID,
            config=config,
            code=code,
            handler=constants.TRACKER_HANDLER,
            description="stepmail tracker: records SES delivery events on each email's record",
            timeout_seconds=TRACKER_TIMEOUT_SECONDS,
            memory_mb=_TRACKER_MEMORY_MB,
            environment=settings.to_environment(),
        )
        # Exactly the tracker's calls: read/write index items, update records, query the id index.
        tracker.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[lock_table.table_arn],
            )
        )
        tracker.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{lock_table.table_arn}/index/{MESSAGE_ID_INDEX}"],
            )
        )
        tracker.function.configure_async_invoke(
            retry_attempts=TRACKER_ASYNC_RETRIES,
            max_event_age=TRACKER_MAX_EVENT_AGE,
            on_failure=SendOnlyQueueDestination(dead_letters),
        )
        return tracker

    def _build_rule(self, config: StepmailConfig, dead_letters: sqs.IQueue) -> events.Rule:
        return events.Rule(
            self,
            constants.DELIVERY_EVENTS_RULE_ID,
            description="stepmail: SES delivery events of the stack's configuration set -> tracker",
            event_pattern=events.EventPattern(
                source=["aws.ses"],
                detail_type=list(TRACKED_DETAIL_TYPES),
                detail={"mail": {"tags": {"ses:configuration-set": [config.tracking_configuration_set]}}},
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=8,
                    max_event_age=TRACKER_MAX_EVENT_AGE,
                    # CDK lets only this rule send to the queue (aws:SourceArn in the queue policy).
                    dead_letter_queue=dead_letters,
                )
            ],
        )
