"""Integration fixtures: a fresh local twin per test (the real ASL, handlers and poller) and helpers
that read where each message ended: the outbox (SES), the dead-letter queue and the lock table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config import RetryPolicy, StepmailConfig
from producer.client import StepmailClient
from stepmail.core.lock import lock_key
from stepmail.core.message import MailMessage
from stepmail.core.starting import StartReport
from twin.ses import SentEmail
from twin.twin import LocalTwin

#: How long a test waits for the pipeline by default: a failed wait must report well before pytest's
#: own timeout (pyproject.toml) kills the test without saying what it was waiting for.
WAIT_SECONDS = 60.0


def twin_config(**overrides: Any) -> StepmailConfig:
    """Production rules, test-sized numbers: short timeouts so a dead run's lease expires in seconds."""
    settings: dict[str, Any] = {
        "sender_identities": ("example.com", "billing@example.org"),
        "default_sender": "no-reply@example.com",
        "workflow_timeout_seconds": 20,
        "sender_timeout_seconds": 10,
        "lease_seconds": 35,
        "retry": RetryPolicy(interval_seconds=1, backoff_rate=2.0, max_attempts=4, max_delay_seconds=4),
        "batch_size": 10,
        "batching_window_seconds": 0,
        "max_concurrency": 2,
        "max_receive_count": 5,
        # A message given back to the queue comes back within a second or two
        "retry_later_base_seconds": 1,
        "retry_later_max_seconds": 2,
        "quota_refresh_seconds": 1,
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
        self.producer = StepmailClient(self.info)
        #: The body of every message this harness sent, by SQS message id (for failure reports).
        self.bodies: dict[str, str] = {}

    # ---------------------------------------------------------------- producing
    def send(self, message: dict[str, Any], attachments: dict[str, bytes] | None = None) -> str:
        queue_message_id = self.producer.send(message, attachments)
        self.bodies[queue_message_id] = json.dumps(message)
        return queue_message_id

    def send_raw(self, body: str) -> str:
        """A message straight onto the queue, as a producer without our client would send it."""
        queue_message_id = str(
            self.sqs.send_message(QueueUrl=self.info.queue_url, MessageBody=body)["MessageId"]
        )
        self.bodies[queue_message_id] = body
        return queue_message_id

    def send_batch(self, bodies: list[str]) -> list[str]:
        """Up to 10 messages in one SendMessageBatch, so they arrive in one starter batch."""
        response = self.sqs.send_message_batch(
            QueueUrl=self.info.queue_url,
            Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)],
        )
        by_id = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        ids = [by_id[str(index)] for index in range(len(bodies))]
        self.bodies.update(zip(ids, bodies, strict=True))
        return ids

    # ---------------------------------------------------------------- observing
    def wait_for(self, *queue_message_ids: str, timeout: float = WAIT_SECONDS) -> list[StartReport]:
        """Wait until the pipeline is done with each message (a handled outcome, and off the queue);
        return each message's outcome, in order.

        Raises AssertionError after ``timeout`` (kept well under pytest's own timeout), describing every
        message still pending: its journal history, its lock item and the queues' counts.
        """
        journal = self.twin.journal
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(journal.done(message_id) for message_id in queue_message_ids):
                return [self._outcome(message_id) for message_id in queue_message_ids]
            time.sleep(0.02)
        pending = [message_id for message_id in queue_message_ids if not journal.done(message_id)]
        raise AssertionError(f"{len(pending)} messages not done after {timeout}s\n{self.describe(pending)}")

    def idle(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until the queue is empty (nothing visible or in flight) and no batch is being handled."""
        if not self.twin.wait_until_idle(timeout):
            raise AssertionError(f"the queue did not drain in {timeout}s\n{self.describe([])}")

    def _outcome(self, queue_message_id: str) -> StartReport:
        outcome = self.twin.journal.outcome(queue_message_id)
        assert outcome is not None
        return outcome

    def describe(self, queue_message_ids: list[str]) -> str:
        """What a failed wait reports: the queues' counts, then each message's history and lock."""
        lines = [f"mail queue: {self.queue_counts(self.info.queue_url)}"]
        lines.append(f"dead-letter queue: {self.queue_counts(self.info.dlq_url)}")
        for message_id in queue_message_ids:
            key = self.lock_key_of(message_id)
            lines.append(
                f"- {message_id}: deleted={self.twin.journal.is_deleted(message_id)} "
                f"history={self.twin.journal.history(message_id)!r} "
                f"lock {key}={self.lock(key) if key else None}"
            )
        return "\n".join(lines)

    def queue_counts(self, queue_url: str) -> dict[str, str]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        return {
            name.removeprefix("ApproximateNumberOfMessages") or "Visible": attributes[name] for name in names
        }

    def lock_key_of(self, queue_message_id: str) -> str | None:
        """The lock key of a message this harness sent, when its body is a valid message."""
        try:
            message = MailMessage.model_validate(json.loads(self.bodies.get(queue_message_id, "")))
        except ValueError:
            return None
        return lock_key(message.mail_key, message.recipients())

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

    def send_slots(self) -> dict[str, int]:
        """Recipients sent per second, as the pacing counters in the lock table hold them (the counters
        of a second's two halves, ``rate#<second>.0`` and ``.5``, added up)."""
        items = self.dynamodb.scan(TableName=self.info.table)["Items"]
        per_second: dict[str, int] = {}
        for item in items:
            key = item["pk"]["S"]
            if key.startswith("rate#"):
                second = key.removeprefix("rate#").split(".")[0]
                per_second[second] = per_second.get(second, 0) + int(item["sent"]["N"])
        return per_second

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
        if "ses_quota" in options:  # the account's quota the twin's SES enforces (the config may not cap it)
            twin_kwargs["ses_max_send_rate"] = options.pop("ses_quota")
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
