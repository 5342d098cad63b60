"""Who gets paged when: every alarm of the template evaluated against the metrics an episode produces.

Each scenario writes, minute by minute, the metrics the pipeline publishes during one episode (a bad
message, an SES throttling episode, a run that really failed...), as the functions, the queues and
the workflow's contract say they would be: handled outcomes end in Pass states (not counted as
failed runs), the sender raises the contract's errors (counted as its Lambda errors), the starter
counts each message it hands back (``RetriedLater``).  A small model of CloudWatch's evaluation then
says which alarms would fire: an alarm is in ALARM when, in its last ``EvaluationPeriods``
datapoints, at least ``DatapointsToAlarm`` breach its threshold; missing data does not breach
(``TreatMissingData: notBreaching``, which every alarm here sets and the model checks).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra import constants
from stepmail.adapters import metrics as stepmail_metrics
from tests.infrastructure.synth import Synthesized, as_text

MINUTES = 20
MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]
Series = list[float | None]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
}


def metric_key(namespace: str, name: str, dimensions: dict[str, str]) -> MetricKey:
    return namespace, name, tuple(sorted(dimensions.items()))


def _template_key(metric: dict[str, Any]) -> MetricKey:
    dimensions = {d["Name"]: as_text(d["Value"]) for d in metric.get("Dimensions", [])}
    return metric_key(metric["Namespace"], metric["MetricName"], dimensions)


def _datapoints(alarm: dict[str, Any], metrics: dict[MetricKey, Series]) -> Series:
    """The alarm's datapoint per minute: its metric, or its math expression (sums only) of metrics."""
    if "MetricName" in alarm:
        assert alarm["Period"] == 60 or _template_key(alarm) not in metrics, "scenarios are per minute"
        return metrics.get(_template_key(alarm), [None] * MINUTES)
    by_id = {query["Id"]: query for query in alarm["Metrics"]}
    [expression] = [query["Expression"] for query in alarm["Metrics"] if "Expression" in query]
    terms = [by_id[term.strip()]["MetricStat"] for term in expression.split("+")]
    assert all(term["Period"] == 60 for term in terms)
    series = [metrics.get(_template_key(term["Metric"]), [None] * MINUTES) for term in terms]
    return [
        None if all(value is None for value in values) else sum(value or 0 for value in values)
        for values in zip(*series, strict=True)
    ]


def fires(alarm: dict[str, Any], metrics: dict[MetricKey, Series]) -> bool:
    """Whether the alarm reaches ALARM at any minute of the scenario."""
    assert alarm["TreatMissingData"] == "notBreaching"
    breaches = _COMPARISONS[alarm["ComparisonOperator"]]
    periods = alarm["EvaluationPeriods"]
    needed = alarm.get("DatapointsToAlarm", periods)
    points = _datapoints(alarm, metrics)
    for end in range(MINUTES):
        window = points[max(0, end - periods + 1) : end + 1]
        if sum(1 for value in window if value is not None and breaches(value, alarm["Threshold"])) >= needed:
            return True
    return False


