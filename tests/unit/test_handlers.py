"""The two Lambda handlers with in-memory fakes for their ports: no AWS, no network.

Events are the JSON files under tests/events/ (an SQS batch as Lambda delivers it; the sender's
payload as the "Render And Send" state builds it)."""

from __future__ import annotations

import json
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stepmail.core.contract import DeadLetterEnvelope, Delivery
from stepmail.core.errors import (
    MAX_REASON_CHARS,
    AttachmentChangedError,
    SenderFailedError,
    SesThrottledError,
)
from stepmail.core.message import SenderPolicy
from stepmail.core.sending import StoredFile
from stepmail.core.starting import Ports, RunResult, StartPolicy
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler

EVENTS = Path(__file__).resolve().parent.parent / "events"


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class FakeWorkflow:
    """Ends each run as its mailKey says (sent-*, dup-*, busy-*, dead-*, retry-*, limit-*, runtime-*)."""

    def __init__(self) -> None:
        self.inputs: list[str] = []

    def run(self, execution_input: str) -> RunResult:
        self.inputs.append(execution_input)
        kind = json.loads(execution_input)["message"]["mailKey"].split("-")[0]
        arn = f"arn:run:{kind}"
        lock = {"lockKey": "k#1"}
        return {
            "sent": RunResult("SUCCEEDED", arn, {"outcome": "sent", "messageId": "ses-1", **lock}),
            "dup": RunResult("SUCCEEDED", arn, {"outcome": "duplicate", "messageId": "ses-0", **lock}),
            "busy": RunResult("SUCCEEDED", arn, {"outcome": "busy", **lock}),
            "dead": RunResult(
                "SUCCEEDED",
                arn,
                {"outcome": "dead-lettered", "error": "AttachmentMissingError", "cause": "gone", **lock},
            ),
            "retry": RunResult(
                "SUCCEEDED",
                arn,
                {"outcome": "retry-later", "error": "SesThrottledError", "cause": "x", **lock},
            ),
            "limit": RunResult("FAILED", arn, error="States.DataLimitExceeded", cause="too big"),
            "runtime": RunResult("FAILED", arn, error="States.Runtime", cause="bad path"),
            "timeout": RunResult("TIMED_OUT", arn),
        }[kind]


class FakeQueue:
    def __init__(self) -> None:
        self.letters: list[dict[str, Any]] = []

    def send(self, letter: DeadLetterEnvelope) -> None:
        self.letters.append(letter.to_json_dict())


class FakeLocks:
    """The lock table: which locks each run holds, and the notes of failed deliveries."""

    def __init__(self, held: dict[str, str] | None = None) -> None:
        self.held = dict(held or {})
        self.notes: list[tuple[str, int, str]] = []

    def release(self, lock_key: str, owner: str) -> bool:
        if self.held.get(lock_key) != owner:
            return False
        del self.held[lock_key]
        return True

    def note_failed_delivery(self, delivery: Delivery, error: str, now: datetime) -> None:
        self.notes.append((delivery.queue_message_id, delivery.receive_count, error))


class FakeQuota:
    """The account's SES send rate, as GetAccount would say (None: unknown)."""

    def __init__(self, rate: float | None = 14.0) -> None:
        self.rate = rate

    def max_send_rate(self) -> float | None:
        return self.rate


def _starter(max_receive_count: int = 5, locks: FakeLocks | None = None) -> starter_handler.Starter:
    policy = StartPolicy(
        SenderPolicy(("example.com",), "no-reply@example.com"),
        lease_seconds=60,
        dedup_window_seconds=3600,
        max_receive_count=max_receive_count,
    )
    ports = Ports(
        workflow=FakeWorkflow(), dead_letters=FakeQueue(), locks=locks or FakeLocks(), quota=FakeQuota()
    )
    return starter_handler.Starter(policy=policy, ports=ports)


@pytest.fixture
def starter() -> starter_handler.Starter:
    return _starter()


def _record(mail_key: str, *, receive_count: int = 1, body: dict[str, Any] | None = None) -> dict[str, Any]:
    record = _event("sqs_batch.json")["Records"][0]
    document = body or {"mailKey": mail_key, "toAddress": "a@customer.example", "subject": "s", "body": "b"}
    return {
        **record,
        "messageId": f"q-{mail_key}",
        "body": json.dumps(document, ensure_ascii=False),
        "attributes": {**record["attributes"], "ApproximateReceiveCount": str(receive_count)},
    }


