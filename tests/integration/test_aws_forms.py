"""The workflow under each form AWS may give what it does not document (twin/patches.py, AwsForms).

docs/aws-assumptions.md, "The workflow" (WF-1 to WF-4): where AWS's behaviour is uncertain, every
plausible form must lead to the same outcome.  These tests switch the twin to each form and run the
affected path:

* a HEAD 404 named ``S3.NoSuchKeyException`` or ``S3.S3Exception`` (404 in the cause), with or without
  a ``Cause`` on the caught error (WF-1, WF-4; the missing attachment itself is in test_pipeline.py);
* DynamoDB errors named after the exception class or the error code, on each of the lock's four
  calls: acquire, read, mark, release (WF-2);
* caught errors without a ``Cause`` field, on each way a run ends through the failure path (WF-4);
* ``lambda:invoke`` failing in the Lambda service itself, ``Lambda.ClientExecutionTimeoutException``
  and its kin (WF-3).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepmail.core.starting import Outcome
from tests.integration.conftest import Harness
from twin.patches import AwsForms, LambdaServiceFault

#: A message given back to the queue comes back within a second or two (the starter sets its
#: visibility), and is not delivered again while a run holds it; runs retry 4 times.
REDELIVERED: dict[str, Any] = {
    "visibility_timeout_seconds": 10,
    "max_receive_count": 50,
    "retry": {"interval_seconds": 1, "max_attempts": 4, "max_delay_seconds": 4},
}
#: The attempts a state makes before its retries run out (the first and RetryMaxAttempts more).
ATTEMPTS = 1 + 4
CONVENTIONS = ["exception-class", "error-code"]


def _message(mail_key: str, **fields: Any) -> dict[str, Any]:
    return {"mailKey": mail_key, "to": ["jane@customer.example"], "subject": "Hi", "body": "Hello", **fields}


def _history_errors(harness: Harness, queue_message_id: str) -> list[str]:
    return [type(result).__name__ for result in harness.twin.journal.history(queue_message_id)]


def _task_errors(harness: Harness, execution_arn: str | None) -> list[str]:
    """The errors the run's Task states failed with, as its history names them."""
    assert execution_arn
    events = harness.twin.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    return [event["taskFailedEventDetails"]["error"] for event in events if "taskFailedEventDetails" in event]


# ------------------------------------------------------------------------------------------ S3
@pytest.mark.parametrize(
    ("s3_not_found", "causes"),
    [("NoSuchKeyException", "absent"), ("S3Exception", "present")],
)
def test_an_attachment_deleted_after_its_first_lookup_is_dead_lettered_under_either_form(
    make_twin, s3_not_found: str, causes: str
) -> None:
    # Given AWS's form for a 404, and an attachment that answers the first lookup with a 503 (so the
    # second lookup, Head Attachment Again, runs) and is deleted meanwhile
    harness = make_twin()
    harness.twin.hooks.forms = AwsForms(s3_not_found=s3_not_found, causes=causes)
    harness.twin.faults.add("s3.head:error5xx:times=1")
    harness.s3.put_object(Bucket=harness.info.bucket, Key="gone-2/a.pdf", Body=b"%PDF")
    harness.s3.delete_object(Bucket=harness.info.bucket, Key="gone-2/a.pdf")

    # When the message is processed
    (report,) = harness.wait_for(harness.send_raw(json.dumps(_message("gone-2", attachedFileKeys=["a.pdf"]))))

    # Then the second lookup's 404 dead-letters it with the file's name, whatever its form
    assert report.outcome is Outcome.DEAD_LETTERED
    (letter,) = harness.dead_letters()
    assert letter["error"] == "AttachmentMissingError"
    assert f"attachment a.pdf was not found at s3://{harness.info.bucket}/gone-2/a.pdf" in letter["cause"]
    assert harness.emails == []


# ------------------------------------------------------------------------------------ DynamoDB
@pytest.mark.parametrize("names", CONVENTIONS)
@pytest.mark.parametrize("point", ["dynamodb.acquire", "dynamodb.mark"])
def test_dynamodb_throttling_is_retried_under_either_naming(make_twin, names: str, point: str) -> None:
    # Given DynamoDB errors named one way or the other, and the lock table throttling twice
    harness = make_twin()
    harness.twin.hooks.forms = AwsForms(dynamodb_names=names)
    harness.twin.faults.add(f"{point}:throttle:times=2")

    # When a message is processed
    (report,) = harness.wait_for(harness.send(_message("ddb-names")))

    # Then the run retried and sent it once, recorded
    assert report.outcome is Outcome.SENT and len(harness.emails) == 1
    assert harness.twin.faults.fired(point) == 2
    assert harness.lock(report.lock_key)["status"]["S"] == "SENT"
    suffix = "Exception" if names == "exception-class" else ""
    expected = f"DynamoDB.ProvisionedThroughputExceeded{suffix}"
    assert _task_errors(harness, report.execution_arn).count(expected) == 2


