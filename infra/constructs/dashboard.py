"""The CloudWatch dashboard: the whole pipeline on one page, in the order an email goes through it.

Rows: what came in and what is waiting (queue, DLQs), what the workflow did (runs by outcome, and the
messages handed back to the queue against their alarm threshold), what the functions did
(invocations, errors, throttles, duration), what stepmail counted itself (emails sent, duplicates,
dead letters by reason, throttled sends, attachment bytes — Powertools EMF), what SES said afterwards
(delivery events by type) and the account's reputation (bounce and complaint rates against their
alarm thresholds).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.constructs.monitoring import (
    BOUNCE_RATE_METRIC,
    COMPLAINT_RATE_METRIC,
    SES_NAMESPACE,
    stepmail_metric,
)
from stepmail.adapters import metrics as stepmail_metrics

_PERIOD = Duration.minutes(5)
_MINUTE = Duration.minutes(1)  # the retried-later alarm's period: its graph plots the same sums
_WIDTH = 8  # three graphs per row (the grid is 24 wide)


def by_dimension(name: str, dimension: str, *, label: str) -> cloudwatch.MathExpression:
    """Every series of a stepmail metric split by ``dimension`` (one line per reason, per event type)."""
    schema = f"{{{stepmail_metrics.NAMESPACE},service,{dimension}}}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{schema} MetricName=\"{name}\"', 'Sum', {int(_PERIOD.to_seconds())})",
        using_metrics={},
        label=label,
        period=_PERIOD,
    )


class Dashboard(Construct):
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
        tracker_dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            constants.DASHBOARD_ID,
            dashboard_name=f"{Stack.of(self).stack_name}-pipeline",
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(*self._queue_widgets(queue, dead_letter_queue, tracker_dead_letter_queue))
        self.dashboard.add_widgets(*self._workflow_widgets(state_machine, config))
        self.dashboard.add_widgets(*self._function_widgets(functions))
        self.dashboard.add_widgets(*self._stepmail_widgets())
        self.dashboard.add_widgets(*self._ses_widgets(config))

    @staticmethod
    def _graph(title: str, metrics: list[cloudwatch.IMetric], **options: object) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=metrics, width=_WIDTH, **options)  # type: ignore[arg-type]

    def _queue_widgets(
        self, queue: sqs.IQueue, dead_letters: sqs.IQueue, tracker_dead_letters: sqs.IQueue | None
    ) -> list[cloudwatch.IWidget]:
        dead_letter_counts: list[cloudwatch.IMetric] = [
            dead_letters.metric_approximate_number_of_messages_visible(period=_PERIOD, label="messages")
        ]
        if tracker_dead_letters:
            dead_letter_counts.append(
                tracker_dead_letters.metric_approximate_number_of_messages_visible(
                    period=_PERIOD, label="delivery events (tracker)"
                )
            )
        return [
            self._graph(
                "Mail queue: in and waiting",
                [
                    queue.metric_number_of_messages_sent(period=_PERIOD, label="sent by producers"),
                    queue.metric_approximate_number_of_messages_visible(period=_PERIOD, label="waiting"),
                    queue.metric_approximate_number_of_messages_not_visible(
                        period=_PERIOD, label="in flight"
                    ),
                ],
            ),
            self._graph(
                "Mail queue: oldest message (s)",
                [queue.metric_approximate_age_of_oldest_message(period=_PERIOD, statistic="Maximum")],
            ),
            self._graph("Dead-letter queues", dead_letter_counts),
        ]

    def _workflow_widgets(
        self, state_machine: sfn.IStateMachine, config: StepmailConfig
    ) -> list[cloudwatch.IWidget]:
        retried_later = stepmail_metric(stepmail_metrics.RETRIED_LATER, period=_MINUTE, label="per minute")
        return [
            self._graph(
                "Workflow runs",
                [
                    state_machine.metric_started(period=_PERIOD, label="started"),
                    state_machine.metric_succeeded(period=_PERIOD, label="succeeded"),
                    state_machine.metric_failed(period=_PERIOD, label="failed"),
                    state_machine.metric_timed_out(period=_PERIOD, label="timed out"),
                ],
            ),
            self._graph(
                "Workflow duration (ms)",
                [state_machine.metric_time(period=_PERIOD, statistic="p99", label="p99")],
            ),
            self._graph(
                "Handed back to the queue (RetriedLater)",
                [retried_later],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=config.retried_later_alarm_per_minute,
                        label=f"alarm: above this {config.retried_later_alarm_minutes} min in a row",
                    )
                ],
            ),
        ]

    def _function_widgets(self, functions: dict[str, lambda_.IFunction]) -> list[cloudwatch.IWidget]:
        def each(metric: str, statistic: str = "Sum") -> list[cloudwatch.IMetric]:
            return [
                function.metric(metric, period=_PERIOD, statistic=statistic, label=name)
                for name, function in functions.items()
            ]

        return [
            self._graph("Function invocations", each("Invocations")),
            self._graph("Function errors and throttles", each("Errors") + each("Throttles")),
            self._graph("Function duration p99 (ms)", each("Duration", "p99")),
        ]

    def _stepmail_widgets(self) -> list[cloudwatch.IWidget]:
        m = stepmail_metrics
        dead_letters_by_reason = by_dimension(m.DEAD_LETTERED, m.REASON, label="dead-lettered")
        return [
            self._graph(
                "Emails",
                [
                    stepmail_metric(m.EMAILS_SENT, period=_PERIOD),
                    stepmail_metric(m.DUPLICATES_SKIPPED, period=_PERIOD),
                    stepmail_metric(m.THROTTLED, period=_PERIOD),
                ],
            ),
            self._graph("Dead-lettered by reason", [dead_letters_by_reason]),
            self._graph("Attachment bytes sent", [stepmail_metric(m.ATTACHMENT_BYTES, period=_PERIOD)]),
        ]

    def _ses_widgets(self, config: StepmailConfig) -> list[cloudwatch.IWidget]:
        m = stepmail_metrics
        delivery_by_type = by_dimension(m.DELIVERY_EVENTS, m.EVENT_TYPE, label="events")

        def rate(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=SES_NAMESPACE, metric_name=name, period=Duration.minutes(15), statistic="Maximum"
            )

        return [
            self._graph("Delivery events by type (SES)", [delivery_by_type]),
            self._graph(
                "SES bounce rate",
                [rate(BOUNCE_RATE_METRIC)],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=config.bounce_rate_alarm_threshold, label="alarm")
                ],
            ),
            self._graph(
                "SES complaint rate",
                [rate(COMPLAINT_RATE_METRIC)],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=config.complaint_rate_alarm_threshold, label="alarm"
                    )
                ],
            ),
        ]
