"""One email's status: its lock record (lock, send, delivery events) and its dead letters::

    records = email_status(dynamodb, sqs, table=table, dlq_url=dlq_url, mail_key="invoice-1001")

An email is a mail key and a recipient set (its lock key): one mail key may name several emails.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from infra.resources import MAIL_KEY_ATTRIBUTE, MAIL_KEY_INDEX
from producer.dead_letters import DeadLetter, DeliveryHistory, camel_fields, list_dead_letters
from stepmail.core.addresses import parse_mailbox
from stepmail.core.lock import lock_key

#: A lock record as DynamoDB returns it (attribute name -> typed value).
Item = dict[str, Any]


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
        return camel_fields(fields)


def email_status(
    dynamodb: Any,
    sqs: Any,
    *,
    table: str,
    dlq_url: str,
    mail_key: str,
    recipients: Iterable[str] | None = None,
    history: DeliveryHistory | None = None,
) -> list[EmailStatus]:
    """What happened to the emails of ``mail_key`` (to exactly ``recipients`` when given).

    Without recipients every email of the mail key is found through the lock table's mail-key index
    (a Query: its cost follows the mail key's emails, not the table).  An email known only from the
    dead-letter queue is shown too; one asked for and found nowhere shows as unknown.
    """
    wanted = _wanted_lock_key(mail_key, recipients)
    records = _lock_records(dynamodb, table, mail_key, wanted)
    letters = _dead_letters_of(list_dead_letters(sqs, dlq_url, history=history), mail_key, wanted)
    return [
        _status(
            mail_key, key, records.get(key or ""), [letter for letter in letters if letter.lock_key == key]
        )
        for key in _lock_keys(records, letters, wanted)
    ]


def _wanted_lock_key(mail_key: str, recipients: Iterable[str] | None) -> str | None:
    """The one email asked for, when the recipients are given (None: every email of the mail key)."""
    addresses = [parse_mailbox(recipient).address for recipient in recipients or ()]
    return lock_key(mail_key, addresses) if addresses else None


def _lock_records(dynamodb: Any, table: str, mail_key: str, wanted: str | None) -> dict[str, Item]:
    """The lock records of the email asked for, or of every email of the mail key, by lock key."""
    keys = [wanted] if wanted else list(_lock_keys_of(dynamodb, table, mail_key))
    items = [_record(dynamodb, table, key) for key in keys]
    return {item["pk"]["S"]: item for item in items if item}


def _lock_keys_of(dynamodb: Any, table: str, mail_key: str) -> Iterator[str]:
    """The lock keys of the mail key's records, from the index (it projects keys only)."""
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=MAIL_KEY_INDEX,
        KeyConditionExpression="#mailKey = :mailKey",
        ExpressionAttributeNames={"#mailKey": MAIL_KEY_ATTRIBUTE},
        ExpressionAttributeValues={":mailKey": {"S": mail_key}},
    )
    for page in pages:
        for item in page.get("Items", []):
            key = str(item["pk"]["S"])
            if key.startswith(f"{mail_key}#"):  # a lock key: <mailKey>#<digest>
                yield key


def _record(dynamodb: Any, table: str, key: str) -> Item | None:
    """The record itself, read consistently (the index is eventually consistent and holds keys only)."""
    found: Item | None = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get(
        "Item"
    )
    return found


def _dead_letters_of(letters: list[DeadLetter], mail_key: str, wanted: str | None) -> list[DeadLetter]:
    """The mail key's dead letters; with an email asked for, its own and those naming no recipients."""
    mine = [letter for letter in letters if letter.mail_key == mail_key]
    return [letter for letter in mine if letter.lock_key in (wanted, None)] if wanted else mine


def _lock_keys(records: dict[str, Item], letters: list[DeadLetter], wanted: str | None) -> list[str | None]:
    """Each email to report, once: those with a record, then those only dead-lettered, then the one asked."""
    keys: list[str | None] = list(records)
    keys += [key for key in {letter.lock_key for letter in letters} if key not in records]
    if wanted and wanted not in keys:
        keys.append(wanted)
    return keys


def _status(mail_key: str, key: str | None, item: Item | None, letters: list[DeadLetter]) -> EmailStatus:
    item = item or {}
    lock_status, delivery_status = _text(item, "status"), _text(item, "deliveryStatus")
    expires = item.get("expiresAt", {}).get("N")
    return EmailStatus(
        mail_key=mail_key,
        lock_key=key,
        state=_state(lock_status, delivery_status, dead_lettered=bool(letters)),
        lock_status=lock_status,
        owner=_text(item, "owner"),
        message_id=_text(item, "messageId"),
        locked_at=_text(item, "lockedAt"),
        sent_at=_text(item, "sentAt"),
        expires_at=int(expires) if expires else None,
        delivery_status=delivery_status,
        delivery_events=_delivery_events(item),
        dead_letters=tuple(letters),
    )


def _state(lock_status: str | None, delivery_status: str | None, *, dead_lettered: bool) -> str:
    """A sent email's last delivery status (or sent); a held lock is in progress; else its DLQ trace."""
    if lock_status == "SENT":
        return delivery_status or "sent"
    if lock_status == "IN_PROGRESS":
        return "in progress"
    return "dead-lettered" if dead_lettered else "unknown"


def _delivery_events(item: Item) -> tuple[DeliveryEvent, ...]:
    return tuple(
        DeliveryEvent(
            type=_text(entry.get("M", {}), "type") or "",
            at=_text(entry.get("M", {}), "at") or "",
            detail=_text(entry.get("M", {}), "detail") or "",
        )
        for entry in item.get("deliveryEvents", {}).get("L", [])
    )


def _text(item: Item, name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None
