"""The dead-letter queue as the console shows it: every letter with the reason it is there.

The console reads and redrives through the producer's own operations (:mod:`producer.dead_letters`,
:mod:`producer.redrive`), so it says what ``stepmail dlq`` says: it pages through every letter (a held
read, released at once), one row per original queue message, with the delivery count the letter
carries (reading it changes nothing an operator sees), and it tells how many letters another reader
held while it looked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from producer.dead_letters import DeadLetter, DeliveryHistory, read_dead_letter_queue
from producer.redrive import redrive as redrive_letters
from stepmail.core.message import SenderPolicy
from twin.console.runs import json_or_text

#: The page refreshes every few seconds: it waits this long at most for letters a redrive holds...
_WAIT_SECONDS = 2.0
#: ...and hides what it reads this long at most, should the twin stop mid-read.
_VISIBILITY_SECONDS = 10
#: A redrive the user asked for waits longer for letters another reader holds.
_REDRIVE_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class TwinQueues:
    """Where the twin's letters are, and the clients to reach them."""

    sqs: Any
    dynamodb: Any
    dlq_url: str
    queue_url: str
    table: str

    def history(self) -> DeliveryHistory:
        return DeliveryHistory.of(self.sqs, self.dynamodb, queue_url=self.queue_url, table=self.table)


def listing(queues: TwinQueues) -> dict[str, Any]:
    """Every letter (one per original queue message), and how many letters the read did not see."""
    read = read_dead_letter_queue(
        queues.sqs,
        queues.dlq_url,
        history=queues.history(),
        wait_seconds=_WAIT_SECONDS,
        visibility_seconds=_VISIBILITY_SECONDS,
    )
    return {"messages": [describe(letter) for letter in read.letters], **read.tally.summary()}


def describe(letter: DeadLetter) -> dict[str, Any]:
    """A letter as the page shows it: its reason, mail key, deliveries and the original message."""
    return {
        "messageId": letter.queue_message_id,
        "originalMessageId": letter.original_message_id,
        "executionArn": letter.execution_arn,
        "mailKey": letter.mail_key,
        "original": json_or_text(letter.body),
        "source": letter.source,
        "error": letter.error or "MaxReceiveCountExceeded",
        "reason": letter.reason,
        "failedAt": letter.failed_at,
        "deliveries": letter.deliveries,
        "copies": letter.copies,
        "redriveCount": letter.redrive_count,
    }


def selection(body: Any) -> dict[str, Any] | str:
    """The letters a redrive request names: ``{"letters": [ids]}``, ``{"mailKey": K}`` or
    ``{"all": true}``, exactly one; else the reason it is refused."""
    if not isinstance(body, dict):
        return 'a redrive names its letters: {"letters": [ids]}, {"mailKey": "..."} or {"all": true}'
    given = {name for name in ("letters", "mailKey", "all") if name in body}
    if len(given) != 1:
        return 'name the letters ({"letters": [ids]}), one mail key ({"mailKey": "..."}) or {"all": true}'
    if "all" in given:
        return {"all": True} if body["all"] is True else '"all" must be true'
    if "mailKey" in given:
        key = body["mailKey"]
        return {"mail_key": key} if isinstance(key, str) and key else '"mailKey" must be a mail key'
    letters = body["letters"]
    if not isinstance(letters, list) or not letters or not all(isinstance(i, str) and i for i in letters):
        return '"letters" must list the ids of the letters to redrive'
    return {"letters": letters}


def redrive(queues: TwinQueues, selection: dict[str, Any], *, policy: SenderPolicy) -> dict[str, Any]:
    """Send the selected letters back to the mail queue, re-validated by the starter's rules first.

    Parameters
    ----------
    policy
        The twin's sender policy: a message the starter would reject again stays, with its reason.
    """
    report = redrive_letters(
        queues.sqs,
        dlq_url=queues.dlq_url,
        queue_url=queues.queue_url,
        policy=policy,
        history=queues.history(),
        wait_seconds=_REDRIVE_WAIT_SECONDS,
        **selection,
    )
    return report.summary()
