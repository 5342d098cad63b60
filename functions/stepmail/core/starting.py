"""Start one email: validate the queue message, run the workflow, decide what the queue should do.

Every message ends in exactly one place.  This module decides which, for the starter:

* invalid (can never succeed) -> straight to the dead-letter queue with the reason, deleted from the queue;
* the workflow sent it, skipped it as a duplicate of a sent email, or dead-lettered it -> done;
* anything else (lock busy, transient failure, timeout, an API error) -> raise, so the record is
  reported as a batch item failure and SQS delivers it again later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from stepmail.core.errors import (
    DeadLetteredError,
    InvalidMessageError,
    LockBusyError,
    RetryLaterError,
    StepmailError,
)
from stepmail.core.lock import LockTerms, lock_key
from stepmail.core.message import SenderPolicy, parse_message

DEAD_LETTER_KIND = "stepmail.dead-letter"


class Outcome(StrEnum):
    """What happened to one queue message (the starter's answer; also the demo's table)."""

    SENT = "sent"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead-lettered"
    REJECTED = "rejected"


@dataclass(frozen=True)
class RunResult:
    """The end of a synchronous workflow run, as StartSyncExecution reports it."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT
    execution_arn: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


class Workflow(Protocol):
    def run(self, execution_input: dict[str, Any]) -> RunResult: ...


class DeadLetterQueue(Protocol):
    def send(self, letter: dict[str, Any]) -> None: ...


class RunNotFinishedError(StepmailError):
    """The run ended without a handled outcome (failed unexpectedly or timed out): retry from the queue."""


@dataclass(frozen=True)
class StartReport:
    """What the starter logs about one message (no addresses, subjects or bodies)."""

    outcome: Outcome
    mail_key: str | None = None
    lock_key: str | None = None
    execution_arn: str | None = None
    message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StartPolicy:
    senders: SenderPolicy
    lease_seconds: int
    dedup_window_seconds: int


def rejected_letter(body: str, reason: str, *, queue_message_id: str, now: datetime) -> dict[str, Any]:
    """The dead-letter envelope for a message that never started a run."""
    return {
        "kind": DEAD_LETTER_KIND,
        "source": "starter",
        "error": InvalidMessageError.__name__,
        "cause": reason,
        "failedAt": now.isoformat(),
        "queueMessageId": queue_message_id,
        "body": body,
    }


def start_email(
    body: str,
    *,
    queue_message_id: str,
    policy: StartPolicy,
    workflow: Workflow,
    dead_letters: DeadLetterQueue,
    now: datetime | None = None,
) -> StartReport:
    """Validate one message body and see it through one workflow run.

    Raises
    ------
    LockBusyError
        Another run is sending this email: retry later.
    RetryLaterError, RunNotFinishedError
        The run did not reach a handled outcome: retry later.
    """
    now = now or datetime.now(UTC)
    try:
        message = parse_message(body, policy.senders)
    except InvalidMessageError as error:
        dead_letters.send(rejected_letter(body, error.reason, queue_message_id=queue_message_id, now=now))
        return StartReport(Outcome.REJECTED, reason=error.reason)

    terms = LockTerms(
        key=lock_key(message.mail_key, message.recipients()),
        now=int(now.timestamp()),
        lease_seconds=policy.lease_seconds,
        dedup_window_seconds=policy.dedup_window_seconds,
    )
    # Every field present (empty lists too): the ASL reads $.message.attachedFileKeys unconditionally.
    state_message = message.model_dump(by_alias=True, exclude_none=True)
    run = workflow.run({"message": state_message, "lock": terms.as_state()})
    return classify_run(run, mail_key=message.mail_key, lock_key=terms.key)


def classify_run(run: RunResult, *, mail_key: str, lock_key: str) -> StartReport:
    """Map a finished run to an outcome, or raise when the message must be retried from the queue."""
    if run.status == "SUCCEEDED" and run.output and run.output.get("outcome") == "busy":
        raise LockBusyError(f"run {run.execution_arn}: another run holds the lock {lock_key}")
    if run.status == "SUCCEEDED" and run.output:
        outcome = Outcome.DUPLICATE if run.output.get("outcome") == "duplicate" else Outcome.SENT
        return StartReport(outcome, mail_key, lock_key, run.execution_arn, run.output.get("messageId"))
    if run.status == "FAILED" and run.error == DeadLetteredError.__name__:
        return StartReport(Outcome.DEAD_LETTERED, mail_key, lock_key, run.execution_arn, reason=run.cause)
    retry_error = RetryLaterError if run.error == RetryLaterError.__name__ else RunNotFinishedError
    # The cause can quote the run's input (addresses, subject): it stays out of the exception text,
    # which Powertools logs; the execution's own logs keep it.
    raise retry_error(f"run {run.execution_arn} ended {run.status} with {run.error}")


def parse_output(output: str | None) -> dict[str, Any] | None:
    """The run's JSON output, or None."""
    if not output:
        return None
    parsed = json.loads(output)
    return parsed if isinstance(parsed, dict) else None
