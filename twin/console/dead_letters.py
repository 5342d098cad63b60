"""The dead-letter queue as the console shows it: each message with the reason it is there.

Three kinds of messages land in the DLQ: the starter's envelope for an invalid message
(``source: starter``), the workflow's envelope for a permanent failure (``source: workflow``), and
the original body moved by the queue's redrive policy after ``max_receive_count`` deliveries (no
envelope: the receive count is the reason).
"""

from __future__ import annotations

from typing import Any

from producer.dead_letters import read_dead_letter
from producer.redrive import redrive as redrive_letters
from stepmail.core.contract import DEAD_LETTER_KIND
from stepmail.core.message import SenderPolicy
from twin.console.runs import json_or_text

_PEEK_ROUNDS = 20


def peek(sqs: Any, dlq_url: str) -> list[dict[str, Any]]:
    """Every message in the DLQ with its reason, read without consuming it (visibility timeout 0).

    A peek rather than ``producer.dead_letters.list_dead_letters``' scan, which hides messages while it
    runs: the console refreshes often and must not get in the way of an operator's redrive.
    """
    return [describe(message) for message in _peek(sqs, dlq_url)]


def describe(message: dict[str, Any]) -> dict[str, Any]:
    """A DLQ message with its reason, mail key and the original message, whatever its kind.

    The reason is worded by :func:`producer.dead_letters.read_dead_letter`, so the console and
    ``stepmail dlq`` say the same thing.
    """
    body = json_or_text(message["Body"])
    envelope = body if isinstance(body, dict) and body.get("kind") == DEAD_LETTER_KIND else None
    original = (envelope.get("message") or json_or_text(envelope.get("body"))) if envelope else body
    letter = read_dead_letter(message)
    return {
        "messageId": message["MessageId"],
        "executionArn": envelope.get("executionArn") if envelope else None,
        "mailKey": original.get("mailKey") if isinstance(original, dict) else None,
        "original": original,
        "source": letter.source,
        "error": letter.error or "MaxReceiveCountExceeded",
        "reason": letter.reason,
        "failedAt": letter.failed_at,
        "redriveCount": letter.redrive_count,
    }


def redrive(
    sqs: Any, *, dlq_url: str, queue_url: str, mail_key: str | None, policy: SenderPolicy
) -> dict[str, Any]:
    """Send dead letters back to the mail queue (one mail key's, or all of them), re-validated first.

    Parameters
    ----------
    policy
        The twin's sender policy: a message the starter would reject again stays, with its reason.
    """
    report = redrive_letters(
        sqs, dlq_url=dlq_url, queue_url=queue_url, mail_key=mail_key, all=mail_key is None, policy=policy
    )
    return report.summary()


def _peek(sqs: Any, dlq_url: str) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(_PEEK_ROUNDS):
        response = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        )
        messages = response.get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        for message in messages:
            seen[message["MessageId"]] = message
        if not fresh:
            break
    return sorted(seen.values(), key=lambda m: int(m.get("Attributes", {}).get("SentTimestamp", "0")))
