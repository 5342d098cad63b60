"""Tracker Lambda: one SES event (from EventBridge) in, recorded on the email's record.

An event for an email whose record does not carry its message id yet (the event overtook Mark Sent)
raises, so the asynchronous invoke delivers it again; anything that can never match is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from stepmail.adapters.metrics import DELIVERY_EVENTS, EVENT_TYPE, EmfMetrics, MetricsSink
from stepmail.adapters.tracking import DynamoDbDeliveryRecords
from stepmail.core.tracking import DeliveryRecords, RecordOutcome, parse_ses_event, track_event
from stepmail.settings import TrackerSettings

logger = Logger(service="stepmail")


@dataclass(frozen=True)
class Tracker:
    records: DeliveryRecords
    metrics: MetricsSink = field(default_factory=EmfMetrics)

    def track(self, detail: dict[str, Any]) -> RecordOutcome:
        outcome = track_event(detail, records=self.records)
        parsed = parse_ses_event(detail)
        if parsed is not None:
            self.metrics.count(DELIVERY_EVENTS, dimensions={EVENT_TYPE: str(parsed.status)})
            logger.info(
                "delivery event",
                extra={
                    "sesMessageId": parsed.message_id,
                    "type": str(parsed.status),
                    "outcome": str(outcome),
                },
            )
        return outcome


def build_tracker(settings: TrackerSettings, *, dynamodb_client: Any = None) -> Tracker:
    return Tracker(
        records=DynamoDbDeliveryRecords(settings.lock_table, settings.index_ttl_seconds, dynamodb_client)
    )


@lru_cache(maxsize=1)
def _tracker_from_environment() -> Tracker:
    return build_tracker(TrackerSettings.from_environ(os.environ))


def handler(event: dict[str, Any], context: Any, tracker: Tracker | None = None) -> dict[str, str]:
    tracker = tracker or _tracker_from_environment()
    # EventBridge wraps the SES event in "detail"; an SNS-shaped event is the SES event itself.
    outcome = tracker.track(event.get("detail", event))
    return {"outcome": str(outcome)}
