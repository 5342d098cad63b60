"""The pipeline end to end on the local twin: the real ASL file executed by moto's interpreter, the
real starter and sender handlers, real SQS batches.  Each test checks where every message ended."""

from __future__ import annotations

import email
import email.policy
import json
import os
import threading
import time
from typing import Any

import pytest

from stepmail.core.lock import lock_key
from stepmail.core.starting import Outcome
from twin.patches import AwsForms


def _message(mail_key: str, *to: str, **fields: Any) -> dict[str, Any]:
    return {
        "mailKey": mail_key,
        "to": list(to or ["jane@customer.example"]),
        "subject": "Hello",
        "body": "Hi",
        **fields,
    }


def _parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_happy_path_with_attachments_sends_one_email_byte_exact(twin) -> None:
    # Given a message with HTML and two attachments uploaded by the producer client
    pdf, blob = b"%PDF-1.4 invoice", os.urandom(200_000)
    message = _message(
        "invoice-1", "Jane <jane@customer.example>", html="<p>Hi</p>", cc=["boss@customer.example"]
    )

    # When it goes through the pipeline
    (report,) = twin.wait_for(twin.send(message, {"invoice.pdf": pdf, "data.bin": blob}))

    # Then exactly one email was sent, with both attachments byte-exact, and the lock records the send
    assert report.outcome is Outcome.SENT
    (sent,) = twin.emails
    assert sent.to == ["jane@customer.example"] and sent.cc == ["boss@customer.example"]
    assert sent.path is not None and sent.path.read_bytes() == sent.raw
    parsed = _parsed(sent.raw)
    attachments = {part.get_filename(): part.get_payload(decode=True) for part in parsed.iter_attachments()}
    assert attachments == {"invoice.pdf": pdf, "data.bin": blob}
    lock = twin.lock(report.lock_key)
    assert lock["status"]["S"] == "SENT" and lock["messageId"]["S"] == sent.message_id
    assert twin.dead_letters() == []


def test_original_producer_format_is_accepted_unchanged(twin) -> None:
    # Given a message exactly as the original system's producers write it, attachment uploaded by hand
    twin.s3.put_object(Bucket=twin.info.bucket, Key="legacy-1/report.csv", Body=b"a,b\n1,2\n")
    body = json.dumps(
        {
            "mailKey": "legacy-1",
            "subject": "Report",
            "body": "See attached",
            "toAddress": "ops@customer.example",
            "attachedFileKeys": ["report.csv"],
        }
    )

    # When it is put on the queue with plain SQS
    (report,) = twin.wait_for(twin.send_raw(body))

    # Then it is sent from the configured default sender with the attachment
    assert report.outcome is Outcome.SENT
    (sent,) = twin.emails
    assert sent.sender == "no-reply@example.com" and sent.to == ["ops@customer.example"]
    (attachment,) = _parsed(sent.raw).iter_attachments()
    assert attachment.get_payload(decode=True) == b"a,b\n1,2\n"


def test_duplicate_delivered_sequentially_is_skipped(twin) -> None:
    # Given an email that was sent
    message = _message("order-7")
    (first,) = twin.wait_for(twin.send(message))

    # When the same message is delivered again
    (second,) = twin.wait_for(twin.send(message))

    # Then it is skipped as a duplicate of the sent email: still one email
    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.DUPLICATE)
    assert second.message_id == first.message_id
    assert len(twin.emails) == 1


def test_duplicate_delivered_concurrently_sends_one_email(make_twin) -> None:
    # Given a twin whose redeliveries come back after one second, and a send slow enough (1 s) that
    # two runs started together always overlap, however loaded the machine
    twin = make_twin(visibility_timeout_seconds=1)
    twin.wrap_sender(lambda real, payload: (time.sleep(1), real(payload))[1])
    body = json.dumps(_message("order-8"))

    # When the same message arrives twice in one batch (two runs at once)
    ids = twin.send_batch([body, body])
    reports = twin.wait_for(*ids)

    # Then one run sent it; the other found the lock busy, was retried from the queue, and skipped it
    assert sorted(report.outcome for report in reports) == [Outcome.DUPLICATE, Outcome.SENT]
    assert len(twin.emails) == 1
    busy = [result for i in ids for result in twin.twin.journal.history(i) if not hasattr(result, "outcome")]
    assert busy and all(type(error).__name__ == "LockBusyError" for error in busy)


