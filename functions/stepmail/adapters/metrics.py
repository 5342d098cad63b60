"""CloudWatch metrics as Embedded Metric Format log lines (Powertools), one line per data point.

One provider per data point, not the shared ``Metrics`` singleton: the starter handles a batch's
records in threads, and a point's dimensions (a dead letter's reason) must not leak onto another's.
``POWERTOOLS_METRICS_DISABLED=true`` silences them (the local twin sets it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

#: The namespace and names the alarms and the dashboard read (infra imports them from here).
NAMESPACE = "stepmail"
SERVICE_DIMENSION = {"service": "stepmail"}
EMAILS_SENT = "EmailsSent"
ATTACHMENT_BYTES = "AttachmentBytes"
DUPLICATES_SKIPPED = "DuplicatesSkipped"
DEAD_LETTERED = "DeadLettered"  # dimension "reason": invalid-message or the workflow's error name
THROTTLED = "SesThrottled"  # each throttled send: the workflow retries it with backoff
RETRIED_LATER = "RetriedLater"  # records handed back to the queue (lock busy, retries exhausted)
DELIVERY_EVENTS = "DeliveryEvents"  # dimension "type": sent, delivered, bounced...
REASON = "reason"
EVENT_TYPE = "type"


class MetricsSink(Protocol):
    def count(self, name: str, value: float = 1, *, dimensions: Mapping[str, str] | None = None) -> None: ...

    def size(self, name: str, value: float, *, dimensions: Mapping[str, str] | None = None) -> None: ...


class EmfMetrics:
    """Writes each data point as one EMF line to stdout (CloudWatch Logs turns it into a metric)."""

    def count(self, name: str, value: float = 1, *, dimensions: Mapping[str, str] | None = None) -> None:
        self._emit(name, MetricUnit.Count, value, dimensions)

    def size(self, name: str, value: float, *, dimensions: Mapping[str, str] | None = None) -> None:
        self._emit(name, MetricUnit.Bytes, value, dimensions)

    @staticmethod
    def _emit(name: str, unit: MetricUnit, value: float, dimensions: Mapping[str, str] | None) -> None:
        provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
        for key, item in {**SERVICE_DIMENSION, **(dimensions or {})}.items():
            provider.add_dimension(name=key, value=item)
        provider.add_metric(name=name, unit=unit, value=value)
        provider.flush_metrics()
