"""Operating stepmail: the dead-letter queue (list, redrive) and one email's status.

Functions over boto3 clients, so the CLI, the twin's console and tests share them::

    letters = list_dead_letters(sqs, dlq_url)
    report = redrive(sqs, dlq_url=dlq_url, queue_url=queue_url, mail_key="invoice-1001")
    records = email_status(dynamodb, sqs, table=table, dlq_url=dlq_url, mail_key="invoice-1001")

The dead-letter queue holds two shapes of message:

* stepmail's envelopes (``kind: stepmail.dead-letter``) with the error and its cause: from the
  workflow's Catch (``message`` holds the message) and from the starter for invalid messages
  (``body`` holds the raw body);
* raw messages moved there by the queue's redrive policy after ``max_receive_count`` failed
  deliveries (the body is the original message).

Redriving re-validates each message, sends it to the mail queue and only then deletes it from the
dead-letter queue: interrupted in between, the message exists twice, and the lock sends it once.
Each redrive increments the SES tag ``stepmailRedriveCount`` in the message itself, so the count
survives every path back to the dead-letter queue (it also shows in SES's event stream).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from pydantic import ValidationError

from producer.client import aws_client
from stepmail.core.addresses import parse_mailbox
from stepmail.core.contract import DEAD_LETTER_KIND
from stepmail.core.errors import InvalidMessageError
from stepmail.core.lock import lock_key
from stepmail.core.message import MailMessage, SenderPolicy, describe_validation_error, parse_message

REDRIVE_COUNT_TAG = "stepmailRedriveCount"
STACK_OUTPUTS = ("QueueUrl", "DeadLetterQueueUrl", "LockTableName")
#: How long a scan hides the messages it read; they are made visible again when it ends, and by SQS
#: after this long if the scan dies.
SCAN_VISIBILITY_SECONDS = 60
SOURCE_QUEUE = "queue"  # moved by the queue's redrive policy (the envelopes say workflow or starter)


@dataclass(frozen=True)
class Resources:
    """What operating needs: the queues and the lock table (and, for the twin, its endpoint)."""

    queue_url: str
    dlq_url: str
    table: str
    region: str
    endpoint_url: str | None = None

    @classmethod
    def from_info_file(cls, path: Path) -> Resources:
        """The twin's ``--info-file``."""
        info = json.loads(path.read_text(encoding="utf-8"))
        return cls(info["queue_url"], info["dlq_url"], info["table"], info["region"], info["endpoint_url"])

    @classmethod
    def from_stack(cls, stack_name: str, *, region: str | None = None) -> Resources:
        """The deployed stack's outputs.

        Raises
        ------
        ValueError
            The stack lacks one of the outputs.
        """
        cloudformation = boto3.client("cloudformation", region_name=region)
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        missing = [name for name in STACK_OUTPUTS if name not in outputs]
        if missing:
            raise ValueError(f"stack {stack_name} has no output {', '.join(missing)}")
        return cls(
            outputs["QueueUrl"],
            outputs["DeadLetterQueueUrl"],
            outputs["LockTableName"],
            cloudformation.meta.region_name,
        )

    def client(self, service: str) -> Any:
        return aws_client(service, self.region, self.endpoint_url)


# ---------------------------------------------------------------------------------------- reading
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
        return _camel(fields | {"recipients": list(self.recipients), "lock_key": self.lock_key})


def read_dead_letter(message: dict[str, Any]) -> DeadLetter:
    """A received SQS message of the dead-letter queue as a :class:`DeadLetter`."""
    body = message.get("Body", "")
    document = _json_object(body)
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
            **_described(_json_object(body)),
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


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON output in the message's camelCase (``mail_key`` -> ``mailKey``)."""
    return {
        name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:]): value
        for name, value in fields.items()
    }


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _reason(error: str, cause: Any) -> str:
    """``Error: message``; a Lambda's cause is a JSON object whose ``errorMessage`` is the sentence."""
    text = str(cause or "")
    parsed = _json_object(text)
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


class _Scan:
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
    scan = _Scan(sqs, dlq_url)
    try:
        letters = list(scan)
    finally:
        scan.release()
    return sorted(letters, key=lambda letter: letter.failed_at or "")


# ---------------------------------------------------------------------------------------- redrive
@dataclass(frozen=True)
class Redriven:
    letter: DeadLetter
    queue_message_id: str | None  # None on a dry run


@dataclass(frozen=True)
class Kept:
    letter: DeadLetter
    reason: str  # why it cannot be redriven (it stays in the dead-letter queue)


