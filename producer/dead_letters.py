"""The dead-letter queue, read: each message as a :class:`DeadLetter` with the reason it is there.

The dead-letter queue holds two shapes of message:

* stepmail's envelopes (``kind: stepmail.dead-letter``) with the error and its cause: from the
  workflow's Catch (``message`` holds the message) and from the starter for invalid messages
  (``body`` holds the raw body); both name the queue message and how many times it was delivered;
* raw messages moved there by the queue's redrive policy after ``max_receive_count`` failed
  deliveries (the body is the original message, the SQS message id the original's).  Their last
  error is the note the starter wrote in the lock table (:class:`DeliveryHistory`).

A letter's own ``ApproximateReceiveCount`` is never shown: every read raises it, the console's and
``dlq list``'s included.  The count that mattered is the one in the letter (or the queue's policy).

:func:`read_dead_letter_queue` reads every letter, de-duplicated by the original queue message id, and
says how many it saw against how many the queue holds; :class:`Scan` is the pass over the queue that
listing, :mod:`producer.redrive` and the twin's console share.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from stepmail.core.contract import DEAD_LETTER_KIND, FAILED_DELIVERY_PREFIX, FailedDeliveryNote
from stepmail.core.errors import InvalidMessageError
from stepmail.core.lock import lock_key
from stepmail.core.message import MailMessage, parse_document

#: The SES tag counting a message's redrives (it travels in the message, see producer.redrive).
REDRIVE_COUNT_TAG = "stepmailRedriveCount"
#: How long a scan hides the messages it holds; they are made visible again when it ends (or when it
#: waits for letters another reader holds), and by SQS after this long if the scan dies.
SCAN_VISIBILITY_SECONDS = 60
#: How long a scan keeps waiting for letters another reader holds before it reports them unseen.
DEFAULT_WAIT_SECONDS = 30.0
SOURCE_QUEUE = "queue"  # moved by the queue's redrive policy (the envelopes say workflow or starter)


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue, whichever shape it has."""

    queue_message_id: str  # this copy's id in the dead-letter queue
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
    #: The mail queue message it was: what tells two copies of one letter apart from two letters.
    original_message_id: str = ""
    #: How many times the mail queue delivered it before it was dead-lettered (None: not known).
    deliveries: int | None = None
    execution_arn: str | None = None
    #: How many copies of this letter the dead-letter queue held when it was read (see dedupe).
    copies: int = 1

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


class DeliveryHistory:
    """What the letters do not say themselves: the queue's delivery limit and the starter's notes.

    Parameters
    ----------
    max_receive_count
        The mail queue's redrive policy: a message it moved was delivered this many times.
    note
        The starter's last note on a queue message's failed deliveries (None: none was written).
    """

    def __init__(
        self,
        max_receive_count: int | None = None,
        note: Callable[[str], FailedDeliveryNote | None] | None = None,
    ) -> None:
        self.max_receive_count = max_receive_count
        self._note = note or (lambda _: None)

    def note(self, queue_message_id: str) -> FailedDeliveryNote | None:
        return self._note(queue_message_id)

    @classmethod
    def of(cls, sqs: Any, dynamodb: Any, *, queue_url: str, table: str) -> DeliveryHistory:
        """The history a deployment keeps: its queue's redrive policy and its lock table's notes."""
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
        policy = json_object(attributes.get("Attributes", {}).get("RedrivePolicy", "")) or {}
        count = policy.get("maxReceiveCount")
        return cls(int(count) if count is not None else None, lambda id_: read_note(dynamodb, table, id_))


def read_note(dynamodb: Any, table: str, queue_message_id: str) -> FailedDeliveryNote | None:
    """The starter's note on a queue message's last failed delivery (``delivery#<id>``)."""
    key = {"pk": {"S": f"{FAILED_DELIVERY_PREFIX}{queue_message_id}"}}
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if not item:
        return None
    return FailedDeliveryNote(
        queue_message_id=queue_message_id,
        receive_count=int(item["receiveCount"]["N"]),
        error=item["lastError"]["S"],
        noted_at=item["notedAt"]["S"],
    )


