"""Starter Lambda: an SQS batch in, one synchronous Express run per message, a partial batch response out.

The runs of a batch go concurrently (each waits for its workflow), so the function's timeout only
has to exceed one run.  A record is reported as failed, and so redelivered by SQS, only when its run
did not reach a handled outcome; invalid messages go straight to the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stepmail.adapters.locks import DynamoDbLockTable
from stepmail.adapters.metrics import (
    DEAD_LETTERED,
    DUPLICATES_SKIPPED,
    REASON,
    RETRIED_LATER,
    EmfMetrics,
    MetricsSink,
)
from stepmail.adapters.ses import SesSendQuota
from stepmail.adapters.sfn import SfnWorkflow
from stepmail.adapters.sqs import SqsDeadLetterQueue, SqsRedeliveries
from stepmail.core.contract import Delivery, Outcome
from stepmail.core.message import SenderPolicy
from stepmail.core.pacing import PacingPolicy, redelivery_delay
from stepmail.core.starting import Ports, StartPolicy, StartReport, start_email
from stepmail.settings import StarterSettings

logger = Logger(service="stepmail")
_runs = ThreadPoolExecutor(max_workers=10, thread_name_prefix="run")  # one per record of a full batch


class Redeliveries(Protocol):
    def retry_in(self, receipt_handle: str, seconds: int) -> None: ...


@dataclass(frozen=True)
class RetryDelays:
    """When a message given back to the queue comes back (stepmail.core.pacing.redelivery_delay)."""

    base_seconds: int
    max_seconds: int
    rng: random.Random = field(default_factory=random.Random)

    def after(self, receive_count: int) -> int:
        return redelivery_delay(
            receive_count, base_seconds=self.base_seconds, max_seconds=self.max_seconds, rng=self.rng
        )


@dataclass(frozen=True)
class Starter:
    policy: StartPolicy
    ports: Ports
    log_email_content: bool = False
    metrics: MetricsSink = field(default_factory=EmfMetrics)
    #: None: failed messages come back after the queue's visibility timeout.
    redeliveries: Redeliveries | None = None
    delays: RetryDelays = field(default_factory=lambda: RetryDelays(2, 300))

    def start(self, record: SQSRecord) -> StartReport:
        delivery = Delivery(
            queue_message_id=record.message_id,
            receive_count=int(record.attributes.approximate_receive_count or 1),
        )
        try:
            report = start_email(record.body, delivery=delivery, policy=self.policy, ports=self.ports)
        except Exception as error:
            delay = self.delays.after(delivery.receive_count)
            logger.warning(
                "retry later",
                extra={
                    "queueMessageId": record.message_id,
                    "error": type(error).__name__,
                    "inSeconds": delay,
                },
            )
            if self.redeliveries is not None:
                self.redeliveries.retry_in(record.receipt_handle, delay)
            self.metrics.count(RETRIED_LATER)
            raise
        self._log(record, report)
        self._count(report)
        return report

    def _count(self, report: StartReport) -> None:
        if report.outcome is Outcome.DUPLICATE:
            self.metrics.count(DUPLICATES_SKIPPED)
        elif report.dead_letter_kind is not None:
            self.metrics.count(DEAD_LETTERED, dimensions={REASON: str(report.dead_letter_kind)})

    def _log(self, record: SQSRecord, report: StartReport) -> None:
        fields: dict[str, Any] = {
            "queueMessageId": record.message_id,
            "outcome": str(report.outcome),
            "mailKey": report.mail_key,
            "lockKey": report.lock_key,
            "executionArn": report.execution_arn,
            "sesMessageId": report.message_id,
            "error": report.error,
        }
        if report.reason and self.log_email_content:
            fields["reason"] = report.reason  # may quote an address: only when content logging is on
        logger.info("message handled", extra={key: value for key, value in fields.items() if value})


def start_policy(settings: StarterSettings) -> StartPolicy:
    """What the deployment decides for every message: senders, lock terms, deliveries, pacing."""
    return StartPolicy(
        senders=SenderPolicy(
            settings.sender_identities, settings.default_sender, settings.configuration_sets
        ),
        lease_seconds=settings.lease_seconds,
        dedup_window_seconds=settings.dedup_window_seconds,
        max_receive_count=settings.max_receive_count,
        pacing=PacingPolicy(cap=settings.ses_max_send_rate or None, max_waits=settings.pacing_max_waits),
    )


def build_starter(
    settings: StarterSettings,
    *,
    sfn_client: Any = None,
    sqs_client: Any = None,
    dynamodb_client: Any = None,
    ses_client: Any = None,
) -> Starter:
    policy = start_policy(settings)
    ports = Ports(
        workflow=SfnWorkflow(settings.state_machine_arn, sfn_client),
        dead_letters=SqsDeadLetterQueue(settings.dead_letter_queue_url, sqs_client),
        locks=DynamoDbLockTable(settings.lock_table, settings.failure_note_ttl_seconds, dynamodb_client),
        quota=SesSendQuota(settings.quota_refresh_seconds, ses_client),
    )
    return Starter(
        policy=policy,
        ports=ports,
        log_email_content=settings.log_email_content,
        redeliveries=SqsRedeliveries(settings.mail_queue_url, sqs_client),
        delays=RetryDelays(settings.retry_later_base_seconds, settings.retry_later_max_seconds),
    )


@lru_cache(maxsize=1)
def _starter_from_environment() -> Starter:
    return build_starter(StarterSettings.from_environ(os.environ))


def handler(event: dict[str, Any], context: Any, starter: Starter | None = None) -> dict[str, Any]:
    starter = starter or _starter_from_environment()

    async def start_record(record: SQSRecord) -> str:
        report = await asyncio.get_running_loop().run_in_executor(_runs, starter.start, record)
        return str(report.outcome)

    # A processor per invocation: it holds the batch's state while processing it.  A batch whose
    # every record failed is answered like any other (all items failed), not with an exception.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        async_process_partial_response(
            event=event, record_handler=start_record, processor=processor, context=context
        )
    )