@dataclass
class Episode:
    """The metrics of one episode, written by the names of the stack's parts."""

    synthesized: Synthesized
    metrics: dict[MetricKey, Series] = field(default_factory=dict)

    def _set(self, key: MetricKey, minutes: range, value: float) -> Episode:
        series = self.metrics.setdefault(key, [None] * MINUTES)
        for minute in minutes:
            series[minute] = value
        return self

    def _queue(self, queue: Any, name: str) -> MetricKey:
        queue_name = "${" + self.synthesized.logical_id(queue) + ".QueueName}"
        return metric_key("AWS/SQS", name, {"QueueName": queue_name})

    def dead_letters(self, minutes: range, count: float) -> Episode:
        dlq = self.synthesized.stack.queueing.dead_letter_queue
        return self._set(self._queue(dlq, "ApproximateNumberOfMessagesVisible"), minutes, count)

    def tracker_dead_letters(self, minutes: range, count: float) -> Episode:
        tracking = self.synthesized.stack.tracking
        assert tracking is not None
        return self._set(
            self._queue(tracking.dead_letter_queue, "ApproximateNumberOfMessagesVisible"), minutes, count
        )

    def oldest_message_seconds(self, minutes: range, age: float) -> Episode:
        queue = self.synthesized.stack.queueing.queue
        return self._set(self._queue(queue, "ApproximateAgeOfOldestMessage"), minutes, age)

    def function(self, name: str, metric: str, minutes: range, count: float) -> Episode:
        stack = self.synthesized.stack
        functions = {"Starter": stack.starter.function, "Sender": stack.sender.function}
        if stack.tracking:
            functions["Tracker"] = stack.tracking.function
        ref = "${" + self.synthesized.logical_id(functions[name]) + "}"
        return self._set(metric_key("AWS/Lambda", metric, {"FunctionName": ref}), minutes, count)

    def runs(self, metric: str, minutes: range, count: float) -> Episode:
        ref = "${" + self.synthesized.logical_id(self.synthesized.stack.workflow.state_machine) + "}"
        return self._set(metric_key("AWS/States", metric, {"StateMachineArn": ref}), minutes, count)

    def counted(self, name: str, minutes: range, count: float, **dimensions: str) -> Episode:
        key = metric_key(
            stepmail_metrics.NAMESPACE, name, {**stepmail_metrics.SERVICE_DIMENSION, **dimensions}
        )
        return self._set(key, minutes, count)

    def firing(self) -> set[str]:
        """The construct ids of the alarms that would page."""
        alarms = self.synthesized.template.find_resources("AWS::CloudWatch::Alarm")
        firing = {
            logical_id for logical_id, alarm in alarms.items() if fires(alarm["Properties"], self.metrics)
        }
        return {self._construct_id(logical_id) for logical_id in firing}

    def _construct_id(self, logical_id: str) -> str:
        by_logical_id = {
            self.synthesized.logical_id(alarm): alarm.node.id
            for alarm in self.synthesized.stack.monitoring.alarms
        }
        return by_logical_id[logical_id]


def _from(minute: int) -> range:
    return range(minute, MINUTES)


def test_one_invalid_message_pages_only_for_the_dead_letter_queue(synthesized: Synthesized) -> None:
    # Given an invalid message: the starter dead-letters it at once and counts it
    episode = (
        Episode(synthesized)
        .counted(stepmail_metrics.DEAD_LETTERED, range(1, 2), 1, reason="invalid-message")
        .dead_letters(_from(1), 1)
    )

    # Then only the DLQ alarm fires (until someone redrives or deletes the letter)
    assert episode.firing() == {constants.DEAD_LETTER_ALARM_ID}


def test_one_message_the_workflow_dead_letters_pages_only_for_the_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    # Given a message whose template fails: the sender raises TemplateError (a Lambda error), the
    # workflow catches it, sends the letter and ends in its Pass state (a succeeded run)
    episode = (
        Episode(synthesized)
        .function("Sender", "Errors", range(1, 2), 1)
        .runs("ExecutionsSucceeded", range(1, 2), 1)
        .counted(stepmail_metrics.DEAD_LETTERED, range(1, 2), 1, reason="workflow")
        .dead_letters(_from(1), 1)
    )

    # Then only the DLQ alarm fires
    assert episode.firing() == {constants.DEAD_LETTER_ALARM_ID}


def _throttling(synthesized: Synthesized, minutes: int, *, handed_back_per_minute: float) -> Episode:
    # SES throttles for `minutes`: every throttled send is a sender error the workflow retries; runs
    # that exhaust their retries end in Retry Later (a Pass state) and the starter hands them back;
    # the queue backs up for a while.  No run fails, nothing is dead-lettered.
    during = range(2, 2 + minutes)
    return (
        Episode(synthesized)
        .function("Sender", "Errors", during, 300)
        .counted(stepmail_metrics.THROTTLED, during, 300)
        .counted(stepmail_metrics.RETRIED_LATER, during, handed_back_per_minute)
        .runs("ExecutionsSucceeded", during, 200)
        .runs("ExecutionsFailed", during, 0)
        .oldest_message_seconds(during, 60.0 * minutes)
    )


