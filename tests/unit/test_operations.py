"""Reading dead letters of each shape, reading every letter, and preparing a redrive (no network: SQS
messages as dicts, and moto in process for the queue reads)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.bundling import LocalPipBundler, templates_digest
from producer.dead_letters import (
    REDRIVE_COUNT_TAG,
    DeliveryHistory,
    dedupe,
    read_dead_letter,
    read_dead_letter_queue,
)
from producer.redrive import prepare_redrive, redrive
from producer.render import render_letters, render_status
from producer.status import EmailStatus
from stepmail.core.contract import FailedDeliveryNote
from stepmail.core.lock import lock_key
from stepmail.core.message import SenderPolicy

MESSAGE = {"mailKey": "k-1", "to": ["Jane <jane@customer.example>"], "subject": "Hi", "body": "Hello"}
POLICY = SenderPolicy(("example.com",), "no-reply@example.com")


def _sqs_message(body: str, **attributes: str) -> dict[str, Any]:
    return {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body, "Attributes": attributes}


def test_a_workflow_envelope_is_read_with_the_lambda_error_message_as_reason() -> None:
    # Given the workflow's envelope, its cause a Lambda error object
    cause = json.dumps({"errorType": "MessageRejectedError", "errorMessage": "address is suppressed"})
    envelope = {
        "kind": "stepmail.dead-letter",
        "source": "workflow",
        "error": "MessageRejectedError",
        "cause": cause,
        "failedAt": "2026-11-28T01:00:00Z",
        "message": MESSAGE | {"tags": {REDRIVE_COUNT_TAG: "2"}},
    }
    # When it is read
    letter = read_dead_letter(_sqs_message(json.dumps(envelope)))
    # Then the reason is the sentence, recipients are bare addresses, the count comes from the tag
    assert letter.source == "workflow" and letter.reason == "MessageRejectedError: address is suppressed"
    assert letter.recipients == ("jane@customer.example",) and letter.redrive_count == 2
    assert letter.lock_key == lock_key("k-1", ["jane@customer.example"])
    assert json.loads(letter.body)["mailKey"] == "k-1"


def test_a_starter_envelope_keeps_the_raw_body_and_shows_what_it_lists() -> None:
    # Given the starter's envelope of an invalid message (schema violation: unknown field)
    raw = json.dumps({"mailKey": "k-2", "to": ["a@customer.example"], "colour": "red"})
    envelope = {"kind": "stepmail.dead-letter", "source": "starter", "error": "InvalidMessageError",
                "cause": "invalid message: colour: Extra inputs are not permitted", "body": raw}  # fmt: skip
    # When it is read
    letter = read_dead_letter(_sqs_message(json.dumps(envelope)))
    # Then the body is the original and the listed recipient and mail key are shown
    assert letter.body == raw and letter.mail_key == "k-2" and letter.recipients == ("a@customer.example",)
    assert "colour" in letter.reason


def test_a_message_moved_by_the_redrive_policy_reads_its_history_not_its_receive_count() -> None:
    # Given a raw message the queue moved after 5 deliveries, whose 4th the starter noted, and which
    # the DLQ's readers have received 9 times since
    note = FailedDeliveryNote(
        queue_message_id="m-1",
        receive_count=4,
        error="SesUnavailableError: down",
        noted_at="2026-11-28T01:00Z",
    )
    history = DeliveryHistory(5, {"m-1": note}.get)
    message = _sqs_message(json.dumps(MESSAGE), ApproximateReceiveCount="9", SentTimestamp="1795827306746")

    # When it is read (twice: reading changes nothing that is shown)
    letters = [read_dead_letter(message, history), read_dead_letter(message | {"Attributes": {}}, history)]

    # Then it is the queue's shape: the policy's count, the starter's last error, its send time
    letter = letters[0]
    assert letter.source == "queue"
    assert letter.reason == (
        "failed 5 deliveries (moved by the queue's redrive policy); "
        "the last error noted (delivery 4): SesUnavailableError: down"
    )
    assert letters[1].reason == letter.reason and letter.deliveries == 5
    assert letter.failed_at is not None and letter.failed_at.startswith("2026-11-28")
    assert letter.mail_key == "k-1" and letter.redrive_count == 0 and letter.original_message_id == "m-1"


def test_a_moved_message_without_a_note_says_the_starter_never_answered() -> None:
    letter = read_dead_letter(_sqs_message(json.dumps(MESSAGE)), DeliveryHistory(3))
    assert letter.reason.startswith("failed 3 deliveries") and "no error was noted" in letter.reason


def test_an_envelope_carries_its_delivery_count_and_original_message_id() -> None:
    # Given the starter's envelope written on the 7th delivery of queue message q-7
    envelope = {"kind": "stepmail.dead-letter", "source": "starter", "error": "InvalidMessageError",
                "cause": "bad", "failedAt": "2026-11-28T01:00:00Z", "queueMessageId": "q-7",
                "receiveCount": 7, "body": "{"}  # fmt: skip
    # When it is read, however often the DLQ delivered it
    letter = read_dead_letter(_sqs_message(json.dumps(envelope), ApproximateReceiveCount="40"))
    # Then the deliveries are the letter's own
    assert (letter.deliveries, letter.original_message_id, letter.queue_message_id) == (7, "q-7", "m-1")


def test_copies_of_one_queue_message_are_one_letter() -> None:
    # Given the starter's envelope of q-1 and the raw copy the queue's policy moved (same id), and q-2
    envelope = {"kind": "stepmail.dead-letter", "source": "starter", "error": "E", "cause": "c",
                "failedAt": "2026-11-28T01:00:00Z", "queueMessageId": "q-1", "receiveCount": 1,
                "body": json.dumps(MESSAGE)}  # fmt: skip
    first = read_dead_letter(_sqs_message(json.dumps(envelope)) | {"MessageId": "d-1"})
    moved = read_dead_letter(_sqs_message(json.dumps(MESSAGE)) | {"MessageId": "q-1"})
    other = read_dead_letter(_sqs_message(json.dumps(MESSAGE)) | {"MessageId": "q-2"})
    # When they are de-duplicated
    letters = dedupe([first, moved, other])
    # Then q-1 is listed once (the envelope, with its reason), counted as two copies
    assert [(letter.original_message_id, letter.copies, letter.source) for letter in letters] == [
        ("q-1", 2, "starter"),
        ("q-2", 1, "queue"),
    ]


def test_prepare_redrive_increments_the_count_and_keeps_other_tags() -> None:
    # Given a dead letter with its own tags, redriven once before
    letter = read_dead_letter(
        _sqs_message(json.dumps(MESSAGE | {"tags": {"team": "billing", REDRIVE_COUNT_TAG: "1"}}))
    )
    # When it is prepared
    body, problem = prepare_redrive(letter, POLICY)
    # Then it is valid and carries count 2 beside the producer's tag
    assert problem is None
    assert json.loads(body)["tags"] == {"team": "billing", REDRIVE_COUNT_TAG: "2"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"mailKey": "k", "mailKey": "k", "to": ["a@customer.example"], "body": "x"}', "mailKey"),
        (json.dumps({"mailKey": "k"}), "no recipient"),
        (json.dumps(MESSAGE | {"from": "x@elsewhere.example"}), "sender identities"),
    ],
)
def test_a_still_invalid_message_is_not_redriven_and_says_why(body: str, expected: str) -> None:
    # When an invalid message is prepared / Then the reason says why it stays
    _, problem = prepare_redrive(read_dead_letter(_sqs_message(body)), POLICY)
    assert problem is not None and expected in problem


def test_redrive_needs_exactly_one_selection() -> None:
    with pytest.raises(ValueError, match="mail key"):
        redrive(object(), dlq_url="d", queue_url="q")
    with pytest.raises(ValueError, match="exactly one"):
        redrive(object(), dlq_url="d", queue_url="q", mail_key="k", all=True)


def test_renderings_name_each_letter_and_each_state() -> None:
    # Given a letter and statuses
    letter = read_dead_letter(
        _sqs_message(json.dumps(MESSAGE), ApproximateReceiveCount="2"), DeliveryHistory(1)
    )
    # Then the table and the status blocks show them
    table = render_letters([letter])
    assert "k-1" in table and "failed 1 deliveries" in table and "queue" in table
    assert render_letters([]) == "the dead-letter queue is empty"
    status = render_status([EmailStatus("k-1", "k-1#x", "dead-lettered", dead_letters=(letter,))])
    assert "dead-lettered" in status and "failed 1 deliveries" in status
    assert render_status([]) == "no email found"


def test_templates_ship_in_the_asset_and_their_digest_follows_their_content(tmp_path: Path) -> None:
    # Given the bundler's template copy into an asset directory
    LocalPipBundler()._copy_templates(tmp_path)
    # Then the welcome template is there, the README is not
    assert (tmp_path / "templates" / "welcome" / "subject.txt").is_file()
    assert not (tmp_path / "templates" / "README.md").exists()
    # And the digest (in the asset hash) changes with a template's content
    before = templates_digest(tmp_path / "templates")
    (tmp_path / "templates" / "welcome" / "subject.txt").write_text("Changed", encoding="utf-8")
    assert templates_digest(tmp_path / "templates") != before


# ---------------------------------------------------------------------------- reading every letter
@pytest.fixture
def dlq() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        yield sqs, sqs.create_queue(QueueName="dlq")["QueueUrl"]


def _fill(sqs: Any, url: str, count: int) -> None:
    for index in range(count):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(MESSAGE | {"mailKey": f"k-{index}"}))


def test_a_read_pages_past_ten_and_leaves_every_letter_as_it_was(dlq: tuple[Any, str]) -> None:
    # Given 25 letters
    sqs, url = dlq
    _fill(sqs, url, 25)

    # When they are read twice
    first = read_dead_letter_queue(sqs, url, wait_seconds=0)
    second = read_dead_letter_queue(sqs, url, wait_seconds=0)

    # Then each read saw all 25, says so, and left them visible
    assert len(first.letters) == len(second.letters) == 25
    assert {letter.mail_key for letter in first.letters} == {f"k-{index}" for index in range(25)}
    assert (second.tally.held_at_start, second.tally.seen, second.tally.unseen) == (25, 25, 0)
    assert second.tally.line().endswith("every letter accounted for")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "25"


def test_letters_another_reader_holds_are_reported_unseen(dlq: tuple[Any, str]) -> None:
    # Given 13 letters, 3 of them held by another reader that does not let go
    sqs, url = dlq
    _fill(sqs, url, 13)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=600)

    # When they are read with a short deadline
    listing = read_dead_letter_queue(sqs, url, wait_seconds=0.3)

    # Then the 10 it could see are listed and the 3 others are counted, with what to do
    assert len(listing.letters) == 10
    assert (listing.tally.held_at_start, listing.tally.seen, listing.tally.unseen) == (13, 10, 3)
    assert listing.tally.line() == (
        "dead-letter queue: 13 letter(s) at the start, 10 seen by this command, 3 unseen: "
        "3 letter(s) in flight elsewhere: run again"
    )
