"""Start one email: validate the queue message, run the workflow, decide what the queue should do.

Every message ends in exactly one place.  This module decides which, for the starter:

* invalid, or too large for a run (:mod:`stepmail.core.budget`) -> straight to the dead-letter queue
  with the reason, deleted from the queue, no run started;
* the run sent it, skipped it as a duplicate of a sent email, or dead-lettered it -> done;
* the run failed with an error no ``Catch`` can see (``States.DataLimitExceeded``, ``States.Runtime``:
  the workflow could neither release its lock nor dead-letter the message) -> the starter does both
  (the lock only if that run still holds it), with the run's error as the reason;
* anything else (lock busy, transient failure, timeout, an API error) -> raise, so the record is
  reported as a batch item failure and SQS delivers it again later; on the queue's last allowed
  delivery the starter dead-letters it instead, with the last error as the reason, rather than let the
  queue's redrive policy move it there without one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from stepmail.core.budget import check_run_fits, compact_json
from stepmail.core.contract import (
    DeadLetterEnvelope,
    DeadLetterKind,
    Delivery,
    LetterSource,
    Outcome,
    RunOutcome,
    RunOutput,
)
from stepmail.core.errors import (
    InvalidMessageError,
    LockBusyError,
    RetryLaterError,
    StepmailError,
)
from stepmail.core.lock import LockTerms, lock_key
from stepmail.core.message import MailMessage, SenderPolicy, parse_message
from stepmail.core.pacing import PacingPolicy, pacing_terms, send_rate

#: Errors that end a run without passing through any ``Catch`` (``States.ALL`` does not match them).
UNCATCHABLE_ERRORS = frozenset({"States.DataLimitExceeded", "States.Runtime"})


@dataclass(frozen=True)
class RunResult:
    """The end of a synchronous workflow run, as StartSyncExecution reports it."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    execution_arn: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


class Workflow(Protocol):
    def run(self, execution_input: str) -> RunResult:
        """Run the workflow on ``execution_input`` (JSON text) and wait for its end."""
        ...


class DeadLetterQueue(Protocol):
    def send(self, letter: DeadLetterEnvelope) -> None: ...


class SendQuota(Protocol):
    def max_send_rate(self) -> float | None:
        """The account's SES send rate (recipients per second), or None when it cannot be read."""
        ...


class LockTable(Protocol):
    def release(self, lock_key: str, owner: str) -> bool:
        """Delete the lock if ``owner`` holds it and it is still in progress; True if it was deleted."""
        ...

    def note_failed_delivery(self, delivery: Delivery, error: str, now: datetime) -> None:
        """Remember the last error of a delivery that goes back to the queue (for ``dlq list``)."""
        ...


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
    #: The error that dead-lettered the message: its class or AWS name.
    error: str | None = None
    dead_letter_kind: DeadLetterKind | None = None


@dataclass(frozen=True)
class StartPolicy:
    senders: SenderPolicy
    lease_seconds: int
    dedup_window_seconds: int
    #: The queue's maxReceiveCount: its last delivery is the starter's last chance to give a reason.
    max_receive_count: int = 1_000
    pacing: PacingPolicy = field(default_factory=lambda: PacingPolicy(cap=None, max_waits=30))


@dataclass(frozen=True)
class Ports:
    workflow: Workflow
    dead_letters: DeadLetterQueue
    locks: LockTable
    quota: SendQuota


def start_email(
    body: str,
    *,
    delivery: Delivery,
    policy: StartPolicy,
    ports: Ports,
    now: datetime | None = None,
) -> StartReport:
    """Validate one message body and see it through one workflow run.

    Raises
    ------
    LockBusyError
        Another run is sending this email: retry later.
    RetryLaterError, RunNotFinishedError
        The run did not reach a handled outcome: retry later.
    Exception
        Starting the run failed (an API error): retry later.
    """
    now = now or datetime.now(UTC)
    rate = send_rate(ports.quota.max_send_rate(), policy.pacing.cap)
    try:
        run_input = prepare_run(body, delivery=delivery, policy=policy, now=now, rate=rate)
    except InvalidMessageError as error:
        ports.dead_letters.send(rejected_letter(body, error, delivery=delivery, now=now))
        return StartReport(
            Outcome.REJECTED,
            reason=error.reason,
            error=type(error).__name__,
            dead_letter_kind=DeadLetterKind.INVALID_MESSAGE,
        )
    try:
        run = ports.workflow.run(compact_json(run_input))
        return classify_run(run, run_input, ports=ports, now=now)
    except Exception as error:
        if delivery.receive_count < policy.max_receive_count:
            ports.locks.note_failed_delivery(delivery, describe_error(error), now)
            raise
        return give_up(error, run_input, ports=ports, now=now)


def prepare_run(
    body: str, *, delivery: Delivery, policy: StartPolicy, now: datetime, rate: float | None = None
) -> dict[str, Any]:
    """Everything the starter checks before it starts a run, and the run's input (paced to ``rate``).

    Raises
    ------
    InvalidMessageError
        The message is invalid, not allowed by the deployment, or its run could not fit Step
        Functions' payload limit (see :mod:`stepmail.core.budget`).
    """
    run_input = build_run_input(parse_message(body, policy.senders), delivery, policy, now, rate)
    check_run_fits(run_input)
    return run_input


