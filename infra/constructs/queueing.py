"""Queueing: the mail queue producers write to, and the dead-letter queue behind it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig
from infra.resources import QueueSpec, stateful_resources


class Queueing(Construct):
    """The mail queue (redrives to the DLQ after ``max_receive_count`` receives) and the DLQ.

    Both are built from :func:`infra.resources.stateful_resources`, as the twin's are.  Both use
    SQS-managed SSE: encrypted at rest at no cost, and producers, the starter and the workflow need no
    KMS grant (a customer-managed key would need a grant for each of them).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StepmailConfig) -> None:
        super().__init__(scope, construct_id)
        resources = stateful_resources(config)
        self.dead_letter_queue = _queue(self, constants.DEAD_LETTER_QUEUE_ID, resources.dead_letter_queue)
        self.queue = _queue(self, constants.QUEUE_ID, resources.queue, self.dead_letter_queue)


def _queue(
    scope: Construct, construct_id: str, spec: QueueSpec, dead_letter_queue: sqs.IQueue | None = None
) -> sqs.Queue:
    redrive = None
    if spec.max_receive_count is not None:
        assert dead_letter_queue is not None, "a redrive policy needs a dead-letter queue"
        redrive = sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=spec.max_receive_count)
    visibility = spec.visibility_timeout_seconds
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        max_message_size_bytes=spec.max_message_bytes,
        visibility_timeout=Duration.seconds(visibility) if visibility is not None else None,
        retention_period=Duration.seconds(spec.retention_seconds),
        dead_letter_queue=redrive,
    )
