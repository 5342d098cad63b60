"""Queueing: the mail queue producers write to, and the dead-letter queue behind it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig


class Queueing(Construct):
    """The mail queue (redrives to the DLQ after ``max_receive_count`` receives) and the DLQ.

    Both use SQS-managed SSE: encrypted at rest at no cost, and producers, the starter and the workflow
    need no KMS grant (a customer-managed key would need a grant for each of them).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StepmailConfig) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = self._build_dead_letter_queue(config)
        self.queue = self._build_queue(config, self.dead_letter_queue)

    def _build_dead_letter_queue(self, config: StepmailConfig) -> sqs.Queue:
        return sqs.Queue(
            self,
            constants.DEAD_LETTER_QUEUE_ID,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(config.dead_letter_retention_days),
            max_message_size_bytes=constants.DEAD_LETTER_MAX_MESSAGE_BYTES,
        )

    def _build_queue(self, config: StepmailConfig, dead_letter_queue: sqs.IQueue) -> sqs.Queue:
        return sqs.Queue(
            self,
            constants.QUEUE_ID,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            max_message_size_bytes=constants.QUEUE_MAX_MESSAGE_BYTES,
            # At least 6 x the starter's timeout, so a batch still being processed is not delivered again.
            visibility_timeout=Duration.seconds(config.queue_visibility_timeout_seconds),
            retention_period=Duration.days(config.message_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letter_queue, max_receive_count=config.max_receive_count
            ),
        )