def build_run_input(
    message: MailMessage, delivery: Delivery, policy: StartPolicy, now: datetime, rate: float | None = None
) -> dict[str, Any]:
    """The run's input: the message, its lock terms, its share of the send rate, and its delivery."""
    recipients = message.recipients()
    terms = LockTerms(
        key=lock_key(message.mail_key, recipients),
        now=int(now.timestamp()),
        lease_seconds=policy.lease_seconds,
        dedup_window_seconds=policy.dedup_window_seconds,
    )
    return {
        # Every field present (empty lists too): the ASL reads $.message.attachedFileKeys unconditionally.
        "message": message.model_dump(by_alias=True, exclude_none=True),
        "lock": terms.as_state(),
        "pacing": pacing_terms(len(recipients), rate, now=terms.now, policy=policy.pacing),
        "delivery": delivery.model_dump(by_alias=True),
    }


def classify_run(run: RunResult, run_input: dict[str, Any], *, ports: Ports, now: datetime) -> StartReport:
    """Map a finished run to an outcome, or raise when the message must be retried from the queue.

    Raises
    ------
    LockBusyError, RetryLaterError, RunNotFinishedError
    """
    mail_key, key = run_input["message"]["mailKey"], run_input["lock"]["key"]
    if run.status == "SUCCEEDED":
        output = _run_output(run)
        report = StartReport(
            Outcome.SENT, mail_key, key, run.execution_arn, output.message_id, error=output.error
        )
        if output.outcome in (RunOutcome.SENT, RunOutcome.SENT_UNRECORDED):
            return report
        if output.outcome is RunOutcome.DUPLICATE:
            return replace(report, outcome=Outcome.DUPLICATE)
        if output.outcome is RunOutcome.DEAD_LETTERED:
            reason = describe_failure(output.error, output.cause)
            kind = DeadLetterKind.WORKFLOW
            return replace(report, outcome=Outcome.DEAD_LETTERED, reason=reason, dead_letter_kind=kind)
        if output.outcome is RunOutcome.BUSY:
            raise LockBusyError(f"run {run.execution_arn}: another run holds the lock {key}")
        raise RetryLaterError(f"run {run.execution_arn} gave the message back: {output.error}")
    if run.status == "FAILED" and run.error in UNCATCHABLE_ERRORS:
        return _catch_for_the_workflow(run, run_input, ports=ports, now=now)
    # The cause can quote the run's input (addresses, subject): it stays out of the exception text,
    # which Powertools logs; the execution's own logs keep it.
    raise RunNotFinishedError(f"run {run.execution_arn} ended {run.status} with {run.error}")


def _run_output(run: RunResult) -> RunOutput:
    try:
        return RunOutput.model_validate(run.output or {})
    except ValidationError:
        raise RunNotFinishedError(
            f"run {run.execution_arn} ended with an output outside the contract"
        ) from None


def _catch_for_the_workflow(
    run: RunResult, run_input: dict[str, Any], *, ports: Ports, now: datetime
) -> StartReport:
    """What the ASL's Catch would have done: free the run's lock and dead-letter the message."""
    key = run_input["lock"]["key"]
    released = ports.locks.release(key, owner=run.execution_arn)
    error = run.error or "States.Runtime"
    cause = (
        f"the run failed with {error}, which the workflow cannot catch "
        f"({'its lock was released' if released else 'it no longer held its lock'}): {run.cause or ''}"
    )
    ports.dead_letters.send(_letter(run_input, error, cause, now=now, execution_arn=run.execution_arn))
    return StartReport(
        Outcome.DEAD_LETTERED,
        run_input["message"]["mailKey"],
        key,
        run.execution_arn,
        reason=describe_failure(error, cause),
        error=error,
        dead_letter_kind=DeadLetterKind.RUN_FAILED,
    )


def give_up(error: Exception, run_input: dict[str, Any], *, ports: Ports, now: datetime) -> StartReport:
    """The queue's last allowed delivery did not reach a handled outcome: dead-letter it with the reason."""
    deliveries = run_input["delivery"]["receiveCount"]
    name = type(error).__name__
    cause = f"not sent after {deliveries} deliveries; the last one ended with {describe_error(error)}"
    ports.dead_letters.send(_letter(run_input, name, cause, now=now))
    mail_key, lock_key = run_input["message"]["mailKey"], run_input["lock"]["key"]
    return StartReport(
        Outcome.DEAD_LETTERED,
        mail_key,
        lock_key,
        reason=describe_failure(name, cause),
        error=name,
        dead_letter_kind=DeadLetterKind.GAVE_UP,
    )


def _letter(
    run_input: dict[str, Any], error: str, cause: str, *, now: datetime, execution_arn: str | None = None
) -> DeadLetterEnvelope:
    delivery = run_input["delivery"]
    return DeadLetterEnvelope(
        source=LetterSource.STARTER,
        error=error,
        cause=cause,
        failed_at=now.isoformat(),
        queue_message_id=delivery["queueMessageId"],
        receive_count=delivery["receiveCount"],
        execution_arn=execution_arn,
        message=run_input["message"],
    )


def rejected_letter(
    body: str, error: InvalidMessageError, *, delivery: Delivery, now: datetime
) -> DeadLetterEnvelope:
    """The dead-letter envelope for a message that never started a run (its raw body kept)."""
    return DeadLetterEnvelope(
        source=LetterSource.STARTER,
        error=type(error).__name__,
        cause=error.reason,
        failed_at=now.isoformat(),
        queue_message_id=delivery.queue_message_id,
        receive_count=delivery.receive_count,
        body=body,
    )


def describe_error(error: BaseException) -> str:
    """``Name: reason`` of an exception (never the run's input: see :func:`classify_run`)."""
    reason = error.reason if isinstance(error, StepmailError) else str(error)
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__


def describe_failure(error: str | None, cause: str | None) -> str:
    """A run's error and cause as one sentence: a Lambda's cause is JSON whose ``errorMessage`` is it."""
    text = cause or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
        text = parsed["errorMessage"]
    return f"{error}: {text}" if error and text else error or text or "unknown"