def test_starter_reports_only_unfinished_runs_as_batch_item_failures(starter) -> None:
    # Given a batch with sent, duplicate, busy, dead-lettered, retry-later and invalid messages
    event = _event("sqs_batch.json")

    # When the handler processes it
    response = starter_handler.handler(event, None, starter=starter)

    # Then only the busy and retry-later records go back to the queue, each with its error noted
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["m2", "m4"]
    assert sorted((note[0], note[2].split(":")[0]) for note in starter.ports.locks.notes) == [
        ("m2", "LockBusyError"),
        ("m4", "RetryLaterError"),
    ]
    # and the invalid one is in the DLQ with its reason and raw body, without starting a run
    (letter,) = starter.ports.dead_letters.letters
    assert letter["source"] == "starter" and letter["queueMessageId"] == "m5" and letter["receiveCount"] == 1
    assert letter["body"] == event["Records"][5]["body"] and "not valid JSON" in letter["cause"]
    assert len(starter.ports.workflow.inputs) == 5


def test_starter_gives_each_run_the_message_and_its_lock_terms(starter) -> None:
    # When one record is started
    event = _event("sqs_batch.json")
    event["Records"] = event["Records"][:1]
    starter_handler.handler(event, None, starter=starter)

    # Then the run's input holds the normalized message (default sender filled), the lock terms and
    # the delivery, written compactly
    (text,) = starter.ports.workflow.inputs
    run_input = json.loads(text)
    assert ": " not in text and ", " not in text
    assert run_input["delivery"] == {"queueMessageId": "m0", "receiveCount": 1}
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

    def read(self, key: str, etag: str) -> StoredFile:
        self.reads.append((key, etag))
        if self.error:
            raise self.error
        return StoredFile(self.objects[key], "application/pdf")


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


def _handle(starter: starter_handler.Starter, *records: dict[str, Any]) -> list[str]:
    """The ids the handler reports as failed (sent back to the queue)."""
    response = starter_handler.handler({"Records": list(records)}, None, starter=starter)
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


@pytest.mark.parametrize("kind", ["busy", "retry", "timeout"])
def test_the_last_allowed_delivery_is_dead_lettered_with_its_last_error(kind: str) -> None:
    # Given a message that never reached a handled outcome, on the queue's last allowed delivery
    starter = _starter(max_receive_count=3)

    # When the starter handles its third delivery
    failed = _handle(starter, _record(f"{kind}-1", receive_count=3))

    # Then it is not given back to the queue (whose redrive would move it without a reason): it is in
    # the DLQ with the count and the last error, as the message it was
    assert failed == []
    (letter,) = starter.ports.dead_letters.letters
    assert letter["source"] == "starter" and letter["receiveCount"] == 3
    assert letter["cause"].startswith("not sent after 3 deliveries; the last one ended with ")
    assert letter["error"] in {"LockBusyError", "RetryLaterError", "RunNotFinishedError"}
    assert letter["message"]["mailKey"] == f"{kind}-1" and "body" not in letter


def test_an_earlier_delivery_is_retried_and_its_error_noted() -> None:
    # Given the same message on its second of three deliveries
    starter = _starter(max_receive_count=3)

    # When it fails again
    failed = _handle(starter, _record("retry-1", receive_count=2))

    # Then it goes back to the queue, nothing is dead-lettered, and its error is noted for `dlq list`
    assert failed == ["q-retry-1"]
    assert starter.ports.dead_letters.letters == []
    ((queue_message_id, receive_count, error),) = starter.ports.locks.notes
    assert (queue_message_id, receive_count) == ("q-retry-1", 2) and error.startswith("RetryLaterError")


@pytest.mark.parametrize("kind", ["limit", "runtime"])
@pytest.mark.parametrize("owned", [True, False], ids=["lock-held", "lock-lost"])
def test_a_run_that_fails_outside_every_catch_is_caught_by_the_starter(kind: str, owned: bool) -> None:
    # Given a run that fails with an error no Catch sees, holding its lock (or no longer)
    record = _record(f"{kind}-1")
    starter = _starter()
    key = json.loads(_run_input_of(starter, record))["lock"]["key"]
    starter.ports.locks.held = {key: f"arn:run:{kind}"} if owned else {key: "arn:run:someone-else"}

    # When the starter handles it
    failed = _handle(starter, record)

    # Then the lock is freed only if that run held it, and the message is dead-lettered with the error
    assert failed == []
    assert (key in starter.ports.locks.held) is not owned
    (letter,) = starter.ports.dead_letters.letters
    error = {"limit": "States.DataLimitExceeded", "runtime": "States.Runtime"}[kind]
    assert letter["error"] == error and letter["executionArn"] == f"arn:run:{kind}"
    assert "which the workflow cannot catch" in letter["cause"]
    assert ("its lock was released" in letter["cause"]) is owned


