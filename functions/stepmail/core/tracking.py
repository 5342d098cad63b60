"""Delivery tracking: what SES says happened to an email after it accepted it, recorded on its record.

SES publishes one event per send, delivery, bounce, complaint, reject and delivery delay of every
email sent through the stack's configuration set (to EventBridge, then the tracker Lambda).  Each
event names the SES message id; the email's record (the lock item, keyed by ``mailKey`` + recipients)
carries that id since Mark Sent.  The tracker finds the record by the id (a small index item
``msg#<id>`` -> lock key, written the first time the id is seen) and appends the event to it.

Events arrive at least once and in any order (a delivery can overtake its send), so the record's
``deliveryStatus`` only moves forward: a later, less meaningful event (a delay after the delivery)
is kept in the list but does not overwrite the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from stepmail.core.errors import StepmailError

#: The lock table's index on ``messageId`` (written by Mark Sent), how a new id finds its email.
MESSAGE_ID_INDEX = "byMessageId"
INDEX_ITEM_PREFIX = "msg#"
MAX_DETAIL_CHARS = 200


class DeliveryStatus(StrEnum):
    SENT = "sent"
    DELIVERY_DELAYED = "delivery-delayed"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


#: SES's ``eventType`` -> our status.  Other types (Open, Click, Subscription...) are not tracked.
EVENT_TYPES: Mapping[str, DeliveryStatus] = {
    "Send": DeliveryStatus.SENT,
    "DeliveryDelay": DeliveryStatus.DELIVERY_DELAYED,
    "Delivery": DeliveryStatus.DELIVERED,
    "Reject": DeliveryStatus.REJECTED,
    "Bounce": DeliveryStatus.BOUNCED,
    "Complaint": DeliveryStatus.COMPLAINED,
}

#: How meaningful a status is: a record's status only moves to one of equal or higher rank.  A
#: complaint comes after a delivery; a bounce or reject is final; a delay is only news until then.
STATUS_RANK: Mapping[DeliveryStatus, int] = {
    DeliveryStatus.SENT: 0,
    DeliveryStatus.DELIVERY_DELAYED: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.REJECTED: 3,
    DeliveryStatus.BOUNCED: 3,
    DeliveryStatus.COMPLAINED: 4,
}


class DeliveryRecordNotFoundError(StepmailError):
    """No email record carries this SES message id yet (Mark Sent may not have run): retry later."""


class UnknownDeliveryEventError(StepmailError):
    """The event is not an SES event this tracker understands."""


@dataclass(frozen=True)
class DeliveryEvent:
    """One SES event, reduced to what the record keeps (no addresses unless the event is about one)."""

    message_id: str
    status: DeliveryStatus
    at: str
    detail: str

    @property
    def rank(self) -> int:
        return STATUS_RANK[self.status]

    def as_item(self) -> dict[str, str]:
        """The element of ``deliveryEvents``: {type, at, detail}."""
        return {"type": str(self.status), "at": self.at, "detail": self.detail}


class RecordOutcome(StrEnum):
    RECORDED = "recorded"
    RECORDED_WITHOUT_STATUS = "recorded-without-status"  # kept in the list; a stronger status stands
    STALE = "stale"  # the record now belongs to a later send of the same email (or expired)
    IGNORED = "ignored"  # an event type that is not tracked


class DeliveryRecords(Protocol):
    def lock_key_for(self, message_id: str) -> str | None:
        """The lock key of the email SES sent as ``message_id`` (index item, then the table's index),
        writing the index item the first time; None when no record carries the id."""
        ...

    def record(self, lock_key: str, event: DeliveryEvent) -> RecordOutcome:
        """Append the event and move the status forward, only if the record still has this message id."""
        ...


def parse_ses_event(event: Mapping[str, Any]) -> DeliveryEvent | None:
    """An SES event (the EventBridge event's ``detail``, or an SNS notification's message).

    Returns None for event types that are not tracked (opens, clicks...).

    Raises
    ------
    UnknownDeliveryEventError
        When the event has no ``eventType`` or no ``mail.messageId``.
    """
    event_type = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") or {}
    message_id = mail.get("messageId")
    if not isinstance(event_type, str) or not isinstance(message_id, str) or not message_id:
        raise UnknownDeliveryEventError("not an SES event: no eventType or mail.messageId")
    status = EVENT_TYPES.get(event_type)
    if status is None:
        return None
    body = event.get(_BODY_KEYS[status]) or {}
    at = str(body.get("timestamp") or mail.get("timestamp") or "")
    return DeliveryEvent(message_id=message_id, status=status, at=at, detail=_detail(status, body))


_BODY_KEYS: Mapping[DeliveryStatus, str] = {
    DeliveryStatus.SENT: "send",
    DeliveryStatus.DELIVERY_DELAYED: "deliveryDelay",
    DeliveryStatus.DELIVERED: "delivery",
    DeliveryStatus.REJECTED: "reject",
    DeliveryStatus.BOUNCED: "bounce",
    DeliveryStatus.COMPLAINED: "complaint",
}


def _detail(status: DeliveryStatus, body: Mapping[str, Any]) -> str:
    """A short, body-free description: the SES classification, never the message's content."""
    if status is DeliveryStatus.BOUNCED:
        parts = [body.get("bounceType"), body.get("bounceSubType")]
        recipients = body.get("bouncedRecipients") or []
        codes = [str(r["status"]) for r in recipients if isinstance(r, Mapping) and r.get("status")]
        parts.append(",".join(sorted(set(codes))))
    elif status is DeliveryStatus.COMPLAINED:
        parts = [body.get("complaintFeedbackType") or body.get("complaintSubType")]
    elif status is DeliveryStatus.REJECTED:
        parts = [body.get("reason")]
    elif status is DeliveryStatus.DELIVERY_DELAYED:
        parts = [body.get("delayType")]
    elif status is DeliveryStatus.DELIVERED:
        parts = [body.get("smtpResponse")]
    else:
        parts = []
    return " ".join(str(part) for part in parts if part)[:MAX_DETAIL_CHARS]


def track_event(event: Mapping[str, Any], *, records: DeliveryRecords) -> RecordOutcome:
    """Record one SES event on its email's record.

    Raises
    ------
    UnknownDeliveryEventError
        The event is not an SES event (dropping it is right: it will never match).
    DeliveryRecordNotFoundError
        No record carries the message id yet: raised so the event is delivered again later.
    """
    parsed = parse_ses_event(event)
    if parsed is None:
        return RecordOutcome.IGNORED
    lock_key = records.lock_key_for(parsed.message_id)
    if lock_key is None:
        raise DeliveryRecordNotFoundError(f"no email record has SES message id {parsed.message_id}")
    return records.record(lock_key, parsed)


def index_key(message_id: str) -> str:
    """The ``pk`` of the index item of an SES message id."""
    return f"{INDEX_ITEM_PREFIX}{message_id}"
