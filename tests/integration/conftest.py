"""Integration fixtures: a fresh local twin per test (the real ASL, handlers and poller) and helpers
that read where each message ended: the outbox (SES), the dead-letter queue and the lock table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from stepmail.core.starting import StartReport

from infra.config import RetryPolicy, StepmailConfig
from producer.client import StepmailClient, Target
from twin.ses import SentEmail
from twin.twin import LocalTwin


def twin_config(**overrides: Any) -> StepmailConfig:
    """Production rules, test-sized numbers: short timeouts so a dead run's lease expires in seconds."""
    settings: dict[str, Any] = {
        "sender_identities": ("example.com", "billing@example.org"),
        "default_sender": "no-reply@example.com",
        "workflow_timeout_seconds": 20,
        "sender_timeout_seconds": 10,
        "lease_seconds": 25,
        "retry": RetryPolicy(interval_seconds=1, backoff_rate=2.0, max_attempts=4, max_delay_seconds=4),
        "batch_size": 10,
        "batching_window_seconds": 0,
        "max_concurrency": 2,
        "max_receive_count": 5,
    }
    if "ses_max_send_rate" in overrides:  # concurrency and retries derived from the quota
        del settings["retry"], settings["max_concurrency"], settings["batch_size"]
    settings.update(overrides)
    return StepmailConfig(**settings)


class Harness:
    """A running twin and the questions tests ask it."""

    def __init__(self, twin: LocalTwin) -> None:
        assert twin.info is not None
        self.twin = twin
        self.info = twin.info
        self.sqs = twin.client("sqs")
        self.s3 = twin.client("s3")
        self.dynamodb = twin.client("dynamodb")
        self.producer = StepmailClient(
            Target(self.info.queue_url, self.info.bucket, self.info.region, self.info.endpoint_url)
        )

    # ---------------------------------------------------------------- producing
    def send(self, message: dict[str, Any], attachments: dict[str, bytes] | None = None) -> str:
        return self.producer.send(message, attachments)

    def send_raw(self, body: str) -> str:
        """A message straight onto the queue, as a producer without our client would send it."""
        return str(self.sqs.send_message(QueueUrl=self.info.queue_url, MessageBody=body)["MessageId"])

    def send_batch(self, bodies: list[str]) -> list[str]:
        """Up to 10 messages in one SendMessageBatch, so they arrive in one starter batch."""
        response = self.sqs.send_message_batch(
            QueueUrl=self.info.queue_url,
            Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)],
        )
        by_id = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        return [by_id[str(index)] for index in range(len(bodies))]

    # ---------------------------------------------------------------- observing
    def wait_for(self, *queue_message_ids: str, timeout: float = 60.0) -> list[StartReport]:
        """Wait until each message has a handled outcome; return the outcomes in order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results = [self.twin.journal.last(message_id) for message_id in queue_message_ids]
            if all(isinstance(result, StartReport) for result in results):
                return [result for result in results if isinstance(result, StartReport)]
            time.sleep(0.02)
        raise AssertionError(
            f"not handled after {timeout}s: {[self.twin.journal.results.get(i) for i in queue_message_ids]}"
        )

    def idle(self, timeout: float = 60.0) -> None:
        assert self.twin.wait_until_idle(timeout), "the queue did not drain"

    @property
    def emails(self) -> list[SentEmail]:
        return list(self.twin.ses.sent)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message in the DLQ, left there: received (hidden) until none is left, then shown again."""
        seen: dict[str, dict[str, Any]] = {}
        handles: list[str] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.info.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                seen[message["MessageId"]] = json.loads(message["Body"])
                handles.append(message["ReceiptHandle"])
        for handle in handles:
            self.sqs.change_message_visibility(
                QueueUrl=self.info.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        return list(seen.values())

    def emails_per_lock_key(self) -> dict[str, int]:
        """Emails sent, counted per lock key: matched through the SES message ids Mark Sent recorded
        (an email with no record counts under ``unrecorded:<id>``)."""
        items = self.dynamodb.scan(TableName=self.info.table)["Items"]
        key_of = {item["messageId"]["S"]: item["pk"]["S"] for item in items if "messageId" in item}
        counts: dict[str, int] = {}
        for email in self.emails:
            key = key_of.get(email.message_id, f"unrecorded:{email.message_id}")
            counts[key] = counts.get(key, 0) + 1
        return counts

    def lock(self, lock_key: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.info.table, Key={"pk": {"S": lock_key}}, ConsistentRead=True
        )
        return item.get("Item")

    def retry_waits(self, state: str) -> list[float]:
        return [wait.seconds for wait in self.twin.hooks.retry_waits if wait.state == state]

    def wrap_sender(
        self, wrapper: Callable[[Callable[[dict[str, Any]], Any], dict[str, Any]], Any]
    ) -> list[dict[str, Any]]:
        """Put ``wrapper(real_sender, payload)`` in front of the sender Lambda; returns the payloads seen."""
        ((arn, real),) = self.twin.hooks.functions.items()
        calls: list[dict[str, Any]] = []

        def wrapped(payload: dict[str, Any]) -> Any:
            calls.append(payload)
            return wrapper(real, payload)

        self.twin.hooks.functions[arn] = wrapped
        return calls


@pytest.fixture
def make_twin(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """``make_twin(config_overrides..., twin_options...)`` -> a started twin; stopped after the test."""
    started: list[LocalTwin] = []
    twin_options = {"time_scale", "visibility_timeout_seconds", "handler_log_level"}

    def make(**options: Any) -> Harness:
        twin_kwargs = {key: options.pop(key) for key in list(options) if key in twin_options}
        twin_kwargs.setdefault("time_scale", 0.01)
        twin = LocalTwin(twin_config(**options), outbox=tmp_path / "outbox", **twin_kwargs)
        started.append(twin)
        twin.start()
        return Harness(twin)

    yield make
    for twin in started:
        twin.stop()


@pytest.fixture
def twin(make_twin: Callable[..., Harness]) -> Harness:
    return make_twin()