def read_dead_letter(message: dict[str, Any], history: DeliveryHistory | None = None) -> DeadLetter:
    """A received SQS message of the dead-letter queue as a :class:`DeadLetter`."""
    body = message.get("Body", "")
    envelope = json_object(body)  # written by stepmail (up to 1 MiB): not a message to hold to its rules
    common = {"queue_message_id": message["MessageId"], "receipt_handle": message.get("ReceiptHandle", "")}
    if envelope is not None and envelope.get("kind") == DEAD_LETTER_KIND:
        original = envelope.get("message")
        body = json.dumps(original) if isinstance(original, dict) else str(envelope.get("body", ""))
        error = str(envelope.get("error") or "")
        deliveries = envelope.get("receiveCount")
        return DeadLetter(
            source=str(envelope.get("source", "")),
            reason=_reason(error, envelope.get("cause")),
            failed_at=envelope.get("failedAt"),
            body=body,
            error=error or None,
            original_message_id=str(envelope.get("queueMessageId") or message["MessageId"]),
            deliveries=deliveries if isinstance(deliveries, int) else None,
            execution_arn=envelope.get("executionArn"),
            **_described(strict_object(body)),
            **common,
        )
    # Moved by the redrive policy: SQS keeps the message's id, which names the starter's note.
    history = history or DeliveryHistory()
    deliveries = history.max_receive_count
    return DeadLetter(
        source=SOURCE_QUEUE,
        reason=_moved_reason(deliveries, history.note(message["MessageId"])),
        failed_at=_epoch_millis_iso(message.get("Attributes", {}).get("SentTimestamp")),
        body=body,
        original_message_id=message["MessageId"],
        deliveries=deliveries,
        **_described(strict_object(body)),
        **common,
    )


def _moved_reason(deliveries: int | None, note: FailedDeliveryNote | None) -> str:
    counted = f"failed {deliveries} deliveries" if deliveries else "failed every allowed delivery"
    reason = f"{counted} (moved by the queue's redrive policy)"
    if note is None:
        return f"{reason}; no error was noted: the starter stopped before it could answer"
    return f"{reason}; the last error noted (delivery {note.receive_count}): {note.error}"


def camel_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON output in the message's camelCase (``mail_key`` -> ``mailKey``)."""
    return {
        name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:]): value
        for name, value in fields.items()
    }


def json_object(text: str) -> dict[str, Any] | None:
    """A JSON object written by stepmail or AWS (an envelope, a policy); None when it is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def strict_object(text: str) -> dict[str, Any] | None:
    """A message body read as the starter reads it (:func:`parse_document`); None when it refuses it."""
    try:
        return parse_document(text)
    except InvalidMessageError:
        return None


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


# ---------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Tally:
    """How many letters the queue held against how many a read saw."""

    #: The queue's approximate count (visible + in flight) when the read began.
    held_at_start: int
    #: Distinct SQS messages the read saw (copies of one letter counted apart).
    seen: int
    #: Letters still in the queue that the read never saw: in flight with another reader.
    unseen: int

    @property
    def complete(self) -> bool:
        return self.unseen == 0

    def line(self) -> str:
        """The one line an operator needs: every letter seen, or how many were not and what to do.

        ``seen`` may be less than ``held_at_start`` with nothing unseen: another reader (a second
        redrive) took some letters away meanwhile, which is no letter missed.
        """
        counts = (
            f"dead-letter queue: {self.held_at_start} letter(s) at the start, {self.seen} seen by this "
            f"command, {self.unseen} unseen"
        )
        if self.complete:
            return f"{counts}: every letter accounted for"
        return f"{counts}: {self.unseen} letter(s) in flight elsewhere: run again"

    def summary(self) -> dict[str, Any]:
        return {"heldAtStart": self.held_at_start, "seen": self.seen, "unseen": self.unseen}


def queue_count(sqs: Any, dlq_url: str) -> int:
    """The queue's approximate number of letters, visible or held by a reader."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, "0")) for name in names)


