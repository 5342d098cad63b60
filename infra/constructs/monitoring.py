"""Monitoring: alarms on the dead-letter queue and on failed runs, to an SNS topic (email, Slack)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig

_ALARM_PERIOD = Duration.minutes(1)


class Monitoring(Construct):
    """The alarm topic, its alarms and its optional subscribers (an email address, a Slack channel)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StepmailConfig,
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._build_topic(self._build_topic_key())
        self.dead_letter_alarm = self._build_dead_letter_alarm(dead_letter_queue)
        self.workflow_alarm = self._build_workflow_alarm(state_machine)
        self._allow_alarms_to_publish([self.dead_letter_alarm, self.workflow_alarm])
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
                "stepmail: the dead-letter queue is not empty. Each message there carries its reason; "
                "list and redrive them with `stepmail dlq`."
            ),
        )

    def _build_workflow_alarm(self, state_machine: sfn.IStateMachine) -> cloudwatch.Alarm:
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
                "stepmail: workflow runs failed or timed out (ExecutionsFailed + ExecutionsTimedOut). "
                "Inspect them in the state machine's CloudWatch Logs."
            ),
        )

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

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, *, description: str) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # No data means nothing failed (SQS and Step Functions publish nothing when idle).
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
