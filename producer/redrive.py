"""Redrive: send dead-lettered messages back to the mail queue, re-validated first.

Redriving sends each message to the mail queue and only then deletes it from the dead-letter queue:
interrupted in between, the message exists twice, and the lock sends it once.  Each redrive
increments the SES tag ``stepmailRedriveCount`` in the message itself, so the count survives every
path back to the dead-letter queue (it also shows in SES's event stream)::

    report = redrive(sqs, dlq_url=dlq_url, queue_url=queue_url, mail_key="invoice-1001")

A message is re-validated by the starter's own strict reading (:func:`stepmail.core.message.parse_message`):
one the starter would refuse again (a key given twice, say) stays in the dead-letter queue with the
reason.  Every letter the redrive sees is accounted for in its report (redriven, kept, an extra copy
deleted, back again from this redrive, another mail key's), and the report's tally says how many
letters it never saw because another reader held them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from producer.dead_letters import (
    DEFAULT_WAIT_SECONDS,
    REDRIVE_COUNT_TAG,
    DeadLetter,
    DeliveryHistory,
    Scan,
    Tally,
)
from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import (
    SenderPolicy,
    message_body,
    parse_document,
    parse_message,
    validate_message,
)


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
    #: Extra copies of a letter already redriven or kept by this redrive: deleted (not on a dry run).
    copies: list[DeadLetter] = field(default_factory=list)
    #: Letters dead-lettered again after this redrive began (one it sent back failed once more): left
    #: for the next redrive, so two redrives never pass a failing message back and forth.
    returned: list[DeadLetter] = field(default_factory=list)
    #: Letters not asked for (other mail keys, other ids), left alone.
    other_keys: int = 0
    tally: Tally = field(default_factory=lambda: Tally(0, 0, 0))

    def summary(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "redriven": [
                item.letter.summary() | {"queueMessageId": item.queue_message_id} for item in self.redriven
            ],
            "kept": [item.letter.summary() | {"keptBecause": item.reason} for item in self.kept],
            "copiesDeleted": [letter.summary() for letter in self.copies],
            "returned": [letter.summary() for letter in self.returned],
            "otherKeys": self.other_keys,
            **self.tally.summary(),
        }


def redrive(
    sqs: Any,
    *,
    dlq_url: str,
    queue_url: str,
    mail_key: str | None = None,
    letters: Collection[str] | None = None,
    all: bool = False,
    dry_run: bool = False,
    policy: SenderPolicy | None = None,
    history: DeliveryHistory | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> RedriveReport:
    """Send dead-lettered messages back to the mail queue, after re-validating them.

    Which: one ``mail_key``'s letters, the ``letters`` named by id (the original queue message's or
    the dead-letter queue's), or ``all`` of them, exactly one.  ``policy`` adds the deployment's
    sender checks to the validation (the CLI passes the config's).  A message that is still invalid
    stays in the dead-letter queue and is reported with its reason.

    Raises
    ------
    ValueError
        Not exactly one of ``mail_key``, ``letters`` and ``all`` was given.
    """
    if sum((bool(mail_key), letters is not None, all)) != 1:
        raise ValueError("give a mail key, the letters' ids, or all=True (exactly one)")
    named = set(letters or ())

    def chosen(letter: DeadLetter) -> bool:
        if mail_key:
            return letter.mail_key == mail_key
        return all or bool({letter.original_message_id, letter.queue_message_id} & named)

    report = RedriveReport(dry_run=dry_run)
    started = datetime.now(UTC)
    scan = Scan(sqs, dlq_url, history=history, wait_seconds=wait_seconds)
    handled: set[str] = set()  # original queue message ids redriven or kept by this call
    sent: set[str] = set()  # queue message ids this call sent (they name the letters if they fail again)
    try:
        for letter in scan:
            original = letter.original_message_id or letter.queue_message_id
            if not chosen(letter):
                report.other_keys += 1
            elif original in sent or _failed_after(letter, started):
                report.returned.append(letter)
            elif original in handled:
                if not dry_run:
                    scan.delete(letter)
                report.copies.append(letter)
            else:
                handled.add(original)
                queue_message_id = _redrive_one(sqs, scan, letter, queue_url, report, dry_run, policy)
                if queue_message_id:
                    sent.add(queue_message_id)
    finally:
        scan.release()
    report.tally = scan.tally
    return report


def _redrive_one(
    sqs: Any,
    scan: Scan,
    letter: DeadLetter,
    queue_url: str,
    report: RedriveReport,
    dry_run: bool,
    policy: SenderPolicy | None,
) -> str | None:
    body, problem = prepare_redrive(letter, policy)
    if problem is not None:
        report.kept.append(Kept(letter, problem))
        return None
    queue_message_id = None
    if not dry_run:
        # Queue first, then delete: a crash in between duplicates the message, never loses it.
        queue_message_id = str(sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"])
        scan.delete(letter)
    report.redriven.append(Redriven(letter, queue_message_id))
    return queue_message_id


def _failed_after(letter: DeadLetter, started: datetime) -> bool:
    """Whether the letter was dead-lettered after ``started`` (by a redrive running now)."""
    if not letter.failed_at:
        return False
    try:
        failed = datetime.fromisoformat(letter.failed_at)
    except ValueError:
        return False
    return (failed if failed.tzinfo else failed.replace(tzinfo=UTC)) >= started


def prepare_redrive(letter: DeadLetter, policy: SenderPolicy | None = None) -> tuple[str, str | None]:
    """The body to send again (its redrive count incremented), or the reason it is still invalid.

    The body is read and checked as the starter reads it: what the starter refused stays refused.
    """
    try:
        document = parse_document(letter.body)
    except InvalidMessageError as error:
        return letter.body, error.reason
    tags = document.get("tags")
    tags = tags if isinstance(tags, dict) else {}
    document["tags"] = {**tags, REDRIVE_COUNT_TAG: str(letter.redrive_count + 1)}
    try:
        body = message_body(document)
        if policy is not None:
            parse_message(body, policy)
        else:
            validate_message(parse_document(body))
    except InvalidMessageError as error:
        return letter.body, error.reason
    return body, None
