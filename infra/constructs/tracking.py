"""Delivery tracking: SES configuration set -> EventBridge -> tracker Lambda -> the email's record.

The stack's configuration set is what the sender uses when a message names none.  Its event
destination publishes send, delivery, bounce, complaint, reject and delivery-delay events to the
default event bus (the only bus SES publishes to); a rule that matches this configuration set's
events invokes the tracker, which finds the email's record by SES message id (the lock table's
``byMessageId`` index over the id Mark Sent writes) and appends the event.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ses as ses
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.constructs.functions import _PythonFunction
from infra.resources import SES_DETAIL_TYPES
from stepmail.core.tracking import MESSAGE_ID_INDEX

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
_TRACKER_TIMEOUT_SECONDS = 10
_TRACKER_MEMORY_MB = 256


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
        self._lambda = self._build_tracker(config, code, lock_table)
        self.function = self._lambda.function
        self.rule = self._build_rule(config)

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

    def _build_tracker(
        self, config: StepmailConfig, code: lambda_.Code, lock_table: dynamodb.Table
    ) -> _PythonFunction:
        settings = config.tracker_settings(lock_table=lock_table.table_name)
        tracker = _PythonFunction(
            self,
            constants.TRACKER_ID,
            config=config,
            code=code,
            handler=constants.TRACKER_HANDLER,
            description="stepmail tracker: records SES delivery events on each email's record",
            timeout_seconds=_TRACKER_TIMEOUT_SECONDS,
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
        # An event that overtook Mark Sent fails and is retried by Lambda's asynchronous invoke
        # (after ~1 and ~2 minutes); older events than an hour are no longer worth recording.
        tracker.function.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(1))
        return tracker

    def _build_rule(self, config: StepmailConfig) -> events.Rule:
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
                targets.LambdaFunction(self.function, retry_attempts=8, max_event_age=Duration.hours(1))
            ],
        )