@dataclass
class RedriveReport:
    dry_run: bool
    redriven: list[Redriven] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "redriven": [
                item.letter.summary() | {"queueMessageId": item.queue_message_id} for item in self.redriven
            ],
            "kept": [item.letter.summary() | {"keptBecause": item.reason} for item in self.kept],
        }


def redrive(
    sqs: Any,
    *,
    dlq_url: str,
    queue_url: str,
    mail_key: str | None = None,
    all: bool = False,
    dry_run: bool = False,
    policy: SenderPolicy | None = None,
) -> RedriveReport:
    """Send dead-lettered messages back to the mail queue, after re-validating them.

    ``policy`` adds the deployment's sender checks to the validation (the CLI passes the config's).
    A message that is still invalid stays in the dead-letter queue and is reported with its reason.

    Raises
    ------
    ValueError
        Neither ``mail_key`` nor ``all`` was given.
    """
    if not all and not mail_key:
        raise ValueError("give a mail key or all=True")
    report = RedriveReport(dry_run=dry_run)
    scan = _Scan(sqs, dlq_url)
    # A message redriven by this call can fail again and be back before the scan ends (with a new
    # SQS message id): recognize it by its incremented count and leave it, or the scan never ends.
    sent_back: set[tuple[str | None, tuple[str, ...], int]] = set()
    try:
        for letter in scan:
            if not all and letter.mail_key != mail_key:
                continue
            if (letter.mail_key, letter.recipients, letter.redrive_count) in sent_back:
                continue
            body, problem = prepare_redrive(letter, policy)
            if problem is not None:
                report.kept.append(Kept(letter, problem))
                continue
            queue_message_id = None
            if not dry_run:
                # Queue first, then delete: a crash in between duplicates the message, never loses it.
                queue_message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
                scan.delete(letter)
            report.redriven.append(Redriven(letter, queue_message_id))
            sent_back.add((letter.mail_key, letter.recipients, letter.redrive_count + 1))
    finally:
        scan.release()
    return report


def prepare_redrive(letter: DeadLetter, policy: SenderPolicy | None = None) -> tuple[str, str | None]:
    """The body to send again (its redrive count incremented), or the reason it is still invalid."""
    document = _json_object(letter.body)
    if document is None:
        try:
            json.loads(letter.body)
        except ValueError as error:
            return letter.body, f"the body is not valid JSON: {error}"
        return letter.body, "the body must be a JSON object"
    tags = document.get("tags")
    tags = tags if isinstance(tags, dict) else {}
    document["tags"] = {**tags, REDRIVE_COUNT_TAG: str(letter.redrive_count + 1)}
    body = json.dumps(document)
    try:
        if policy is not None:
            parse_message(body, policy)
        else:
            MailMessage.model_validate(document)
    except InvalidMessageError as error:
        return body, error.reason
    except ValidationError as error:
        return body, describe_validation_error(error)
    return body, None


# ---------------------------------------------------------------------------------------- status
@dataclass(frozen=True)
class DeliveryEvent:
    type: str
    at: str
    detail: str = ""