def _run_input_of(starter: starter_handler.Starter, record: dict[str, Any]) -> str:
    """The run input the starter would build for ``record`` (a dry run on a throwaway starter)."""
    probe = _starter()
    _handle(probe, record)
    return probe.ports.workflow.inputs[0]


def test_a_japanese_body_is_sent_as_utf8_not_escaped() -> None:
    # Given a 100,000-character Japanese body (300 KB escaped as \\uXXXX, 300 KB... as UTF-8 it is too)
    starter = _starter()
    body = {"mailKey": "sent-jp", "toAddress": "a@customer.example", "body": "請求書" * 25_000}

    # When it is started
    assert _handle(starter, _record("sent-jp", body=body)) == []

    # Then the run's input carries the text itself: 3 bytes a character, not a 6-byte escape
    (text,) = starter.ports.workflow.inputs
    assert "請求書" in text and "\\\\u" not in text
    assert 225_000 <= len(text.encode("utf-8")) < 226_000


def test_a_message_whose_run_could_not_fit_is_rejected_without_a_run() -> None:
    # Given a body that fits the queue but not every payload of its run
    starter = _starter()
    body = {"mailKey": "sent-big", "toAddress": "a@customer.example", "body": "請求書" * 27_000}

    # When it is handled
    assert _handle(starter, _record("sent-big", body=body)) == []

    # Then no run started and the reason names the payload, the limit and by how much
    assert starter.ports.workflow.inputs == []
    (letter,) = starter.ports.dead_letters.letters
    assert letter["error"] == "InvalidMessageError"
    assert "too large for a run" in letter["cause"] and "262,144" in letter["cause"]
    assert "bytes too many" in letter["cause"]


def test_sender_bounds_an_unexpected_error_and_names_it() -> None:
    # Given a store failing with an error outside the contract, with a huge message
    store = FakeStore({}, KeyError("k" * 50_000))
    sender = sender_handler.Sender(store=store, transport=FakeTransport())

    # When / Then it becomes the contract's SenderFailedError, bounded, with a one-frame trace
    with pytest.raises(SenderFailedError) as raised:
        sender_handler.handler(_event("sender_payload.json"), None, sender=sender)
    assert str(raised.value).startswith("KeyError: ")
    assert len(str(raised.value)) <= MAX_REASON_CHARS
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert [frame.name for frame in frames if "stepmail" in frame.filename] == ["handler"]


def test_sender_keeps_the_contract_class_and_bounds_its_reason() -> None:
    # Given SES throttling with a very long message
    sender = sender_handler.Sender(
        store=FakeStore({"inv-1/invoice.pdf": b"x"}), transport=FakeTransport(SesThrottledError("s" * 5_000))
    )

    # When / Then the class survives (the ASL retries it by name), the reason is bounded
    with pytest.raises(SesThrottledError) as raised:
        sender_handler.handler(_event("sender_payload.json"), None, sender=sender)
    assert len(str(raised.value)) == MAX_REASON_CHARS


def test_sender_sends_each_mailbox_once_whatever_list_and_case() -> None:
    # Given one mailbox in to, cc and bcc in three spellings, and another only in bcc
    payload = _event("sender_payload.json")
    payload["message"] |= {
        "to": ["a@example.org"],
        "cc": ["A@example.org", "c@example.org"],
        "bcc": ["a@EXAMPLE.org", "b@example.org", "C@example.org"],
    }
    transport = FakeTransport()
    sender = sender_handler.Sender(store=FakeStore({"inv-1/invoice.pdf": b"x"}), transport=transport)

    # When it is sent
    sender_handler.handler(payload, None, sender=sender)

    # Then SES gets each recipient once, where it first appeared
    (request,) = transport.sent
    assert (request["to"], request["cc"], request["bcc"]) == (
        ["a@example.org"],
        ["c@example.org"],
        ["b@example.org"],
    )
    assert b"A@example.org" not in request["raw"] and b"Cc: c@example.org" in request["raw"]