def test_same_mail_key_two_recipient_sets_are_two_emails(twin) -> None:
    # Given one mailKey sent to two different recipients
    first = twin.send(_message("news-1", "ana@customer.example"))
    second = twin.send(_message("news-1", "bo@customer.example"))

    # When both are processed
    reports = twin.wait_for(first, second)

    # Then each recipient set gets its email
    assert [report.outcome for report in reports] == [Outcome.SENT, Outcome.SENT]
    assert sorted(sent.to[0] for sent in twin.emails) == ["ana@customer.example", "bo@customer.example"]
    assert reports[0].lock_key != reports[1].lock_key


def test_a_throttled_send_takes_a_send_slot_again_then_is_sent(twin) -> None:
    # Given SES throttling the first three sends (another sender on the account, a burst at a second's
    # edge): the runs had their slots, SES refused anyway
    twin.twin.faults.add("ses.send:throttle:times=3")

    # When two emails arrive
    ids = twin.send_batch([json.dumps(_message(f"throttled-{n}")) for n in range(2)])
    reports = twin.wait_for(*ids)

    # Then each is sent exactly once, after going back to take a slot (no blind retry of the send)
    assert [report.outcome for report in reports] == [Outcome.SENT, Outcome.SENT]
    assert twin.emails_per_lock_key() == {report.lock_key: 1 for report in reports}
    assert twin.twin.faults.fired("ses.send") == 3
    assert twin.retry_waits("Render And Send") == []
    taken = sum(twin.send_slots().values())
    assert taken == 2 + 3  # one slot per attempt: the two sends and the three throttled ones


def test_permanent_ses_rejection_goes_to_the_dlq_without_retries(twin) -> None:
    # Given a sender the configuration allows but SES does not (its identity is not verified)
    twin.twin.client("sesv2").delete_email_identity(EmailIdentity="billing@example.org")
    calls = twin.wrap_sender(lambda real, payload: real(payload))

    # When a message is sent from it
    (report,) = twin.wait_for(twin.send(_message("bill-1", **{"from": "billing@example.org"})))

    # Then the sender ran once, nothing was sent, and the DLQ holds the message with the reason
    assert report.outcome is Outcome.DEAD_LETTERED
    assert len(calls) == 1 and twin.retry_waits("Render And Send") == []
    assert twin.emails == []
    (letter,) = twin.dead_letters()
    assert letter["error"] == "MessageRejectedError" and "not verified" in letter["cause"]
    assert letter["message"]["mailKey"] == "bill-1" and letter["source"] == "workflow"
    assert twin.lock(report.lock_key) is None  # released: a corrected message can be sent


@pytest.mark.parametrize(
    ("s3_not_found", "causes"),
    [("NoSuchKeyException", "present"), ("NoSuchKeyException", "absent"), ("S3Exception", "present")],
)
def test_missing_attachment_goes_to_the_dlq_named_whatever_aws_calls_the_404(
    twin, s3_not_found: str, causes: str
) -> None:
    # Given AWS naming a HEAD 404 one way or the other (and a caught error with or without a Cause),
    # and a message listing an attachment that was never uploaded, beside one that was
    twin.twin.hooks.forms = AwsForms(s3_not_found=s3_not_found, causes=causes)
    message = _message("inv-2", attachedFileKeys=["cover.txt", "invoice.pdf"])

    # When it is processed
    (report,) = twin.wait_for(_send_with(twin, message))

    # Then it is dead-lettered at once (no lookup retried), with a reason naming the file and where it
    # was looked for; nothing is sent and the lock is free
    assert report.outcome is Outcome.DEAD_LETTERED
    (letter,) = twin.dead_letters()
    where = f"s3://{twin.info.bucket}/inv-2/invoice.pdf"
    assert letter["error"] == "AttachmentMissingError"
    assert (
        letter["cause"]
        == f"attachment invoice.pdf was not found at {where}: upload it, then redrive the message"
    )
    assert where in report.reason
    assert twin.retry_waits("Head Attachment Again") == []
    assert twin.emails == [] and twin.lock(report.lock_key) is None