def test_a_throttling_episode_shorter_than_the_window_pages_nobody(synthesized: Synthesized) -> None:
    # Given an SES throttling episode one minute shorter than the retried-later alarm's window
    window = synthesized.config.retried_later_alarm_minutes
    episode = _throttling(synthesized, window - 1, handed_back_per_minute=40)

    # Then no alarm fires: not the failed runs, not the sender's errors, not the retried-later rate
    assert episode.firing() == set()


def test_a_throttling_episode_as_long_as_the_window_pages_for_retried_later_only(
    synthesized: Synthesized,
) -> None:
    # Given the same episode lasting exactly the alarm's window
    window = synthesized.config.retried_later_alarm_minutes
    episode = _throttling(synthesized, window, handed_back_per_minute=40)

    # Then the retried-later alarm alone fires
    assert episode.firing() == {constants.RETRIED_LATER_ALARM_ID}


@pytest.mark.parametrize(("above", "pages"), [(0, False), (1, True)])
def test_retried_later_pages_only_above_its_rate(synthesized: Synthesized, above: int, pages: bool) -> None:
    # Given messages handed back at the configured rate (or one more) every minute for twice the window
    config = synthesized.config
    rate = config.retried_later_alarm_per_minute + above
    episode = Episode(synthesized).counted(
        stepmail_metrics.RETRIED_LATER, range(1, 1 + 2 * config.retried_later_alarm_minutes), rate
    )

    # Then it pages only when the rate is above the threshold
    assert (constants.RETRIED_LATER_ALARM_ID in episode.firing()) is pages


def test_a_quiet_minute_inside_a_long_episode_restarts_the_window(synthesized: Synthesized) -> None:
    # Given two bursts of handed-back messages, each one minute shorter than the window, one quiet
    # minute apart
    window = synthesized.config.retried_later_alarm_minutes
    rate = synthesized.config.retried_later_alarm_per_minute + 10
    episode = (
        Episode(synthesized)
        .counted(stepmail_metrics.RETRIED_LATER, range(1, window), rate)
        .counted(stepmail_metrics.RETRIED_LATER, range(window + 1, 2 * window), rate)
    )

    # Then nothing fires: the alarm wants every minute of its window
    assert episode.firing() == set()


def test_a_run_that_really_fails_pages_for_failed_runs(synthesized: Synthesized) -> None:
    # Given a run that hits States.DataLimitExceeded (no Catch handles it): the run fails, the starter
    # hands its message back once
    episode = (
        Episode(synthesized)
        .runs("ExecutionsFailed", range(3, 4), 1)
        .counted(stepmail_metrics.RETRIED_LATER, range(3, 4), 1)
    )

    # Then the failed-runs alarm fires, alone
    assert episode.firing() == {constants.WORKFLOW_ALARM_ID}


def test_an_event_before_mark_sent_pages_nobody(full: Synthesized) -> None:
    synthesized = full  # the tracker exists only with delivery tracking (on in the full configuration)
    # Given SES events that overtook Mark Sent: the tracker waited for the record and recorded them
    episode = (
        Episode(synthesized)
        .function("Tracker", "Invocations", range(1, 3), 20)
        .counted(stepmail_metrics.DELIVERY_EVENTS, range(1, 3), 20, type="sent")
    )

    # Then no alarm fires (the tracker had no error)
    assert episode.firing() == set()


def test_an_event_that_can_never_be_recorded_pages_for_the_tracker(full: Synthesized) -> None:
    synthesized = full  # the tracker exists only with delivery tracking (on in the full configuration)
    # Given an event no record carries: the tracker fails after its wait, Lambda retries it twice
    # (about 1 and 2 minutes later), then sends it to the tracker's dead-letter queue
    episode = (
        Episode(synthesized)
        .function("Tracker", "Errors", range(1, 2), 1)
        .function("Tracker", "Errors", range(2, 3), 1)
        .function("Tracker", "Errors", range(4, 5), 1)
        .tracker_dead_letters(_from(5), 1)
    )

    # Then the tracker's dead-letter queue alarm fires, and its errors alarm where one error a minute
    # reaches the configured threshold (the default, 1); nothing about sending
    errors = {"TrackerErrors"} if synthesized.config.lambda_errors_alarm_threshold <= 1 else set()
    assert episode.firing() == {constants.TRACKER_DEAD_LETTER_ALARM_ID, *errors}