class Scan:
    """Every message of the dead-letter queue, each yielded once, until all are seen or time is up.

    A received message is held (hidden) so the next receive brings others: that is how a scan gets
    past the first ten.  When nothing visible is left but the queue's count says others hold letters
    (``dlq list``, a second redrive, the console), the scan makes its own visible again, so two scans
    never wait on each other, and keeps receiving until it has seen every letter or ``wait_seconds``
    pass; :attr:`tally` then says how many it never saw.  :meth:`release` ends it.
    """

    def __init__(
        self,
        sqs: Any,
        dlq_url: str,
        *,
        history: DeliveryHistory | None = None,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        visibility_seconds: int = SCAN_VISIBILITY_SECONDS,
        receive_wait_seconds: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs, self._dlq_url, self._history = sqs, dlq_url, history
        self._wait_seconds, self._visibility = wait_seconds, visibility_seconds
        self._receive_wait = receive_wait_seconds
        self._clock, self._sleep = clock, sleep
        self._held: dict[str, str] = {}  # message id -> receipt handle, of those not deleted
        self._seen: set[str] = set()
        self._deleted: set[str] = set()
        self._held_at_start: int | None = None
        self._unseen = 0

    @property
    def tally(self) -> Tally:
        return Tally(self._held_at_start or 0, len(self._seen), self._unseen)

    def __iter__(self) -> Iterator[DeadLetter]:
        self._held_at_start = queue_count(self._sqs, self._dlq_url)
        deadline = self._clock() + self._wait_seconds
        while True:
            messages = self._receive()
            if messages:
                for message in messages:
                    if message["MessageId"] not in self._seen:
                        self._seen.add(message["MessageId"])
                        yield read_dead_letter(message, self._history)
                continue
            in_queue = queue_count(self._sqs, self._dlq_url)
            others = in_queue - len(self._held)
            if others <= 0:
                self._unseen = 0
                return
            if self._clock() >= deadline:
                self._unseen = others
                return
            # Another reader holds letters and may be waiting for ours: let it have them, then look again.
            self.release()
            self._sleep(random.uniform(0.1, 0.5))

    def _receive(self) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=self._visibility,
            WaitTimeSeconds=self._receive_wait,  # a short poll samples a subset of servers
            AttributeNames=["All"],
        )
        messages = [m for m in response.get("Messages", []) if m["MessageId"] not in self._deleted]
        for message in messages:
            self._held[message["MessageId"]] = message["ReceiptHandle"]
        return messages

    def delete(self, letter: DeadLetter) -> None:
        """Delete a letter this scan holds (the handle of its latest receive)."""
        handle = self._held.get(letter.queue_message_id, letter.receipt_handle)
        self._sqs.delete_message(QueueUrl=self._dlq_url, ReceiptHandle=handle)
        self._held.pop(letter.queue_message_id, None)  # only now: a failed delete leaves it to release()
        self._deleted.add(letter.queue_message_id)

    def release(self) -> None:
        """Make every letter this scan holds visible again at once."""
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


@dataclass(frozen=True)
class Listing:
    """Every letter a read saw (one per original queue message) and how it compares to the queue."""

    letters: list[DeadLetter]
    tally: Tally

    def summary(self) -> dict[str, Any]:
        return {"letters": [letter.summary() for letter in self.letters], **self.tally.summary()}


def dedupe(letters: list[DeadLetter]) -> list[DeadLetter]:
    """One letter per original queue message (the first read), with how many copies there were."""
    firsts: dict[str, DeadLetter] = {}
    copies: dict[str, int] = {}
    for letter in letters:
        key = letter.original_message_id or letter.queue_message_id
        firsts.setdefault(key, letter)
        copies[key] = copies.get(key, 0) + 1
    return [replace(letter, copies=copies[key]) for key, letter in firsts.items()]


def read_dead_letter_queue(
    sqs: Any,
    dlq_url: str,
    *,
    history: DeliveryHistory | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    visibility_seconds: int = SCAN_VISIBILITY_SECONDS,
) -> Listing:
    """Every letter, oldest failure first, once each; the queue is left as it was."""
    scan = Scan(
        sqs, dlq_url, history=history, wait_seconds=wait_seconds, visibility_seconds=visibility_seconds
    )
    try:
        letters = list(scan)
    finally:
        scan.release()
    return Listing(sorted(dedupe(letters), key=lambda letter: letter.failed_at or ""), scan.tally)


def list_dead_letters(
    sqs: Any,
    dlq_url: str,
    *,
    history: DeliveryHistory | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> list[DeadLetter]:
    """The letters of :func:`read_dead_letter_queue` (its tally left out)."""
    return read_dead_letter_queue(sqs, dlq_url, history=history, wait_seconds=wait_seconds).letters
