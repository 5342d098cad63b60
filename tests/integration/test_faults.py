"""Faults injected into the twin (twin/faults.py), one test each: after every fault, every message
ends in exactly one place — sent once, skipped as a duplicate of a sent email, or dead-lettered with a
reason — and the number of emails is exactly what it should be.  The one exception is measured, not
hoped: SES accepting an email whose answer is lost (the documented duplicate window)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from stepmail.core.starting import Outcome, StartReport
from tests.integration.conftest import WAIT_SECONDS

HANDLED = {Outcome.SENT, Outcome.DUPLICATE, Outcome.DEAD_LETTERED, Outcome.REJECTED}
#: Runs short enough for a dead run's lease to expire within the test; redeliveries after a second.
FAST_REDELIVERY: dict[str, Any] = {
    "workflow_timeout_seconds": 6,
    "sender_timeout_seconds": 2,
    "lease_seconds": 11,
    "retry": {"interval_seconds": 1, "max_attempts": 3, "max_delay_seconds": 2},
    "max_receive_count": 50,
    "visibility_timeout_seconds": 1,
}


def _message(mail_key: str, **fields: Any) -> dict[str, Any]:
    return {"mailKey": mail_key, "to": ["jane@customer.example"], "subject": "Hi", "body": "Hello", **fields}


def _assert_one_place(twin, *queue_message_ids: str) -> list[StartReport]:
    """Every message handled; no lock key has more than one email; sent and dead-lettered never both."""
    reports = twin.wait_for(*queue_message_ids, timeout=90)
    twin.idle()  # redeliveries too (a doubled or crashed delivery's twin): then nothing more can happen
    assert all(report.outcome in HANDLED for report in reports)
    emails_per_key = twin.emails_per_lock_key()
    assert all(count == 1 for count in emails_per_key.values()), emails_per_key
    dead_keys = {letter.get("message", {}).get("mailKey") for letter in twin.dead_letters()}
    sent_keys = {report.mail_key for report in reports if report.outcome in (Outcome.SENT, Outcome.DUPLICATE)}
    assert not (dead_keys & sent_keys)
    return reports


# ------------------------------------------------------------------------------------------- SES
@pytest.mark.parametrize("effect", ["throttle", "error5xx", "timeout"])
def test_transient_ses_failures_are_retried_and_the_email_sent_once(make_twin, effect: str) -> None:
    # Given SES failing twice in a way that did not accept the email
    twin = make_twin()
    twin.twin.faults.add(f"ses.send:{effect}:times=2")

    # When a message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("ses-transient")))

    # Then the run tried again twice and sent one email: a throttled send by taking a send slot again
    # (a second later), any other failure by retrying with backoff
    assert report.outcome is Outcome.SENT
    assert len(twin.emails) == 1
    assert twin.twin.faults.fired("ses.send") == 2
    if effect == "throttle":
        assert twin.retry_waits("Render And Send") == [] and sum(twin.send_slots().values()) == 3
    else:
        assert len(twin.retry_waits("Render And Send")) == 2


@pytest.mark.parametrize(
    ("effect", "error"),
    [
        ("reject", "MessageRejectedError"),
        ("unverified", "SenderNotVerifiedError"),
        ("paused", "SendingPausedError"),
    ],
)
def test_permanent_ses_failures_are_dead_lettered_without_retries(make_twin, effect: str, error: str) -> None:
    # Given SES refusing for good
    twin = make_twin()
    twin.twin.faults.add(f"ses.send:{effect}")

    # When a message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("ses-permanent")))

    # Then it is dead-lettered once, with the reason, after one attempt, and nothing is sent
    assert report.outcome is Outcome.DEAD_LETTERED
    assert twin.emails == [] and twin.retry_waits("Render And Send") == []
    (letter,) = twin.dead_letters()
    assert letter["error"] == error and letter["cause"]


def test_a_timeout_after_ses_accepted_is_the_measured_duplicate_window(make_twin) -> None:
    # Given SES accepting the email but the answer never reaching the sender (a read timeout)
    twin = make_twin()
    twin.twin.faults.add("ses.send:timeout-after-accept:times=1")

    # When a message is processed
    (report,) = twin.wait_for(twin.send(_message("window-1")))

    # Then the run cannot know SES sent it and retries: the recipient gets the email twice.
    # This is the one duplicate window (SES has no idempotency token); it is documented in
    # docs/reliability.md. Everything else still holds: one record, nothing dead-lettered.
    assert report.outcome is Outcome.SENT
    assert len(twin.emails) == 2
    assert twin.dead_letters() == []
    assert twin.lock(report.lock_key)["status"]["S"] == "SENT"


# -------------------------------------------------------------------------------------------- S3
def test_an_attachment_deleted_between_resolve_and_send_is_dead_lettered(twin) -> None:
    # Given the attachment disappearing after Resolve Attachments looked it up
    def delete_then_send(real, payload):
        twin.s3.delete_object(Bucket=twin.info.bucket, Key="gone-1/a.pdf")
        return real(payload)

    twin.wrap_sender(delete_then_send)

    # When the message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("gone-1"), {"a.pdf": b"%PDF"}))

    # Then it is dead-lettered as missing, nothing is sent
    assert report.outcome is Outcome.DEAD_LETTERED
    (letter,) = twin.dead_letters()
    assert letter["error"] == "AttachmentMissingError"
    assert twin.emails == []


def test_an_attachment_replaced_between_resolve_and_send_goes_out_once_in_its_new_version(make_twin) -> None:
    # Given the attachment overwritten after it was resolved (its ETag no longer matches), once
    twin = make_twin(**FAST_REDELIVERY)
    replaced: list[bool] = []

    def replace_then_send(real, payload):
        if not replaced:
            replaced.append(True)
            twin.s3.put_object(Bucket=twin.info.bucket, Key="swap-1/a.txt", Body=b"version 2")
        return real(payload)

    twin.wrap_sender(replace_then_send)

    # When the message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("swap-1"), {"a.txt": b"version 1"}))

    # Then the first run gave the message back (ETag mismatch), the next one sent the new version once
    assert report.outcome is Outcome.SENT
    (email,) = twin.emails
    assert b"dmVyc2lvbiAy" in email.raw  # base64("version 2")
    assert any(type(r).__name__ == "RetryLaterError" for r in twin.twin.journal.results())


@pytest.mark.parametrize(
    "fault",
    [
        "s3.head:throttle:times=2",
        "s3.head:error5xx:times=2",
        "s3.get:error5xx:times=2",
        "s3.get:timeout:times=2",
    ],
)
def test_transient_s3_failures_are_retried(twin, fault: str) -> None:
    # Given S3 failing twice on the attachment
    twin.twin.faults.add(fault)

    # When a message with an attachment is processed
    (report,) = _assert_one_place(twin, twin.send(_message("s3-transient"), {"a.bin": b"\x00\x01"}))

    # Then it is sent once, the faults having fired
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
    assert twin.twin.faults.fired(fault.split(":")[0]) == 2


# -------------------------------------------------------------------------------------- DynamoDB
@pytest.mark.parametrize("point", ["dynamodb.acquire", "dynamodb.pace", "dynamodb.mark"])
def test_dynamodb_throttling_is_retried(twin, point: str) -> None:
    # Given the lock table throttling twice
    twin.twin.faults.add(f"{point}:throttle:times=2")

    # When a message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("ddb-1")))

    # Then it is sent once and recorded
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
    assert twin.lock(report.lock_key)["status"]["S"] == "SENT"
    assert twin.twin.faults.fired(point) == 2


def test_dynamodb_throttling_on_release_still_dead_letters_once(twin) -> None:
    # Given a message that must be dead-lettered, and the lock release throttled twice
    twin.twin.faults.add("dynamodb.release:throttle:times=2")

    # When it is processed
    (report,) = _assert_one_place(
        twin, twin.send_raw(json.dumps(_message("rel-1", attachedFileKeys=["no.pdf"])))
    )

    # Then it is in the DLQ once and its lock was released after the retries
    assert report.outcome is Outcome.DEAD_LETTERED
    assert len(twin.dead_letters()) == 1
    assert twin.lock(report.lock_key) is None


def test_mark_sent_failing_for_good_never_resends(twin) -> None:
    # Given the lock table refusing every Mark Sent
    twin.twin.faults.add("dynamodb.mark:error5xx")

    # When a message is processed
    (report,) = twin.wait_for(twin.send(_message("unrecorded-1")))

    # Then the email went out once and the run does not send it again (sent, not recorded)
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
    assert twin.lock(report.lock_key)["status"]["S"] == "IN_PROGRESS"


def test_many_concurrent_runs_of_one_email_send_it_once(make_twin) -> None:
    # Given five copies of one message in one batch: five runs race for the lock
    twin = make_twin(**FAST_REDELIVERY)
    body = json.dumps(_message("race-1"))

    # When they are processed
    _assert_one_place(twin, *twin.send_batch([body] * 5))

    # Then exactly one email went out
    assert len(twin.emails) == 1


# ---------------------------------------------------------------------------------------- Lambda
@pytest.mark.parametrize("fault", ["sender:crash:times=1", "sender:hang:times=1:delay=5"])
def test_a_sender_that_dies_mid_send_is_retried_from_the_queue(make_twin, fault: str) -> None:
    # Given the sender Lambda crashing (or timing out) once, before SES accepted anything
    twin = make_twin(**FAST_REDELIVERY)
    twin.twin.faults.add(fault)

    # When a message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("crash-2")))

    # Then the lock was released, the message came back from the queue and was sent once
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
    assert any(type(r).__name__ == "RetryLaterError" for r in twin.twin.journal.results())


def test_a_starter_that_dies_mid_batch(make_twin) -> None:
    # Given the starter dying mid-batch: the runs of the first half started, the rest never did,
    # and its answer never reaches the event source
    twin = make_twin(**FAST_REDELIVERY)
    twin.twin.faults.add("starter:crash:times=1")
    bodies = ["not json"] + [json.dumps(_message(f"batch-{n}")) for n in range(3)]

    # When the batch is processed, then redelivered in full
    ids = twin.send_batch(bodies)
    reports = _assert_one_place(twin, *ids)

    # Then each email was sent once: the started ones were found sent on redelivery, the others sent then
    assert len(twin.emails) == 3
    # (on a busy machine a batch can outlast the 1 s visibility timeout: a message may then be delivered
    # once more, and a delivery that overtook a run may find its lock busy; neither is an outcome)
    history = {
        qid: [r.outcome for r in twin.twin.journal.history(qid) if isinstance(r, StartReport)] for qid in ids
    }
    rejected = history[ids[0]]
    assert len(rejected) >= 2 and set(rejected) == {Outcome.REJECTED}  # dead-lettered by every delivery
    # a run started before the crash was found sent on redelivery (which records, of the first batch,
    # the pollers took: their split varies), the others were sent then
    for qid in ids[1:]:
        assert history[qid][0] is Outcome.SENT and set(history[qid][1:]) <= {Outcome.DUPLICATE}
    assert twin.twin.faults.fired("starter") == 1
    # and each message's outcome is its first handled one: a later delivery cannot replace it
    assert [report.outcome for report in reports] == [
        Outcome.REJECTED,
        Outcome.SENT,
        Outcome.SENT,
        Outcome.SENT,
    ]
    # the invalid message is in the DLQ once per delivery: the same message, never an email
    letters = [letter for letter in twin.dead_letters() if letter.get("source") == "starter"]
    assert [letter["queueMessageId"] for letter in letters] == [ids[0]] * len(rejected)


def test_a_run_over_its_time_budget_frees_the_email_when_its_lease_expires(make_twin) -> None:
    # Given the attachment lookup hanging past the whole workflow's budget (no Catch runs)
    twin = make_twin(**FAST_REDELIVERY)
    twin.twin.faults.add("s3.head:hang:times=1:delay=8")
    started = time.monotonic()

    # When the message is processed
    (report,) = _assert_one_place(twin, twin.send(_message("slow-1"), {"a.txt": b"x"}))

    # Then the timed-out run held the lock until its lease expired, and the email was sent once after
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
    assert time.monotonic() - started >= FAST_REDELIVERY["lease_seconds"] - 1
    assert any(type(r).__name__ == "RunNotFinishedError" for r in twin.twin.journal.results())


# ------------------------------------------------------------------------------------------- SQS
def test_the_same_batch_delivered_to_two_starters_at_once(make_twin) -> None:
    # Given the event source handing the same batch to two starters at once
    twin = make_twin(**FAST_REDELIVERY)
    twin.twin.faults.add("starter:double:times=1")

    # When two messages are processed
    ids = twin.send_batch([json.dumps(_message("twice-1")), json.dumps(_message("twice-2"))])
    _assert_one_place(twin, *ids)

    # Then each email went out once
    assert len(twin.emails) == 2


def test_a_doubled_delivery_that_finds_the_lock_busy_after_the_send_does_not_hide_it(make_twin) -> None:
    # Given the same batch handed to two starters at once, a send that takes a second, and the losing
    # run's lock read answered only after the winner has sent (so it ends "lock busy", last); no
    # redelivery before both have finished
    twin = make_twin(**{**FAST_REDELIVERY, "visibility_timeout_seconds": 8})
    twin.wrap_sender(lambda real, payload: (time.sleep(1), real(payload))[1])
    twin.twin.faults.add("starter:double:times=1", "dynamodb.read:slow:times=1:delay=4")

    # When the message is processed
    queue_message_id = twin.send(_message("race-1"))
    (report,) = _assert_one_place(twin, queue_message_id)

    # Then the send is the message's outcome, although a delivery that found the lock busy finished
    # after it (the race that once left the harness waiting forever)
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
    history = twin.twin.journal.history(queue_message_id)
    assert getattr(history[0], "outcome", None) is Outcome.SENT
    assert type(history[1]).__name__ == "LockBusyError"
    assert twin.twin.faults.fired("dynamodb.read", "slow") == 1


def test_a_redelivery_while_the_first_run_is_still_going(make_twin) -> None:
    # Given a slow send (2 s) and a visibility timeout of 1 s: SQS redelivers during the first run
    twin = make_twin(**FAST_REDELIVERY)

    def slow(real, payload):
        time.sleep(2)
        return real(payload)

    twin.wrap_sender(slow)

    # When the message is processed
    (queue_message_id,) = (twin.send(_message("overlap-1")),)
    _assert_one_place(twin, queue_message_id)

    # Then the overlapping delivery found the lock busy, and the email went out once
    assert len(twin.emails) == 1
    history = twin.twin.journal.history(queue_message_id)
    assert any(type(r).__name__ == "LockBusyError" for r in history) or len(history) >= 2


def test_a_message_given_back_comes_back_in_seconds_not_after_the_visibility_timeout(make_twin) -> None:
    # Given the queue's visibility timeout as the configuration derives it (minutes), and the lock
    # table failing every attempt of the first run (one try and its four retries)
    twin = make_twin()
    attributes = twin.sqs.get_queue_attributes(QueueUrl=twin.info.queue_url, AttributeNames=["All"])
    visibility = int(attributes["Attributes"]["VisibilityTimeout"])
    assert visibility > 2 * WAIT_SECONDS
    twin.twin.faults.add("dynamodb.acquire:error5xx:times=5")

    # When a message is processed
    queue_message_id = twin.send(_message("back-soon-1"))
    (report,) = twin.wait_for(queue_message_id, timeout=WAIT_SECONDS)

    # Then the first run gave it back, and it came back (within the wait, far under the visibility
    # timeout: the starter set a delay of a second or two) and was sent once
    history = twin.twin.journal.history(queue_message_id)
    assert [type(entry).__name__ for entry in history] == ["RetryLaterError", "StartReport"]
    assert report.outcome is Outcome.SENT and len(twin.emails) == 1
