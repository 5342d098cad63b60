"""The event source mapping, as the twin runs it: real SQS batches in, partial batch responses honoured.

moto's own SQS -> Lambda mapping delivers one record per invoke and ignores partial batch responses,
so the twin polls the queue itself, like Lambda's pollers do: up to ``batch_size`` messages, waiting
up to the batching window to fill a batch, with at most ``max_concurrency`` batches in flight.  Records
the handler reports as failed are left on the queue to reappear after the visibility timeout (and,
after ``maxReceiveCount`` receives, to be moved to the DLQ by the queue's redrive policy).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("stepmail.twin")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    failures: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, records: int, failures: int) -> None:
        with self._lock:
            self.batches += 1
            self.records += records
            self.failures += failures


@dataclass
class QueuePoller:
    sqs: Any
    queue_url: str
    queue_arn: str
    region: str
    handler: Handler
    batch_size: int
    batching_window_seconds: float
    max_concurrency: int
    #: Called with the id of each message deleted from the queue (its delivery was handled).
    on_deleted: Callable[[str], None] | None = None
    stats: PollerStats = field(default_factory=PollerStats)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _in_flight: int = 0
    _in_flight_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for number in range(self.max_concurrency):
            thread = threading.Thread(target=self._poll, name=f"poller-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop` (the event source mapping is enabled)."""
        return bool(self._threads) and not self._stop.is_set()

    @property
    def busy(self) -> bool:
        """True while any batch is being handled."""
        with self._in_flight_lock:
            return self._in_flight > 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._receive_batch()
                if messages:
                    self._handle(messages)
            except Exception as error:  # a poller never dies: the batch comes back after its visibility
                self.stats.errors += 1
                log.warning("starter invocation failed (%s): %s", type(error).__name__, error)
                self._stop.wait(0.2)

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.batching_window_seconds
        while len(messages) < self.batch_size and not self._stop.is_set():
            wait = 1 if not messages else 0
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages.extend(received)
            if messages and (not received or time.monotonic() >= deadline):
                break
        return messages

    def _handle(self, messages: list[dict[str, Any]]) -> None:
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            event = {"Records": [self._record(message) for message in messages]}
            response = self.handler(event) or {}
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
            done = [message for message in messages if message["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self._delete(done[start : start + 10])
            self.stats.add(len(messages), len(failed))
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        response = self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
        for entry in response.get("Successful", []):
            if self.on_deleted:
                self.on_deleted(messages[int(entry["Id"])]["MessageId"])

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The SQS event record Lambda builds from a received message."""
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }
