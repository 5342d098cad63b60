"""Exactly once at every limit, end to end on the twin (issue 10): the largest body the starter accepts
in each UTF-8 script is sent once, byte for byte; one letter more is in the dead-letter queue with
its reason; attachment metadata at its bounds fits; the same mailbox given three times reaches SES
once; a mail key cannot read another's files; a run that fails where no Catch can see it (forced into
``States.DataLimitExceeded`` and ``States.Runtime``) is dead-lettered with its reason and frees its lock.

The largest accepted body is found by bisection against the starter's own checks, under the twin's
deployment settings, so these tests follow the budget wherever it moves."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stepmail.core.budget import MAX_PAYLOAD_BYTES
from stepmail.core.contract import DeadLetterKind, Delivery
from stepmail.core.lock import lock_key
from stepmail.core.starting import Outcome, prepare_run
from stepmail.handlers.starter import start_policy
from tests.limits import SCRIPTS, largest_accepted_body

#: An SQS message id as the twin gives them (a UUID): the same length on every delivery.
_QUEUE_MESSAGE_ID = "00000000-0000-4000-8000-000000000000"


def _starter_checks(twin: Any) -> Any:
    """``body -> run input``: the checks of the twin's starter, under its deployment's settings."""
    settings = twin.twin.config.starter_settings(
        state_machine_arn="-", dead_letter_queue_url="-", lock_table="-", mail_queue_url="-"
    )
    policy = start_policy(settings)
    delivery = Delivery(queue_message_id=_QUEUE_MESSAGE_ID, receive_count=1)
    return lambda body: prepare_run(body, delivery=delivery, policy=policy, now=datetime.now(UTC))


def _body(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def _parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _plain_text(raw: bytes) -> str:
    part = _parsed(raw).get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_largest_body_in_each_script_is_sent_byte_for_byte_and_one_letter_more_is_dead_lettered(
    twin,
) -> None:
    # Given, in each script, the largest body the starter accepts and one with a letter more
    checks = _starter_checks(twin)
    accepted: dict[str, str] = {}
    refused: dict[str, str] = {}
    for script, letter in SCRIPTS.items():
        message = {"mailKey": f"fits-{script}", "to": ["jane@customer.example"], "subject": script}
        largest = largest_accepted_body(checks, message, letter)
        assert largest > 50_000
        accepted[script] = _body({**message, "body": letter * largest})
        # (a mail key of the same length: the budget counts it twice, in the message and the lock key)
        refused[script] = _body({**message, "mailKey": f"over-{script}", "body": letter * (largest + 1)})

    # When they are all put on the queue
    accepted_ids = {script: twin.send_raw(body) for script, body in accepted.items()}
    refused_ids = {script: twin.send_raw(body) for script, body in refused.items()}
    reports = twin.wait_for(*accepted_ids.values(), *refused_ids.values())
    twin.idle()

    # Then each largest one is sent once, its text byte for byte
    assert [report.outcome for report in reports] == [Outcome.SENT] * 4 + [Outcome.REJECTED] * 4
    sent = {str(_parsed(email.raw)["Subject"]): email for email in twin.emails}
    assert sorted(sent) == sorted(SCRIPTS)
    for script, body in accepted.items():
        assert _plain_text(sent[script].raw).rstrip("\r\n") == json.loads(body)["body"]
    # and each one letter longer is in the DLQ, untouched, with the limit and its size as the reason
    letters = {letter["queueMessageId"]: letter for letter in twin.dead_letters()}
    assert len(letters) == 4
    for script, queue_message_id in refused_ids.items():
        letter = letters[queue_message_id]
        assert letter["body"] == refused[script] and letter["error"] == "InvalidMessageError"
        assert "too large for a run" in letter["cause"]
        assert f"Step Functions accepts under {MAX_PAYLOAD_BYTES:,}" in letter["cause"]


def test_fifty_long_names_with_long_content_types_and_the_largest_body_fit_the_run(twin) -> None:
    # Given 50 attachments with names near S3's key length, each uploaded with a 7 KB content type
    # (the producer sets it; the run never carries it: the sender reads it from its GET)
    mail_key = "many-1"
    names = [f"{index:02d}-" + "n" * 1000 + ".txt" for index in range(50)]
    content_type = "text/plain; x-padding=" + "p" * 7000
    for index, name in enumerate(names):
        twin.s3.put_object(
            Bucket=twin.info.bucket,
            Key=f"{mail_key}/{name}",
            Body=f"file {index}".encode(),
            ContentType=content_type,
        )
    # and the largest Japanese body the starter accepts with them
    message = {"mailKey": mail_key, "to": ["jane@customer.example"], "attachedFileKeys": names}
    largest = largest_accepted_body(_starter_checks(twin), message, "日")
    body = "日" * largest

    # When it is sent
    (report,) = twin.wait_for(twin.send_raw(_body({**message, "body": body})))

    # Then it is sent once, with its body and every attachment
    assert report.outcome is Outcome.SENT, twin.dead_letters()
    (sent,) = twin.emails
    assert _plain_text(sent.raw).rstrip("\r\n") == body
    files = [part.get_payload(decode=True) for part in _parsed(sent.raw).iter_attachments()]
    assert files == [f"file {index}".encode() for index in range(50)]


@pytest.mark.parametrize(
    ("lists", "expected"),
    [
        (
            {"to": ["a@customer.example"], "cc": ["A@customer.example"], "bcc": ["a@CUSTOMER.example"]},
            {"to": ["a@customer.example"], "cc": [], "bcc": []},
        ),
        (
            {
                "to": [f"r{index}@customer.example" for index in range(50)],
                "cc": [f"R{index}@CUSTOMER.EXAMPLE" for index in range(50)],
            },
            {"to": [f"r{index}@customer.example" for index in range(50)], "cc": [], "bcc": []},
        ),
        (
            {"bcc": ["b@customer.example", "a@customer.example"], "cc": ["B@customer.example"]},
            {"to": [], "cc": ["B@customer.example"], "bcc": ["a@customer.example"]},
        ),
    ],
    ids=["one-mailbox-in-to-cc-bcc", "the-same-50-in-to-and-cc", "cc-before-bcc"],
)
def test_duplicate_mailboxes_reach_ses_once(twin, lists: dict[str, Any], expected: dict[str, Any]) -> None:
    # Given the same mailboxes given again, in another case or list
    message = {"mailKey": "dup-1", "subject": "Hi", "body": "Hello", **lists}

    # When the message is sent
    (report,) = twin.wait_for(twin.send_raw(_body(message)))

    # Then SES received one destination per mailbox, where it first appeared
    assert report.outcome is Outcome.SENT
    (sent,) = twin.emails
    assert {"to": sent.to, "cc": sent.cc, "bcc": sent.bcc} == expected
    # and the lock key is that of those recipients, whatever the case
    addresses = [address.lower() for address in sent.recipients]
    assert report.lock_key == lock_key("dup-1", addresses)


def test_a_mail_key_cannot_attach_the_files_of_another(twin) -> None:
    # Given the file of mail key t-1/b, and a message of mail key t-1 that names it by its path
    twin.s3.put_object(Bucket=twin.info.bucket, Key="t-1/b/secret.txt", Body=b"for t-1/b only")
    overlapping = _body(
        {"mailKey": "t-1", "to": ["eve@customer.example"], "body": "x", "attachedFileKeys": ["b/secret.txt"]}
    )
    owner = _body(
        {"mailKey": "t-1/b", "to": ["bob@customer.example"], "body": "x", "attachedFileKeys": ["secret.txt"]}
    )

    # When both are put on the queue
    overlapping_id, owner_id = twin.send_raw(overlapping), twin.send_raw(owner)
    reports = twin.wait_for(overlapping_id, owner_id)

    # Then the overlapping one is refused with its reason, and only the owner receives the file
    assert [report.outcome for report in reports] == [Outcome.REJECTED, Outcome.SENT]
    (letter,) = twin.dead_letters()
    assert letter["queueMessageId"] == overlapping_id and letter["body"] == overlapping
    assert "could reach the files of another mail key" in letter["cause"]
    (sent,) = twin.emails
    assert sent.to == ["bob@customer.example"]


@pytest.mark.parametrize(
    ("effect", "error"),
    [("bloat", "States.DataLimitExceeded"), ("malformed", "States.Runtime")],
)
def test_a_run_that_fails_outside_every_catch_is_dead_lettered_with_its_reason_and_frees_its_lock(
    twin, effect: str, error: str
) -> None:
    # Given a sender that answers with an output the run cannot hold or read (no Catch sees either)
    twin.twin.faults.add(f"sender:{effect}:times=1")

    # When a message is sent
    message = {"mailKey": f"uncatchable-{effect}", "to": ["jane@customer.example"], "body": "Hello"}
    (report,) = twin.wait_for(twin.send_raw(_body(message)))
    twin.idle()

    # Then the starter dead-lettered it with the run's error, and its lock is free
    assert report.outcome is Outcome.DEAD_LETTERED and report.error == error
    assert report.dead_letter_kind is DeadLetterKind.RUN_FAILED
    (letter,) = twin.dead_letters()
    assert letter["source"] == "starter" and letter["error"] == error
    assert (
        letter["message"]["mailKey"] == message["mailKey"] and letter["executionArn"] == report.execution_arn
    )
    assert f"the run failed with {error}, which the workflow cannot catch" in letter["cause"]
    assert "its lock was released" in letter["cause"]
    assert twin.lock(report.lock_key) is None
    # and nothing was sent (the faulty sender did not send), on one delivery
    assert twin.emails == [] and twin.twin.faults.fired("sender", effect) == 1
