"""The two Lambda handlers with in-memory fakes for their ports: no AWS, no network.

Events are the JSON files under tests/events/ (an SQS batch as Lambda delivers it; the sender's
payload as the "Render And Send" state builds it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stepmail.core.errors import AttachmentChangedError, SesThrottledError
from stepmail.core.message import SenderPolicy
from stepmail.core.starting import RunResult, StartPolicy
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler

EVENTS = Path(__file__).resolve().parent.parent / "events"


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class FakeWorkflow:
    """Ends each run as its mailKey says (sent-*, dup-*, busy-*, dead-*, retry-*)."""

    def __init__(self) -> None:
        self.inputs: list[dict[str, Any]] = []

    def run(self, execution_input: dict[str, Any]) -> RunResult:
        self.inputs.append(execution_input)
        kind = execution_input["message"]["mailKey"].split("-")[0]
        arn = f"arn:run:{kind}"
        return {
            "sent": RunResult("SUCCEEDED", arn, {"outcome": "sent", "messageId": "ses-1"}),
            "dup": RunResult("SUCCEEDED", arn, {"outcome": "duplicate", "messageId": "ses-0"}),
            "busy": RunResult("SUCCEEDED", arn, {"outcome": "busy", "lockKey": "busy-1#x"}),
            "dead": RunResult("FAILED", arn, error="DeadLetteredError", cause="S3.NoSuchKeyException"),
            "retry": RunResult("FAILED", arn, error="RetryLaterError", cause="SesThrottledError"),
        }[kind]


class FakeQueue:
    def __init__(self) -> None:
        self.letters: list[dict[str, Any]] = []

    def send(self, letter: dict[str, Any]) -> None:
        self.letters.append(letter)


@pytest.fixture
def starter() -> starter_handler.Starter:
    policy = StartPolicy(
        SenderPolicy(("example.com",), "no-reply@example.com"), lease_seconds=60, dedup_window_seconds=3600
    )
    return starter_handler.Starter(policy=policy, workflow=FakeWorkflow(), dead_letters=FakeQueue())


def test_starter_reports_only_unfinished_runs_as_batch_item_failures(starter) -> None:
    # Given a batch with sent, duplicate, busy, dead-lettered, retry-later and invalid messages
    event = _event("sqs_batch.json")

    # When the handler processes it
    response = starter_handler.handler(event, None, starter=starter)

    # Then only the busy and retry-later records go back to the queue
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["m2", "m4"]
    # and the invalid one is in the DLQ with its reason and raw body, without starting a run
    (letter,) = starter.dead_letters.letters
    assert letter["source"] == "starter" and letter["queueMessageId"] == "m5"
    assert letter["body"] == event["Records"][5]["body"] and "not valid JSON" in letter["cause"]
    assert len(starter.workflow.inputs) == 5


def test_starter_gives_each_run_the_message_and_its_lock_terms(starter) -> None:
    # When one record is started
    event = _event("sqs_batch.json")
    event["Records"] = event["Records"][:1]
    starter_handler.handler(event, None, starter=starter)

    # Then the run's input holds the normalized message (default sender filled) and the lock terms
    (run_input,) = starter.workflow.inputs
    assert run_input["message"]["from"] == "no-reply@example.com"
    assert run_input["message"]["attachedFileKeys"] == []
    lock = run_input["lock"]
    assert lock["key"].startswith("sent-1#")
    assert int(lock["leaseExpiresAt"]) - int(lock["now"]) == 60
    assert int(lock["sentExpiresAt"]) - int(lock["now"]) == 3600


def test_an_all_failed_batch_is_a_partial_response_not_an_exception(starter) -> None:
    # Given a batch where every run must be retried
    event = _event("sqs_batch.json")
    event["Records"] = [event["Records"][2], event["Records"][4]]

    # When / Then every record is reported, no exception escapes the handler
    response = starter_handler.handler(event, None, starter=starter)
    assert len(response["batchItemFailures"]) == 2


class FakeStore:
    def __init__(self, objects: dict[str, bytes], error: Exception | None = None) -> None:
        self.objects, self.error, self.reads = objects, error, []

    def read(self, key: str, etag: str) -> bytes:
        self.reads.append((key, etag))
        if self.error:
            raise self.error
        return self.objects[key]


class FakeTransport:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.sent = error, []

    def send_raw(self, **request: Any) -> str:
        if self.error:
            raise self.error
        self.sent.append(request)
        return "ses-message-1"


def test_sender_streams_pinned_attachments_and_returns_the_ses_message_id() -> None:
    # Given the payload "Render And Send" builds, and the attachment in the store
    store, transport = FakeStore({"inv-1/invoice.pdf": b"%PDF-1.4\n"}), FakeTransport()
    sender = sender_handler.Sender(store=store, transport=transport)

    # When the handler runs
    result = sender_handler.handler(_event("sender_payload.json"), None, sender=sender)

    # Then the attachment was read at the resolved ETag, and one raw email went to the envelope
    assert result == {"messageId": "ses-message-1"}
    assert store.reads == [("inv-1/invoice.pdf", '"abc"')]
    (request,) = transport.sent
    assert request["to"] == ["jane@customer.example"] and request["bcc"] == []
    assert request["sender"] == "no-reply@example.com" and b"%PDF-1.4" not in request["raw"]  # base64 in MIME


@pytest.mark.parametrize("error", [SesThrottledError("slow down"), AttachmentChangedError("etag")])
def test_sender_raises_contract_errors_by_class(error: Exception) -> None:
    # Given a failing store or transport
    store = FakeStore(
        {"inv-1/invoice.pdf": b"x"}, error if isinstance(error, AttachmentChangedError) else None
    )
    transport = FakeTransport(error if isinstance(error, SesThrottledError) else None)
    sender = sender_handler.Sender(store=store, transport=transport)

    # When / Then the contract's class escapes (Step Functions matches it by name)
    with pytest.raises(type(error)):
        sender_handler.handler(_event("sender_payload.json"), None, sender=sender)
