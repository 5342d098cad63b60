"""Redrive: send dead-lettered messages back to the mail queue, re-validated first.

Redriving sends each message to the mail queue and only then deletes it from the dead-letter queue:
interrupted in between, the message exists twice, and the lock sends it once.  Each redrive
increments the SES tag ``stepmailRedriveCount`` in the message itself, so the count survives every
path back to the dead-letter queue (it also shows in SES's event stream)::

    report = redrive(sqs, dlq_url=dlq_url, queue_url=queue_url, mail_key="invoice-1001")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from producer.dead_letters import REDRIVE_COUNT_TAG, DeadLetter, Scan, json_object
from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import MailMessage, SenderPolicy, describe_validation_error, parse_message


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
    scan = Scan(sqs, dlq_url)
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
    document = json_object(letter.body)
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
