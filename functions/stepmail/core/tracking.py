"""Delivery tracking: what SES says happened to an email after it accepted it, recorded on its record.

SES publishes one event per send, delivery, bounce, complaint, reject and delivery delay of every
email sent through the stack's configuration set (to EventBridge, then the tracker Lambda).  Each
event names the SES message id; the email's record (the lock item, keyed by ``mailKey`` + recipients)
carries that id since Mark Sent.  The tracker finds the record by the id (a small index item
``msg#<id>`` -> lock key, written the first time the id is seen) and appends the event to it.

Events arrive at least once and in any order (a delivery can overtake its send), so the record's
``deliveryStatus`` only moves forward: a later, less meaningful event (a delay after the delivery)
is kept in the list but does not overwrite the status.

An event can also overtake Mark Sent: SES publishes it as soon as it accepts the email, while the
workflow is still on its way from the sender to the Mark Sent write (and the ``byMessageId`` index
is eventually consistent).  That race is normal, so the tracker waits for the record a few seconds
(:class:`RecordWait`) before it gives up and fails, and only a failure goes to the failure path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from stepmail.core.errors import StepmailError

#: The lock table's index on ``messageId`` (written by Mark Sent), how a new id finds its email.
MESSAGE_ID_INDEX = "byMessageId"
INDEX_ITEM_PREFIX = "msg#"
MAX_DETAIL_CHARS = 200
#: How long one tracker invocation waits for Mark Sent to write an event's message id.  Mark Sent
#: follows SES's answer within a second unless DynamoDB throttles it (the workflow then retries it
#: for seconds); a longer lag is left to the asynchronous invoke's retries.  The tracker function's
#: timeout is derived from it (infra/constructs/tracking.py), so the wait always ends first.
RECORD_WAIT_SECONDS = 10.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]


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
    """No email record carried this SES message id, even after waiting for Mark Sent: retry later."""


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


@dataclass(frozen=True)
class RecordWait:
    """How the tracker waits for an email's record: look again after growing pauses, until a deadline.

    The pauses start short because the usual lag behind Mark Sent is well under a second.
    """

    deadline_seconds: float = RECORD_WAIT_SECONDS
    first_pause_seconds: float = 0.1
    backoff_rate: float = 2.0
    max_pause_seconds: float = 2.0

    def pauses(self) -> Iterator[float]:
        """The pause before each new look, growing by ``backoff_rate`` up to ``max_pause_seconds``."""
        pause = self.first_pause_seconds
        while True:
            yield pause
            pause = min(pause * self.backoff_rate, self.max_pause_seconds)


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


def track_event(
    event: Mapping[str, Any],
    *,
    records: DeliveryRecords,
    wait: RecordWait | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> RecordOutcome:
    """Record one SES event on its email's record, waiting for the record if the event overtook it.

    Raises
    ------
    UnknownDeliveryEventError
        The event is not an SES event (it can never be recorded: it ends in the failure path).
    DeliveryRecordNotFoundError
        No record carried the message id before the wait's deadline: raised so the event is
        delivered again later, and then lands in the failure destination.
    """
    parsed = parse_ses_event(event)
    if parsed is None:
        return RecordOutcome.IGNORED
    lock_key = wait_for_record(
        parsed.message_id, records=records, wait=wait or RecordWait(), clock=clock, sleep=sleep
    )
    return records.record(lock_key, parsed)


def wait_for_record(
    message_id: str, *, records: DeliveryRecords, wait: RecordWait, clock: Clock, sleep: Sleep
) -> str:
    """The lock key of the record carrying ``message_id``, looking again until ``wait``'s deadline.

    The last look is at the deadline itself, so an id written just before it is still found.

    Raises
    ------
    DeliveryRecordNotFoundError
        No record carried the id by the deadline.
    """
    deadline = clock() + wait.deadline_seconds
    pauses = wait.pauses()
    while (lock_key := records.lock_key_for(message_id)) is None:
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeliveryRecordNotFoundError(
                f"no email record has SES message id {message_id} after {wait.deadline_seconds:g} s"
            )
        sleep(min(next(pauses), remaining))
    return lock_key


def index_key(message_id: str) -> str:
    """The ``pk`` of the index item of an SES message id."""
    return f"{INDEX_ITEM_PREFIX}{message_id}"
