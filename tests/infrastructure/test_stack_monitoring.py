"""Alarms, the alarm topic and its optional subscribers (email, Slack through AWS Chatbot)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from infra.config import StepmailConfig
from stepmail.adapters import metrics as stepmail_metrics
from tests.infrastructure.synth import Synthesized, as_text


def _topic_ref(synthesized: Synthesized) -> dict[str, str]:
    return {"Ref": synthesized.logical_id(synthesized.stack.monitoring.topic)}


def _alarm(synthesized: Synthesized, name: str) -> dict[str, Any]:
    return synthesized.resource(getattr(synthesized.stack.monitoring, name))["Properties"]


def test_topic_is_encrypted_with_a_rotating_key_that_alarms_may_use(synthesized: Synthesized) -> None:
    # Given the alarm topic
    topic = synthesized.resource(synthesized.stack.monitoring.topic)["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]

    # When we read its key
    key = synthesized.resources[key_id]["Properties"]

    # Then the key rotates and lets CloudWatch alarms publish (the aws/sns key cannot)
    assert key["EnableKeyRotation"] is True
    assert any(
        statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        for statement in key["KeyPolicy"]["Statement"]
    )


def test_topic_refuses_plain_http_and_accepts_only_our_alarms(synthesized: Synthesized) -> None:
    # Given both alarms' logical ids
    monitoring = synthesized.stack.monitoring
    alarm_ids = [synthesized.logical_id(alarm) for alarm in monitoring.alarms]

    # Then the topic policy denies plain HTTP and lets exactly these alarms publish
    synthesized.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [_topic_ref(synthesized)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ),
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": "sns:Publish",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Condition": {
                                    "ArnLike": {
                                        "aws:SourceArn": [
                                            {"Fn::GetAtt": [alarm_id, "Arn"]} for alarm_id in alarm_ids
                                        ]
                                    }
                                },
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_dead_letter_alarm_fires_on_one_visible_message(synthesized: Synthesized) -> None:
    # Given the DLQ alarm
    alarm = _alarm(synthesized, "dead_letter_alarm")
    dead_letter_queue_id = synthesized.logical_id(synthesized.stack.queueing.dead_letter_queue)

    # Then it watches the DLQ's visible messages and fires at the first one, to the topic
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letter_queue_id, "QueueName"]}}
    ]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [_topic_ref(synthesized)]


def test_workflow_alarm_fires_on_runs_that_really_failed_or_timed_out(synthesized: Synthesized) -> None:
    # Given the workflow alarm
    alarm = _alarm(synthesized, "workflow_alarm")
    state_machine_ref = {"Ref": synthesized.logical_id(synthesized.stack.workflow.state_machine)}

    # When we read the metrics it adds up
    metrics = {
        query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    [expression] = [query for query in alarm["Metrics"] if "Expression" in query]

    # Then it adds failed and timed-out runs of this state machine (aborted ones cannot happen to an
    # Express run), per minute, from the first one, and notifies the topic
    assert set(metrics) == {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert expression["Expression"] == "failed + timedOut" and expression["ReturnData"] is not False
    for stat in metrics.values():
        assert stat["Metric"]["Namespace"] == "AWS/States"
        assert stat["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": state_machine_ref}]
        assert (stat["Stat"], stat["Period"]) == ("Sum", 60)
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["AlarmActions"] == [_topic_ref(synthesized)]
    # And its description says these are real failures, not handled outcomes, and what to do
    description = alarm["AlarmDescription"]
    assert "dead-lettered and retried-later runs end in Pass states" in description
    assert "log group" in description and "redrive" in description


def test_retried_later_alarm_fires_on_a_sustained_rate_only(synthesized: Synthesized) -> None:
    # Given the retried-later alarm and its configured rate and window
    alarm = _alarm(synthesized, "retried_later_alarm")
    config = synthesized.config

    # Then it reads the starter's RetriedLater count (EMF: namespace stepmail, dimension service),
    # summed per minute, and fires when more than the configured count came back in each of the
    # configured number of minutes in a row (every datapoint of the window must breach)
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        stepmail_metrics.NAMESPACE,
        stepmail_metrics.RETRIED_LATER,
    )
    assert alarm["Dimensions"] == [
        {"Name": name, "Value": value} for name, value in stepmail_metrics.SERVICE_DIMENSION.items()
    ]
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 60)
    assert alarm["Threshold"] == config.retried_later_alarm_per_minute
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == config.retried_later_alarm_minutes
    assert alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) == config.retried_later_alarm_minutes
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [_topic_ref(synthesized)]


def test_retried_later_alarm_defaults_are_a_rate_over_minutes() -> None:
    # Given a configuration that sets no alarm threshold
    config = StepmailConfig(sender_identities=["example.com"], default_sender="a@example.com")

    # Then more than 5 a minute for 5 minutes in a row pages (a shorter burst does not)
    assert (config.retried_later_alarm_per_minute, config.retried_later_alarm_minutes) == (5, 5)


def test_tracker_dead_letter_alarm_fires_on_one_visible_event(full: Synthesized) -> None:
    synthesized = full  # the tracker exists only with delivery tracking (on in the full configuration)
    # Given the tracker's dead-letter queue alarm
    alarm = _alarm(synthesized, "tracker_dead_letter_alarm")
    tracking = synthesized.stack.tracking
    assert tracking is not None
    queue_id = synthesized.logical_id(tracking.dead_letter_queue)

    # Then it watches that queue's visible messages and fires at the first one, to the topic
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 1)
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [_topic_ref(synthesized)]


def test_email_subscription_only_when_an_alarm_email_is_configured(
    full: Synthesized, minimal: Synthesized
) -> None:
    # Given one configuration with an alarm email and one without
    assert full.config.alarm_email and not minimal.config.alarm_email

    # Then only the first subscribes that address to the topic
    full.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": full.config.alarm_email, "TopicArn": _topic_ref(full)},
    )
    minimal.template.resource_count_is("AWS::SNS::Subscription", 0)


def test_slack_channel_only_when_slack_is_configured(full: Synthesized, minimal: Synthesized) -> None:
    # Given one configuration with Slack ids and one without
    assert full.config.slack_channel_id and not minimal.config.slack_channel_id

    # Then only the first has a Chatbot channel on the topic, with read-only guardrails
    [channel] = full.template.find_resources("AWS::Chatbot::SlackChannelConfiguration").values()
    properties = channel["Properties"]
    assert properties["SlackWorkspaceId"] == full.config.slack_workspace_id
    assert properties["SlackChannelId"] == full.config.slack_channel_id
    assert properties["SnsTopicArns"] == [_topic_ref(full)]
    assert [as_text(policy) for policy in properties["GuardrailPolicies"]] == [
        "arn:${AWS::Partition}:iam::aws:policy/CloudWatchReadOnlyAccess"
    ]
    minimal.template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)