def _send_with(twin, message: dict) -> str:
    """Upload the first attachment only, then enqueue the message as is."""
    twin.s3.put_object(Bucket=twin.info.bucket, Key=f"{message['mailKey']}/cover.txt", Body=b"hi")
    return twin.send_raw(json.dumps(message))


def test_invalid_messages_go_to_the_dlq_and_the_rest_of_the_batch_is_sent(twin) -> None:
    # Given one batch mixing valid messages, bad JSON and schema violations
    bodies = [
        json.dumps(_message("ok-1")),
        "{not json",
        json.dumps({"mailKey": "no-recipient"}),
        json.dumps(_message("ok-2")),
        json.dumps(_message("inject", subject="Hi\r\nBcc: all@customer.example")),
        json.dumps(_message("ok-3")),
    ]

    # When the batch is processed
    reports = twin.wait_for(*twin.send_batch(bodies))
    twin.idle()

    # Then the valid ones are sent, each invalid one is in the DLQ with a readable reason, none retried
    assert [report.outcome for report in reports] == [
        Outcome.SENT,
        Outcome.REJECTED,
        Outcome.REJECTED,
        Outcome.SENT,
        Outcome.REJECTED,
        Outcome.SENT,
    ]
    assert len(twin.emails) == 3
    letters = {letter["body"]: letter for letter in twin.dead_letters()}
    assert set(letters) == {bodies[1], bodies[2], bodies[4]}
    assert "not valid JSON" in letters[bodies[1]]["cause"]
    assert "no recipient" in letters[bodies[2]]["cause"]
    assert "subject" in letters[bodies[4]]["cause"] and "U+000D" in letters[bodies[4]]["cause"]
    assert twin.twin._poller is not None and twin.twin._poller.stats.failures == 0


def test_a_run_that_dies_after_taking_the_lock_is_sent_once_after_the_lease(make_twin) -> None:
    # Given a run that dies inside Render And Send (aborted: no Catch runs, the lock stays taken)
    twin = make_twin(
        workflow_timeout_seconds=5,
        sender_timeout_seconds=2,
        lease_seconds=10,
        retry={"interval_seconds": 1, "max_attempts": 1, "max_delay_seconds": 1},
        max_receive_count=50,
        visibility_timeout_seconds=1,
    )
    died = threading.Event()

    def die_once(real, payload):
        if not died.is_set():
            died.set()
            assert twin.twin.kill_execution(payload["executionId"])
            raise RuntimeError("the host died")
        return real(payload)

    calls = twin.wrap_sender(die_once)
    message = _message("crash-1")

    # When the message is delivered, the run dies, and SQS keeps redelivering it
    (report,) = twin.wait_for(twin.send(message), timeout=60)

    # Then it was held back while the dead run's lease lasted, and sent exactly once after it expired
    assert report.outcome is Outcome.SENT
    assert len(twin.emails) == 1 and len(calls) == 2
    errors = [
        type(result).__name__ for result in twin.twin.journal.results() if not hasattr(result, "outcome")
    ]
    assert "LockBusyError" in errors
    assert twin.lock(lock_key("crash-1", ["jane@customer.example"]))["status"]["S"] == "SENT"


@pytest.mark.parametrize("field", ["toAddress", "to"])
def test_recipients_are_normalized_for_deduplication(twin, field) -> None:
    # Given the same email addressed with different case
    value = "Jane@Customer.EXAMPLE"
    first = twin.send({"mailKey": "case-1", field: value if field == "toAddress" else [value], "body": "x"})
    twin.wait_for(first)

    # When it arrives again lower-cased
    (second,) = twin.wait_for(twin.send(_message("case-1", "jane@customer.example")))

    # Then it is the same email
    assert second.outcome is Outcome.DUPLICATE and len(twin.emails) == 1
