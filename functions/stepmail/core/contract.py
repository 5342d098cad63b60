"""The run's contract: what the starter gives a run, what a run answers, what a dead letter holds.

The state machine writes these shapes itself (its end states' outputs and the dead-letter
``MessageBody``), so they are known in two languages: here and in ``statemachine/stepmail.asl.json``.
``tests/unit/test_run_contract.py`` holds every end state and every letter of the ASL to these models,
as ``test_error_contract.py`` does for the error names.

A run never ends in a Fail state for an outcome the pipeline handled: every such end is a Pass state
whose output names its :class:`RunOutcome`, so the state machine's ``ExecutionsFailed`` metric counts
only real failures (errors no ``Catch`` can see, such as ``States.DataLimitExceeded``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RunOutcome(StrEnum):
    """How a run ended: the ``outcome`` of every end state of the ASL."""

    SENT = "sent"
    SENT_UNRECORDED = "sent-unrecorded"  # SES accepted it; the record could not be written
    DUPLICATE = "duplicate"  # already sent: skipped
    BUSY = "busy"  # another run holds the lock: try again later
    DEAD_LETTERED = "dead-lettered"  # a permanent failure: in the DLQ with its reason
    RETRY_LATER = "retry-later"  # a transient failure outlasted the run's retries


#: Outcomes after which the message must come back from the queue.
RETRY_OUTCOMES = frozenset({RunOutcome.BUSY, RunOutcome.RETRY_LATER})


class Outcome(StrEnum):
    """What happened to one queue message: the starter's answer (and the demo's table)."""

    SENT = "sent"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead-lettered"
    REJECTED = "rejected"  # invalid: dead-lettered by the starter without a run


class DeadLetterKind(StrEnum):
    """Why a message was dead-lettered, in four words (the ``reason`` dimension of the metric)."""

    INVALID_MESSAGE = "invalid-message"  # refused by the starter: no run
    WORKFLOW = "workflow"  # a permanent error the workflow caught
    RUN_FAILED = "run-failed"  # the run failed outside every Catch: the starter dead-lettered it
    GAVE_UP = "gave-up"  # still not sent on the queue's last allowed delivery


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class Delivery(_Model):
    """Which delivery of which queue message started the run (``$.delivery`` of the run's input)."""

    queue_message_id: str = Field(alias="queueMessageId")
    receive_count: int = Field(alias="receiveCount", ge=1)


class RunOutput(_Model):
    """The output of every end state of the ASL."""

    outcome: RunOutcome
    lock_key: str = Field(alias="lockKey")
    message_id: str | None = Field(default=None, alias="messageId")  # SES's, when one was sent
    error: str | None = None
    cause: str | None = None


DEAD_LETTER_KIND = "stepmail.dead-letter"


class LetterSource(StrEnum):
    """Who wrote a dead letter."""

    WORKFLOW = "workflow"  # the state machine's "Send To Dead-Letter Queue"
    STARTER = "starter"  # an invalid message, or a run that ended outside the contract


class DeadLetterEnvelope(_Model):
    """A message in the dead-letter queue, with why it is there (the DLQ's ``MessageBody``).

    ``message`` is the validated message a run carried; ``body`` the raw body of a message that never
    became one (invalid).  The queue's own redrive policy moves messages without an envelope: those
    are the original bodies (see :mod:`producer` for how they are read).
    """

    kind: Literal["stepmail.dead-letter"] = "stepmail.dead-letter"
    source: LetterSource
    error: str
    cause: str
    failed_at: str = Field(alias="failedAt")
    queue_message_id: str | None = Field(default=None, alias="queueMessageId")
    #: How many times SQS had delivered the message when it was dead-lettered: the count that
    #: mattered, kept here because reading the DLQ raises the letter's own receive count.
    receive_count: int | None = Field(default=None, alias="receiveCount")
    execution_arn: str | None = Field(default=None, alias="executionArn")
    message: dict[str, Any] | None = None
    body: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


FAILED_DELIVERY_PREFIX = "delivery#"
"""Lock-table keys of failed deliveries' notes (a lock key is ``<mailKey>#<32 hex>``, an SQS message id
a 36-character UUID: the two cannot meet)."""


class FailedDeliveryNote(_Model):
    """The last error of a delivery the starter gave back to the queue, kept in the lock table.

    When the queue's redrive policy moves a message to the dead-letter queue (the starter could not
    answer its last delivery), this note is the reason ``dlq list`` shows.
    """

    queue_message_id: str = Field(alias="queueMessageId")
    receive_count: int = Field(alias="receiveCount")
    error: str
    noted_at: str = Field(alias="notedAt")

    @property
    def key(self) -> str:
        return f"{FAILED_DELIVERY_PREFIX}{self.queue_message_id}"
