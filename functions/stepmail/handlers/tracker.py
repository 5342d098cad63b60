"""Tracker Lambda: one SES event (from EventBridge) in, recorded on the email's record.

An event that overtook Mark Sent waits for the record inside the invocation (the core's
``RecordWait``); one whose record still cannot be found, or that is not an SES event, raises, so the
asynchronous invoke delivers it again and finally sends it to the tracker's dead-letter queue.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from stepmail.adapters.metrics import DELIVERY_EVENTS, EVENT_TYPE, EmfMetrics, MetricsSink
from stepmail.adapters.tracking import DynamoDbDeliveryRecords
from stepmail.core.tracking import (
    Clock,
    DeliveryRecordNotFoundError,
    DeliveryRecords,
    RecordOutcome,
    RecordWait,
    Sleep,
    UnknownDeliveryEventError,
    parse_ses_event,
    track_event,
)
from stepmail.settings import TrackerSettings

logger = Logger(service="stepmail")


@dataclass(frozen=True)
class Tracker:
    records: DeliveryRecords
    metrics: MetricsSink = field(default_factory=EmfMetrics)
    wait: RecordWait = field(default_factory=RecordWait)
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep

    def track(self, detail: dict[str, Any]) -> RecordOutcome:
        try:
            outcome = track_event(
                detail, records=self.records, wait=self.wait, clock=self.clock, sleep=self.sleep
            )
        except (DeliveryRecordNotFoundError, UnknownDeliveryEventError) as error:
            logger.warning(
                "delivery event not recorded", extra={"error": type(error).__name__, "reason": str(error)}
            )
            raise
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


def build_tracker(
    settings: TrackerSettings, *, dynamodb_client: Any = None, wait: RecordWait | None = None
) -> Tracker:
    return Tracker(
        records=DynamoDbDeliveryRecords(settings.lock_table, settings.index_ttl_seconds, dynamodb_client),
        wait=wait or RecordWait(),
    )


@lru_cache(maxsize=1)
def _tracker_from_environment() -> Tracker:
    return build_tracker(TrackerSettings.from_environ(os.environ))


def handler(event: dict[str, Any], context: Any, tracker: Tracker | None = None) -> dict[str, str]:
    tracker = tracker or _tracker_from_environment()
    # EventBridge wraps the SES event in "detail"; an SNS-shaped event is the SES event itself.
    outcome = tracker.track(event.get("detail", event))
    return {"outcome": str(outcome)}