@pytest.mark.parametrize("names", CONVENTIONS)
def test_a_duplicate_is_found_under_either_naming_with_its_read_retried(make_twin, names: str) -> None:
    # Given an email already sent, DynamoDB errors named one way or the other (the lock's conditional
    # write failing as DynamoDB.ConditionalCheckFailed[Exception]), and Read Lock throttled twice
    harness = make_twin()
    harness.twin.hooks.forms = AwsForms(dynamodb_names=names)
    (first,) = harness.wait_for(harness.send(_message("ddb-read")))
    harness.twin.faults.add("dynamodb.read:throttle:times=2")

    # When the same email arrives again
    (second,) = harness.wait_for(harness.send(_message("ddb-read")))

    # Then the taken lock was recognised, its read retried, and the email skipped as a duplicate
    assert first.outcome is Outcome.SENT and second.outcome is Outcome.DUPLICATE
    assert len(harness.emails) == 1 and harness.twin.faults.fired("dynamodb.read") == 2
    suffix = "Exception" if names == "exception-class" else ""
    assert f"DynamoDB.ConditionalCheckFailed{suffix}" in _task_errors(harness, second.execution_arn)


@pytest.mark.parametrize("names", CONVENTIONS)
def test_the_lock_release_is_retried_under_either_naming(make_twin, names: str) -> None:
    # Given a message that must be dead-lettered, and its lock release throttled twice
    harness = make_twin()
    harness.twin.hooks.forms = AwsForms(dynamodb_names=names)
    harness.twin.faults.add("dynamodb.release:throttle:times=2")

    # When it is processed
    (report,) = harness.wait_for(
        harness.send_raw(json.dumps(_message("ddb-rel", attachedFileKeys=["no.pdf"])))
    )

    # Then it is dead-lettered once and the lock released after the retries
    assert report.outcome is Outcome.DEAD_LETTERED and len(harness.dead_letters()) == 1
    assert harness.lock(report.lock_key) is None
    assert harness.twin.faults.fired("dynamodb.release") == 2


# ------------------------------------------------------------------------------ absent causes
def test_a_permanent_error_without_a_cause_is_dead_lettered_with_one(make_twin) -> None:
    # Given caught errors that carry no Cause, and SES refusing the message for good
    harness = make_twin()
    harness.twin.hooks.forms = AwsForms(causes="absent")
    harness.twin.faults.add("ses.send:reject")

    # When a message is processed
    (report,) = harness.wait_for(harness.send(_message("no-cause")))

    # Then the run did not fail on the missing field (States.Runtime): the letter has the error and a cause
    assert report.outcome is Outcome.DEAD_LETTERED
    (letter,) = harness.dead_letters()
    assert letter["error"] == "MessageRejectedError"
    assert letter["cause"] == "the error came without a cause"  # Add A Cause's words
    assert harness.lock(report.lock_key) is None


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (f"dynamodb.acquire:error5xx:times={ATTEMPTS}", "DynamoDB.InternalServerErrorException"),
        # Head Attachment, then Head Attachment Again with its retries: the Fail state's CausePath
        (f"s3.head:error5xx:times={1 + ATTEMPTS}", "AttachmentUnavailableError"),
        (f"ses.send:error5xx:times={ATTEMPTS}", "SesUnavailableError"),
    ],
)
def test_transient_errors_without_a_cause_give_the_message_back_then_it_is_sent(
    make_twin, fault: str, error: str
) -> None:
    # Given caught errors that carry no Cause, and a transient failure outlasting one run's retries
    harness = make_twin(**REDELIVERED)
    harness.twin.hooks.forms = AwsForms(causes="absent")
    harness.twin.faults.add(fault)

    # When a message is processed
    queue_message_id = harness.send(_message("later", attachedFileKeys=["a.txt"]), {"a.txt": b"x"})
    (report,) = harness.wait_for(queue_message_id)

    # Then the first run gave it back (not a failed run), naming the error, and the next one sent it once
    assert report.outcome is Outcome.SENT and len(harness.emails) == 1
    history = harness.twin.journal.history(queue_message_id)
    given_back = [result for result in history if type(result).__name__ == "RetryLaterError"]
    assert given_back and error in str(given_back[0]), history
    assert not any(type(result).__name__ == "RunNotFinishedError" for result in history), history
    assert harness.dead_letters() == []


# ---------------------------------------------------------------------------------------- Lambda
@pytest.mark.parametrize(
    "code",
    [
        "ClientExecutionTimeoutException",
        "TooManyRequestsException",
        "ServiceException",
        "AWSLambdaException",
        "SdkClientException",
    ],
)
def test_a_lambda_service_failure_is_retried_and_the_email_sent_once(make_twin, code: str) -> None:
    # Given the Lambda service (not the sender) failing the invoke once
    harness = make_twin()
    failed: list[str] = []

    def fail_once(real, payload):
        if not failed:
            failed.append(code)
            raise LambdaServiceFault(code)
        return real(payload)

    harness.wrap_sender(fail_once)

    # When a message is processed
    (report,) = harness.wait_for(harness.send(_message("lambda-service")))

    # Then Render And Send retried it under AWS's name for it, and sent the email once
    assert report.outcome is Outcome.SENT and len(harness.emails) == 1
    assert f"Lambda.{code}" in _task_errors(harness, report.execution_arn)
    assert len(harness.retry_waits("Render And Send")) == 1
