"""Monitoring: alarms to an SNS topic (email, Slack), each one a thing a person must act on.

The dead-letter queue not empty (a message that can never be sent, with its reason); workflow runs
that really failed (handled outcomes end in Pass states and do not count); messages handed back to
the queue at a sustained rate (throttling or a stuck lock that outlasts the alarm's window); the mail
queue's oldest message too old (stuck or too slow for the load); the tracker's dead-letter queue not
empty (a delivery event that could not be recorded); the starter's and tracker's errors; any
function's throttles; SES's bounce and complaint rates above the configured thresholds.

What no alarm watches, on purpose: the sender's Lambda errors.  The sender reports the workflow's
error contract by raising (throttled, rejected, template error...): its Retry and Catch handle each
one, and what they end in is watched here (dead letters, retried-later runs, failed runs).  A single
bad message or a short throttling episode therefore trips the DLQ alarm alone, or nothing.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from stepmail.adapters import metrics as stepmail_metrics

_ALARM_PERIOD = Duration.minutes(1)
_AT_LEAST = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
# SES updates the reputation rates a few times an hour: a shorter period would see mostly no data.
_REPUTATION_PERIOD = Duration.minutes(15)
SES_NAMESPACE = "AWS/SES"
BOUNCE_RATE_METRIC = "Reputation.BounceRate"
COMPLAINT_RATE_METRIC = "Reputation.ComplaintRate"
#: What a function's errors mean, by the name the stack gives it (its alarm's description).
_ERRORS_MEANING = {
    "Starter": (
        "stepmail: the starter function failed a whole invocation (Lambda Errors): a timeout, a crash "
        "or a bad deployment; each record's own failures are partial batch responses, not errors. Its "
        "batch comes back after the visibility timeout."
    ),
    "Tracker": (
        "stepmail: the tracker could not record an SES delivery event (Lambda Errors): no record carried "
        "its message id even after waiting for Mark Sent, or it is not an SES event, or DynamoDB failed. "
        "Lambda retries it twice; then it lands in the tracker's dead-letter queue."
    ),
}


def stepmail_metric(
    name: str, *, period: Duration, statistic: str = cloudwatch.Stats.SUM, label: str | None = None
) -> cloudwatch.Metric:
    """One of the metrics the functions publish (EMF), with the service dimension they carry."""
    return cloudwatch.Metric(
        namespace=stepmail_metrics.NAMESPACE,
        metric_name=name,
        dimensions_map=dict(stepmail_metrics.SERVICE_DIMENSION),
        period=period,
        statistic=statistic,
        label=label,
    )


class Monitoring(Construct):
    """The alarm topic, its alarms and its optional subscribers (an email address, a Slack channel)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.IStateMachine,
        functions: dict[str, lambda_.IFunction],
        workflow_tasks: dict[str, lambda_.IFunction],
        tracker_dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        """
        Parameters
        ----------
        functions
            Each function to watch for errors and throttles, by a short name ("Starter"...) that
            names its alarms.
        workflow_tasks
            Functions the workflow invokes ("Sender"): watched for throttles only, since their errors
            are the workflow's contract (see the module docstring).
        tracker_dead_letter_queue
            Where delivery events the tracker could not record go (None without delivery tracking).
        """
        super().__init__(scope, construct_id)
        self.topic = self._build_topic(self._build_topic_key())
        self.dead_letter_alarm = self._build_dead_letter_alarm(dead_letter_queue)
        self.workflow_alarm = self._build_workflow_alarm(state_machine)
        self.retried_later_alarm = self._build_retried_later_alarm(config)
        self.queue_age_alarm = self._build_queue_age_alarm(queue, config.queue_age_alarm_seconds)
        self.tracker_dead_letter_alarm = (
            self._build_tracker_dead_letter_alarm(tracker_dead_letter_queue)
            if tracker_dead_letter_queue
            else None
        )
        self.error_alarms = {
            name: self._build_errors_alarm(name, function, config) for name, function in functions.items()
        }
        self.throttle_alarms = {
            name: self._build_throttles_alarm(name, function, config)
            for name, function in {**functions, **workflow_tasks}.items()
        }
        self.bounce_rate_alarm, self.complaint_rate_alarm = self._build_reputation_alarms(config)
        self._allow_alarms_to_publish(self.alarms)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        if config.slack_workspace_id and config.slack_channel_id:
            self._build_slack_channel(config.slack_workspace_id, config.slack_channel_id)

    def _build_topic_key(self) -> kms.Key:
        # A customer-managed key, because CloudWatch alarms cannot publish to a topic encrypted with the
        # AWS-managed aws/sns key (its key policy cannot grant the cloudwatch service principal).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="stepmail alarm topic encryption",
            enable_key_rotation=True,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        return key

    def _build_topic(self, key: kms.IKey) -> sns.Topic:
        return sns.Topic(
            self,
            constants.ALARM_TOPIC_ID,
            display_name="stepmail alarms",
            master_key=key,
            enforce_ssl=True,
        )

    def _build_dead_letter_alarm(self, dead_letter_queue: sqs.IQueue) -> cloudwatch.Alarm:
        metric = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=_ALARM_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        return self._alarm(
            constants.DEAD_LETTER_ALARM_ID,
            metric,
            description=(
                "stepmail: the dead-letter queue is not empty: a message could not be sent and will not be "
                "retried (invalid, rejected by SES, an attachment missing, a template error, or failed "
                "max_receive_count deliveries). Run `stepmail dlq list` for each reason; fix the message, "
                "template or sender identity, then `stepmail dlq redrive`."
            ),
        )

    def _build_workflow_alarm(self, state_machine: sfn.IStateMachine) -> cloudwatch.Alarm:
        # Handled outcomes (sent, duplicate, lock busy, dead-lettered, retry later) end in Pass or
        # Succeed states, so ExecutionsFailed counts only errors no Catch handled.  ExecutionsAborted
        # is left out: Express runs cannot be stopped (StopExecution does not support EXPRESS).
        runs_not_completed = cloudwatch.MathExpression(
            expression="failed + timedOut",
            using_metrics={
                "failed": state_machine.metric_failed(period=_ALARM_PERIOD, statistic=cloudwatch.Stats.SUM),
                "timedOut": state_machine.metric_timed_out(
                    period=_ALARM_PERIOD, statistic=cloudwatch.Stats.SUM
                ),
            },
            label="Runs failed or timed out",
            period=_ALARM_PERIOD,
        )
        return self._alarm(
            constants.WORKFLOW_ALARM_ID,
            runs_not_completed,
            description=(
                "stepmail: workflow runs really failed or timed out (ExecutionsFailed + ExecutionsTimedOut; "
                "dead-lettered and retried-later runs end in Pass states and are not counted). Such a run "
                "skipped every Catch (States.DataLimitExceeded, States.Runtime, the dead-letter send "
                "failing) or ran out of time: its message goes back to the queue and, after "
                "max_receive_count deliveries, to the DLQ without a reason, and its lock blocks the email "
                "until the lease expires. Find the run's error and cause in the state machine's log group, "
                "fix it, then redrive."
            ),
        )

    def _build_retried_later_alarm(self, config: StepmailConfig) -> cloudwatch.Alarm:
        per_minute, minutes = config.retried_later_alarm_per_minute, config.retried_later_alarm_minutes
        return self._alarm(
            constants.RETRIED_LATER_ALARM_ID,
            stepmail_metric(stepmail_metrics.RETRIED_LATER, period=_ALARM_PERIOD),
            threshold=per_minute,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # Every minute of the window must breach: a shorter episode, or a quiet minute in it, does not.
            evaluation_periods=minutes,
            description=(
                f"stepmail: more than {per_minute} messages a minute were handed back to the queue, "
                f"{minutes} minutes in a row (RetriedLater: lock busy, SES throttled past the workflow's "
                "retries, a transient AWS error). Sustained SES throttling: compare SesThrottled on the "
                "dashboard, then raise the SES quota or set ses_max_send_rate / max_concurrency lower. "
                "A stuck lock (lock busy): a run died holding it; it frees itself when its lease expires. "
                "Otherwise the starter's 'retry later' log lines name the error."
            ),
        )

    def _build_tracker_dead_letter_alarm(self, dead_letter_queue: sqs.IQueue) -> cloudwatch.Alarm:
        metric = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=_ALARM_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        return self._alarm(
            constants.TRACKER_DEAD_LETTER_ALARM_ID,
            metric,
            description=(
                "stepmail: the tracker's dead-letter queue is not empty: an SES delivery event could not "
                "be recorded on its email's record (none carried its message id after the tracker's wait "
                "and two retries, or the event was not an SES event, or EventBridge could not invoke the "
                "tracker). Read the messages (aws sqs receive-message): an event for an email without a "
                "record was sent through the tracked configuration set by something else, or its run "
                "died between SES and Mark Sent (the one duplicate window: check `stepmail status`). "
                "Delete them once understood."
            ),
        )

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        """Every alarm of the stack (the topic accepts exactly these)."""
        tracker = [self.tracker_dead_letter_alarm] if self.tracker_dead_letter_alarm else []
        return [
            self.dead_letter_alarm,
            self.workflow_alarm,
            self.retried_later_alarm,
            self.queue_age_alarm,
            *tracker,
            *self.error_alarms.values(),
            *self.throttle_alarms.values(),
            self.bounce_rate_alarm,
            self.complaint_rate_alarm,
        ]

    def _build_queue_age_alarm(self, queue: sqs.IQueue, threshold_seconds: int) -> cloudwatch.Alarm:
        metric = queue.metric_approximate_age_of_oldest_message(
            period=_ALARM_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        return self._alarm(
            constants.QUEUE_AGE_ALARM_ID,
            metric,
            threshold=threshold_seconds,
            # Five minutes in a row: one slow batch is not a stuck pipeline.
            evaluation_periods=5,
            description=(
                f"stepmail: the mail queue's oldest message is older than {threshold_seconds} s. The "
                "pipeline is stuck (starter failing, workflow throttled) or too slow for the load."
            ),
        )

    def _build_errors_alarm(
        self, name: str, function: lambda_.IFunction, config: StepmailConfig
    ) -> cloudwatch.Alarm:
        return self._alarm(
            f"{name}Errors",
            function.metric_errors(period=_ALARM_PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=config.lambda_errors_alarm_threshold,
            description=_ERRORS_MEANING.get(name, f"stepmail: the {name.lower()} function failed.")
            + " Its log group has the error.",
        )

    def _build_throttles_alarm(
        self, name: str, function: lambda_.IFunction, config: StepmailConfig
    ) -> cloudwatch.Alarm:
        return self._alarm(
            f"{name}Throttles",
            function.metric_throttles(period=_ALARM_PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=config.lambda_throttles_alarm_threshold,
            description=(
                f"stepmail: the {name.lower()} function was throttled (Lambda Throttles): the account's "
                "concurrency is exhausted or a reserved concurrency is too low. Raise the account's "
                "concurrency quota or find what else uses it."
            ),
        )

    def _build_reputation_alarms(self, config: StepmailConfig) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        def rate(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=SES_NAMESPACE,
                metric_name=metric_name,
                period=_REPUTATION_PERIOD,
                statistic=cloudwatch.Stats.MAXIMUM,
            )

        bounce = self._alarm(
            constants.BOUNCE_RATE_ALARM_ID,
            rate(BOUNCE_RATE_METRIC),
            threshold=config.bounce_rate_alarm_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=(
                f"stepmail: the SES account's bounce rate is above {config.bounce_rate_alarm_threshold:.2%}. "
                "SES reviews accounts at 5 % and may pause sending at 10 %: find the bounced emails "
                "(`stepmail status`) and stop sending to bad addresses."
            ),
        )
        complaint = self._alarm(
            constants.COMPLAINT_RATE_ALARM_ID,
            rate(COMPLAINT_RATE_METRIC),
            threshold=config.complaint_rate_alarm_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=(
                "stepmail: the SES account's complaint rate is above "
                f"{config.complaint_rate_alarm_threshold:.2%}. SES reviews accounts at 0.1 % and may pause "
                "sending at 0.5 %."
            ),
        )
        return bounce, complaint

    def _allow_alarms_to_publish(self, alarms: list[cloudwatch.Alarm]) -> None:
        # enforce_ssl gives the topic a policy, which replaces SNS's default one: say who may publish.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowStepmailAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": [alarm.alarm_arn for alarm in alarms]}},
            )
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        description: str,
        threshold: float = 1,
        comparison: cloudwatch.ComparisonOperator = _AT_LEAST,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            # No data means nothing failed (SQS, Step Functions, Lambda and SES publish nothing when idle).
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)  # so the channel also hears when it is over
        return alarm

    def _build_slack_channel(self, workspace_id: str, channel_id: str) -> chatbot.SlackChannelConfiguration:
        return chatbot.SlackChannelConfiguration(
            self,
            constants.SLACK_CHANNEL_ID,
            slack_channel_configuration_name=f"{Stack.of(self).stack_name}-alarms",
            slack_workspace_id=workspace_id,
            slack_channel_id=channel_id,
            notification_topics=[self.topic],
            # Without guardrails Chatbot applies AdministratorAccess to what channel members may run.
            guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchReadOnlyAccess")],
        )
