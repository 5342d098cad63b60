"""The dead-letter queue, read: each message as a :class:`DeadLetter` with the reason it is there.

The dead-letter queue holds two shapes of message:

* stepmail's envelopes (``kind: stepmail.dead-letter``) with the error and its cause: from the
  workflow's Catch (``message`` holds the message) and from the starter for invalid messages
  (``body`` holds the raw body);
* raw messages moved there by the queue's redrive policy after ``max_receive_count`` failed
  deliveries (the body is the original message).

:func:`list_dead_letters` reads them all and leaves the queue as it was; :class:`Scan` is the pass
over the queue that listing and :mod:`producer.redrive` share.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from stepmail.core.contract import DEAD_LETTER_KIND
from stepmail.core.lock import lock_key
from stepmail.core.message import MailMessage

#: The SES tag counting a message's redrives (it travels in the message, see producer.redrive).
REDRIVE_COUNT_TAG = "stepmailRedriveCount"
#: How long a scan hides the messages it read; they are made visible again when it ends, and by SQS
#: after this long if the scan dies.
SCAN_VISIBILITY_SECONDS = 60
SOURCE_QUEUE = "queue"  # moved by the queue's redrive policy (the envelopes say workflow or starter)


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue, whichever shape it has."""

    queue_message_id: str
    source: str  # workflow | starter | queue
    reason: str
    failed_at: str | None
    mail_key: str | None
    recipients: tuple[str, ...]
    redrive_count: int
    #: The message to send again (the original body for the starter's and the queue's shapes).
    body: str = field(repr=False)
    receipt_handle: str = field(repr=False, default="")
    error: str | None = None

    @property
    def lock_key(self) -> str | None:
        """The email's lock key, when the message names a mail key and recipients."""
        if not self.mail_key or not self.recipients:
            return None
        return lock_key(self.mail_key, self.recipients)

    def summary(self) -> dict[str, Any]:
        """The letter as JSON-able fields (the body and the receipt handle left out)."""
        fields = asdict(self)
        del fields["body"], fields["receipt_handle"]
        return camel_fields(fields | {"recipients": list(self.recipients), "lock_key": self.lock_key})


def read_dead_letter(message: dict[str, Any]) -> DeadLetter:
    """A received SQS message of the dead-letter queue as a :class:`DeadLetter`."""
    body = message.get("Body", "")
    document = json_object(body)
    attributes = message.get("Attributes", {})
    common = {"queue_message_id": message["MessageId"], "receipt_handle": message.get("ReceiptHandle", "")}
    if document is not None and document.get("kind") == DEAD_LETTER_KIND:
        original = document.get("message")
        body = json.dumps(original) if isinstance(original, dict) else str(document.get("body", ""))
        error = str(document.get("error") or "")
        return DeadLetter(
            source=str(document.get("source", "")),
            reason=_reason(error, document.get("cause")),
            failed_at=document.get("failedAt"),
            body=body,
            error=error or None,
            **_described(json_object(body)),
            **common,
        )
    # Moved by the redrive policy: every receive counts, the one that read it here included.
    receives = max(int(attributes.get("ApproximateReceiveCount", "1")) - 1, 0)
    return DeadLetter(
        source=SOURCE_QUEUE,
        reason=f"failed {receives} deliveries (moved by the queue's redrive policy)",
        failed_at=_epoch_millis_iso(attributes.get("SentTimestamp")),
        body=body,
        **_described(document),
        **common,
    )


def camel_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON output in the message's camelCase (``mail_key`` -> ``mailKey``)."""
    return {
        name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:]): value
        for name, value in fields.items()
    }


def json_object(text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _reason(error: str, cause: Any) -> str:
    """``Error: message``; a Lambda's cause is a JSON object whose ``errorMessage`` is the sentence."""
    text = str(cause or "")
    parsed = json_object(text)
    if parsed and isinstance(parsed.get("errorMessage"), str):
        text = parsed["errorMessage"]
    return f"{error}: {text}" if error and text else error or text or "unknown"


def _described(document: dict[str, Any] | None) -> dict[str, Any]:
    """Mail key, recipients and redrive count of a message, as far as it can be read."""
    if document is None:
        return {"mail_key": None, "recipients": (), "redrive_count": 0}
    try:
        recipients = tuple(MailMessage.model_validate(document).recipients())
    except ValidationError:  # an invalid message: show what it lists
        listed = [document.get("toAddress")] + [
            item for name in ("to", "cc", "bcc") for item in _as_list(document.get(name))
        ]
        recipients = tuple(str(item) for item in listed if isinstance(item, str))
    mail_key = document.get("mailKey")
    return {
        "mail_key": mail_key if isinstance(mail_key, str) else None,
        "recipients": recipients,
        "redrive_count": _redrive_count(document),
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _redrive_count(document: dict[str, Any]) -> int:
    tags = document.get("tags")
    value = tags.get(REDRIVE_COUNT_TAG) if isinstance(tags, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _epoch_millis_iso(value: str | None) -> str | None:
    if not value or not value.isdigit():
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat()


class Scan:
    """Every message of the dead-letter queue, each received once and hidden while the scan lasts.

    Hiding is what lets the scan end (a received message does not come back in the next receive);
    :meth:`release` makes the messages not deleted visible again at once.
    """

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self._sqs, self._dlq_url = sqs, dlq_url
        self._held: dict[str, str] = {}  # message id -> receipt handle

    def __iter__(self) -> Iterator[DeadLetter]:
        while True:
            response = self._sqs.receive_message(
                QueueUrl=self._dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=SCAN_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,  # a short poll samples a subset of servers and can miss messages
                AttributeNames=["All"],
            )
            messages = [m for m in response.get("Messages", []) if m["MessageId"] not in self._held]
            if not messages:
                return
            for message in messages:
                self._held[message["MessageId"]] = message["ReceiptHandle"]
                yield read_dead_letter(message)

    def delete(self, letter: DeadLetter) -> None:
        self._sqs.delete_message(QueueUrl=self._dlq_url, ReceiptHandle=letter.receipt_handle)
        del self._held[letter.queue_message_id]

    def release(self) -> None:
        handles = list(self._held.values())
        for start in range(0, len(handles), 10):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._dlq_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(handles[start : start + 10])
                ],
            )
        self._held.clear()


def list_dead_letters(sqs: Any, dlq_url: str) -> list[DeadLetter]:
    """Every message in the dead-letter queue, oldest failure first; the queue is left as it was."""
    scan = Scan(sqs, dlq_url)
    try:
        letters = list(scan)
    finally:
        scan.release()
    return sorted(letters, key=lambda letter: letter.failed_at or "")
