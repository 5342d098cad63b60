"""The alarms beyond the DLQ and failed runs (queue age, functions, SES reputation) and the dashboard."""

from __future__ import annotations

import json
from typing import Any

from stepmail.adapters import metrics
from tests.infrastructure.synth import Synthesized, as_text


def _properties(synthesized: Synthesized, alarm: Any) -> dict[str, Any]:
    return synthesized.resource(alarm)["Properties"]


def _topic_ref(synthesized: Synthesized) -> dict[str, str]:
    return {"Ref": synthesized.logical_id(synthesized.stack.monitoring.topic)}


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(synthesized: Synthesized) -> None:
    # Given every alarm of the stack
    alarms = synthesized.template.find_resources("AWS::CloudWatch::Alarm")

    # Then each is one the topic accepts, and tells the topic both ways
    assert set(alarms) == {synthesized.logical_id(alarm) for alarm in synthesized.stack.monitoring.alarms}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [_topic_ref(synthesized)]
        assert alarm["Properties"]["OKActions"] == [_topic_ref(synthesized)]


def test_queue_age_alarm_uses_the_configured_threshold_over_five_minutes(synthesized: Synthesized) -> None:
    # Given the oldest-message alarm
    alarm = _properties(synthesized, synthesized.stack.monitoring.queue_age_alarm)
    queue_id = synthesized.logical_id(synthesized.stack.queueing.queue)

    # Then it watches the mail queue's oldest message against the configured age, five minutes running
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert alarm["Threshold"] == synthesized.config.queue_age_alarm_seconds
    assert alarm["EvaluationPeriods"] == 5
    assert alarm["Statistic"] == "Maximum"


def test_starter_and_tracker_have_errors_alarms_and_every_function_a_throttles_alarm(
    synthesized: Synthesized,
) -> None:
    # Given the three functions and their alarms
    stack, config = synthesized.stack, synthesized.config
    functions = {"Starter": stack.starter.function, "Sender": stack.sender.function}
    if stack.tracking is not None:  # delivery tracking is opt-in (FULL_CONFIG turns it on)
        functions["Tracker"] = stack.tracking.function
    monitoring = stack.monitoring

    # Then the starter and the tracker have an errors alarm, and no sender errors alarm exists (its
    # errors are the workflow's contract: a throttle or a bad message is not a page)
    assert set(monitoring.error_alarms) == {"Starter", "Tracker"} & set(functions)
    assert not any("SenderErrors" in synthesized.logical_id(alarm) for alarm in monitoring.alarms)
    # And every function has a throttles alarm, each on its own function with the configured thresholds
    assert set(monitoring.throttle_alarms) == set(functions)
    for name, function in functions.items():
        function_ref = {"Ref": synthesized.logical_id(function)}
        watched = [(monitoring.throttle_alarms[name], "Throttles", config.lambda_throttles_alarm_threshold)]
        if name in monitoring.error_alarms:
            watched.append((monitoring.error_alarms[name], "Errors", config.lambda_errors_alarm_threshold))
        for alarm, metric, threshold in watched:
            properties = _properties(synthesized, alarm)
            assert (properties["Namespace"], properties["MetricName"]) == ("AWS/Lambda", metric)
            assert properties["Dimensions"] == [{"Name": "FunctionName", "Value": function_ref}]
            assert (properties["Statistic"], properties["Period"]) == ("Sum", 60)
            assert properties["Threshold"] == threshold
            assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_tracker_errors_alarm_says_what_happened_and_where_it_goes(synthesized: Synthesized) -> None:
    # Given the tracker's errors alarm (none without delivery tracking: no tracker)
    if synthesized.stack.tracking is None:
        assert "Tracker" not in synthesized.stack.monitoring.error_alarms
        return
    alarm = _properties(synthesized, synthesized.stack.monitoring.error_alarms["Tracker"])

    # Then its description says an event could not be recorded even after the wait, and where it ends
    assert "even after waiting for Mark Sent" in alarm["AlarmDescription"]
    assert "dead-letter queue" in alarm["AlarmDescription"]


def test_reputation_alarms_watch_the_accounts_bounce_and_complaint_rates(synthesized: Synthesized) -> None:
    # Given the two reputation alarms
    monitoring, config = synthesized.stack.monitoring, synthesized.config
    bounce = _properties(synthesized, monitoring.bounce_rate_alarm)
    complaint = _properties(synthesized, monitoring.complaint_rate_alarm)

    # Then they read SES's account-wide rates (no dimensions) against the configured thresholds
    assert (bounce["Namespace"], bounce["MetricName"]) == ("AWS/SES", "Reputation.BounceRate")
    assert (complaint["Namespace"], complaint["MetricName"]) == ("AWS/SES", "Reputation.ComplaintRate")
    assert bounce["Threshold"] == config.bounce_rate_alarm_threshold
    assert complaint["Threshold"] == config.complaint_rate_alarm_threshold
    for alarm in (bounce, complaint):
        assert "Dimensions" not in alarm
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Period"] == 900


def test_dashboard_shows_every_stage_and_our_own_metrics(synthesized: Synthesized) -> None:
    # Given the dashboard's body (CloudFormation joins it from text and references)
    dashboard = synthesized.resource(synthesized.stack.dashboard.dashboard)["Properties"]
    body = json.loads(
        as_text(dashboard["DashboardBody"]).replace("${AWS::Region}", "r").replace('"${', '"ref:${')
    )

    # When we collect each graph's title and the metrics it plots
    widgets = {widget["properties"]["title"]: json.dumps(widget["properties"]) for widget in body["widgets"]}

    # Then the queue, workflow, functions, our EMF metrics, delivery events and reputation are all there
    assert len(widgets) == len(body["widgets"]) >= 12
    assert "ApproximateAgeOfOldestMessage" in widgets["Mail queue: oldest message (s)"]
    assert "ExecutionsFailed" in widgets["Workflow runs"] and "ExecutionsTimedOut" in widgets["Workflow runs"]
    retried = widgets["Handed back to the queue (RetriedLater)"]
    assert f'"{metrics.NAMESPACE}", "{metrics.RETRIED_LATER}"' in retried and '"period": 60' in retried
    assert f'"value": {synthesized.config.retried_later_alarm_per_minute}' in retried
    functions = 3 if synthesized.stack.tracking else 2  # the tracker only with delivery tracking
    assert widgets["Dead-letter queues"].count("ApproximateNumberOfMessagesVisible") == functions - 1
    assert widgets["Function errors and throttles"].count("Errors") == functions
    for name in (metrics.EMAILS_SENT, metrics.DUPLICATES_SKIPPED, metrics.THROTTLED):
        assert f'"{metrics.NAMESPACE}", "{name}"' in widgets["Emails"]
    assert (
        metrics.DEAD_LETTERED in widgets["Dead-lettered by reason"]
        and "SEARCH" in widgets["Dead-lettered by reason"]
    )
    assert metrics.ATTACHMENT_BYTES in widgets["Attachment bytes sent"]
    assert metrics.DELIVERY_EVENTS in widgets["Delivery events by type (SES)"]
    assert "Reputation.BounceRate" in widgets["SES bounce rate"]
    assert str(synthesized.config.bounce_rate_alarm_threshold) in widgets["SES bounce rate"]