@dataclass(frozen=True)
class EmailStatus:
    """One email (mail key + recipient set): its lock record and its dead letters."""

    mail_key: str
    lock_key: str | None
    state: str  # in progress | sent | delivered | bounced | ... | dead-lettered | unknown
    lock_status: str | None = None  # IN_PROGRESS | SENT
    owner: str | None = None
    message_id: str | None = None
    locked_at: str | None = None
    sent_at: str | None = None
    expires_at: int | None = None
    delivery_status: str | None = None
    delivery_events: tuple[DeliveryEvent, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()

    def summary(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["delivery_events"] = [asdict(event) for event in self.delivery_events]
        fields["dead_letters"] = [letter.summary() for letter in self.dead_letters]
        return _camel(fields)


def email_status(
    dynamodb: Any,
    sqs: Any,
    *,
    table: str,
    dlq_url: str,
    mail_key: str,
    recipients: Iterable[str] | None = None,
) -> list[EmailStatus]:
    """What happened to the emails of ``mail_key`` (to exactly ``recipients`` when given).

    Without recipients every email of the mail key is found by scanning the lock table for keys
    starting ``<mailKey>#`` (fine for an operator; the cost grows with the table).
    """
    addresses = [parse_mailbox(recipient).address for recipient in recipients or ()]
    wanted = lock_key(mail_key, addresses) if addresses else None
    if wanted:
        found = dynamodb.get_item(TableName=table, Key={"pk": {"S": wanted}}, ConsistentRead=True)
        items = [found["Item"]] if "Item" in found else []
    else:
        items = list(_scan_locks(dynamodb, table, mail_key))
    letters = [letter for letter in list_dead_letters(sqs, dlq_url) if letter.mail_key == mail_key]
    if wanted:
        letters = [letter for letter in letters if letter.lock_key in (wanted, None)]
    by_key = {item["pk"]["S"]: item for item in items}
    keys = list(by_key) + [key for key in {letter.lock_key for letter in letters} if key not in by_key]
    if wanted and wanted not in keys:
        keys.append(wanted)
    return [
        _status(
            mail_key, key, by_key.get(key or ""), [letter for letter in letters if letter.lock_key == key]
        )
        for key in keys
    ]


def _scan_locks(dynamodb: Any, table: str, mail_key: str) -> Iterator[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        # mailKey too: the tracker's index items (pk "msg#<id>") must not pass for mail key "msg".
        FilterExpression="begins_with(pk, :prefix) AND mailKey = :mailKey",
        ExpressionAttributeValues={":prefix": {"S": f"{mail_key}#"}, ":mailKey": {"S": mail_key}},
        ConsistentRead=True,
    )
    for page in pages:
        yield from page.get("Items", [])


def _status(
    mail_key: str, key: str | None, item: dict[str, Any] | None, letters: list[DeadLetter]
) -> EmailStatus:
    item = item or {}

    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value is not None else None

    events = tuple(
        DeliveryEvent(
            type=str(entry.get("M", {}).get("type", {}).get("S", "")),
            at=str(entry.get("M", {}).get("at", {}).get("S", "")),
            detail=str(entry.get("M", {}).get("detail", {}).get("S", "")),
        )
        for entry in item.get("deliveryEvents", {}).get("L", [])
    )
    lock_status, delivery_status = text("status"), text("deliveryStatus")
    if lock_status == "SENT":
        state = delivery_status or "sent"
    elif lock_status == "IN_PROGRESS":
        state = "in progress"
    else:
        state = "dead-lettered" if letters else "unknown"
    expires = item.get("expiresAt", {}).get("N")
    return EmailStatus(
        mail_key=mail_key,
        lock_key=key,
        state=state,
        lock_status=lock_status,
        owner=text("owner"),
        message_id=text("messageId"),
        locked_at=text("lockedAt"),
        sent_at=text("sentAt"),
        expires_at=int(expires) if expires else None,
        delivery_status=delivery_status,
        delivery_events=events,
        dead_letters=tuple(letters),
    )


# ---------------------------------------------------------------------------------------- rendering
def render_letters(letters: list[DeadLetter]) -> str:
    """A readable table of dead letters."""
    if not letters:
        return "the dead-letter queue is empty"
    rows = [("FAILED AT", "SOURCE", "MAIL KEY", "RECIPIENTS", "REDRIVES", "REASON")]
    rows += [
        (
            letter.failed_at or "-",
            letter.source,
            letter.mail_key or "-",
            ", ".join(letter.recipients) or "-",
            str(letter.redrive_count),
            letter.reason,
        )
        for letter in letters
    ]
    return _table(rows)


def render_redrive(report: RedriveReport) -> str:
    verb = "would redrive" if report.dry_run else "redriven"
    lines = [f"{verb}: {len(report.redriven)}, kept in the dead-letter queue: {len(report.kept)}"]
    lines += [
        f"  {verb} {item.letter.mail_key} ({item.letter.source}, redrive #{item.letter.redrive_count + 1})"
        for item in report.redriven
    ]
    lines += [f"  kept {item.letter.mail_key or '-'}: {item.reason}" for item in report.kept]
    return "\n".join(lines)


def render_status(records: list[EmailStatus]) -> str:
    """One block per email: its state, lock record, delivery events and dead letters."""
    if not records:
        return "no email found"
    blocks = []
    for record in records:
        rows = [
            ("mail key", record.mail_key),
            ("lock key", record.lock_key or "-"),
            ("state", record.state),
        ]
        optional = (
            ("lock", record.lock_status),
            ("owner", record.owner),
            ("locked at", record.locked_at),
            ("sent at", record.sent_at),
            ("SES message id", record.message_id),
            ("delivery", record.delivery_status),
        )
        rows += [(name, value) for name, value in optional if value]
        rows += [
            (f"event {event.at}", f"{event.type} {event.detail}".strip()) for event in record.delivery_events
        ]
        rows += [
            (
                f"dead-lettered {letter.failed_at or ''}".strip(),
                f"{letter.reason} (redriven {letter.redrive_count}x)",
            )
            for letter in record.dead_letters
        ]
        blocks.append("\n".join(f"{name:<20} {value}" for name, value in rows))
    return "\n\n".join(blocks)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]])
        for row in rows
    )
