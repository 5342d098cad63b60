"""Reading dead letters of each shape and preparing their redrive (no network: SQS messages as dicts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import LocalPipBundler, templates_digest
from producer.dead_letters import REDRIVE_COUNT_TAG, read_dead_letter
from producer.redrive import prepare_redrive, redrive
from producer.render import render_letters, render_status
from producer.status import EmailStatus
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


def test_a_message_moved_by_the_redrive_policy_is_the_original_body() -> None:
    # Given a raw message received once before from the DLQ's point of view (this read counts too)
    letter = read_dead_letter(
        _sqs_message(json.dumps(MESSAGE), ApproximateReceiveCount="6", SentTimestamp="1795827306746")
    )
    # Then it is the queue's shape, with its delivery count and send time
    assert letter.source == "queue" and letter.reason.startswith("failed 5 deliveries")
    assert letter.failed_at is not None and letter.failed_at.startswith("2026-11-28")
    assert letter.mail_key == "k-1" and letter.redrive_count == 0


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
        (json.dumps({"mailKey": "k"}), "no recipient"),
        (json.dumps(MESSAGE | {"from": "x@elsewhere.example"}), "sender identities"),
    ],
)
def test_a_still_invalid_message_is_not_redriven_and_says_why(body: str, expected: str) -> None:
    # When an invalid message is prepared / Then the reason says why it stays
    _, problem = prepare_redrive(read_dead_letter(_sqs_message(body)), POLICY)
    assert problem is not None and expected in problem


def test_redrive_needs_a_mail_key_or_all() -> None:
    with pytest.raises(ValueError, match="mail key"):
        redrive(object(), dlq_url="d", queue_url="q")


def test_renderings_name_each_letter_and_each_state() -> None:
    # Given a letter and statuses
    letter = read_dead_letter(_sqs_message(json.dumps(MESSAGE), ApproximateReceiveCount="2"))
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
