"""A randomized run: many messages — duplicates, shared mail keys, several recipient sets, attachments,
missing attachments, invalid bodies — through the twin under a random fault schedule, then the
invariant checked for every message from the outbox, the dead-letter queue and the lock table.

The fast variant runs in `make test`; `STEPMAIL_LONG_TESTS=1` runs the long one (600 messages).
`STEPMAIL_SEED=<n>` replays a schedule; the seed is printed, and named in every failure.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from stepmail.core.lock import lock_key
from stepmail.core.starting import Outcome, StartReport

LONG = os.environ.get("STEPMAIL_LONG_TESTS") == "1"
FAULTS = [
    "ses.send:throttle:p=0.08",
    "ses.send:error5xx:p=0.04",
    "ses.send:timeout:p=0.03",
    "s3.head:throttle:p=0.04",
    "s3.get:error5xx:p=0.04",
    "dynamodb.acquire:throttle:p=0.04",
    "dynamodb.pace:throttle:p=0.04",
    "dynamodb.mark:throttle:p=0.04",
    "dynamodb.release:throttle:p=0.1",
    "sender:crash:p=0.02",
    "starter:double:p=0.05",
    "starter:crash:p=0.03",
]


@dataclass
class Email:
    """One email the producers mean: a mail key and a recipient set, with its fate decided up front."""

    mail_key: str
    recipients: list[str]
    attachments: dict[str, bytes]
    missing_attachment: bool
    queue_message_ids: list[str] = field(default_factory=list)

    @property
    def lock_key(self) -> str:
        return lock_key(self.mail_key, self.recipients)

    def body(self) -> dict[str, Any]:
        names = list(self.attachments) + (["never-uploaded.pdf"] if self.missing_attachment else [])
        return {
            "mailKey": self.mail_key,
            "to": self.recipients,
            "subject": f"About {self.mail_key}",
            "body": "Hello",
            "attachedFileKeys": names,
        }


def _plan(rng: random.Random, messages: int) -> tuple[list[Email], list[Email], list[str]]:
    """The emails, the order their messages are sent in (with duplicates), and invalid bodies."""
    people = [f"p{n}@customer.example" for n in range(6)]
    emails: list[Email] = []
    for number in range(messages // 3):
        mail_key = f"rnd-{number // 2}"  # two recipient sets share each mail key
        recipients = rng.sample(people, rng.randint(1, 3))
        attachments = {f"doc{n}.bin": rng.randbytes(rng.randint(1, 3000)) for n in range(rng.randint(0, 2))}
        emails.append(Email(mail_key, recipients, attachments, missing_attachment=rng.random() < 0.1))
    emails = list({email.lock_key: email for email in emails}.values())
    invalid = [
        json.dumps({"mailKey": f"bad-{n}", "to": ["x@customer.example\r\nBcc: y@customer.example"]})
        for n in range(max(2, messages // 40))
    ]
    order = [rng.choice(emails) for _ in range(messages - len(invalid))]
    return emails, order, invalid


@pytest.mark.parametrize("messages", [600 if LONG else 100])
def test_every_message_ends_in_exactly_one_place_under_random_faults(make_twin, messages: int) -> None:
    seed = int(os.environ.get("STEPMAIL_SEED", random.randrange(1 << 30)))
    print(f"randomized run: seed={seed} messages={messages}")
    rng = random.Random(seed)
    emails, order, invalid = _plan(rng, messages)

    # Given a twin under a random fault schedule, with redeliveries after a second
    twin = make_twin(
        workflow_timeout_seconds=8,
        sender_timeout_seconds=3,
        lease_seconds=14,
        retry={"interval_seconds": 1, "max_attempts": 3, "max_delay_seconds": 2},
        max_receive_count=100,
        visibility_timeout_seconds=1,
        max_concurrency=3,
    )
    twin.twin.faults.seed = seed
    twin.twin.faults.__post_init__()
    twin.twin.faults.add(*FAULTS)
    for email in emails:
        for name, data in email.attachments.items():
            twin.s3.put_object(Bucket=twin.info.bucket, Key=f"{email.mail_key}/{name}", Body=data)

    # When every message is sent, duplicates and invalid ones mixed in
    bodies = [json.dumps(email.body()) for email in order] + invalid
    owners = order + [None] * len(invalid)
    shuffled = rng.sample(range(len(bodies)), len(bodies))
    invalid_ids: list[str] = []
    for start in range(0, len(shuffled), 10):
        chunk = shuffled[start : start + 10]
        for index, queue_message_id in zip(chunk, twin.send_batch([bodies[i] for i in chunk]), strict=True):
            owner = owners[index]
            (owner.queue_message_ids if owner else invalid_ids).append(queue_message_id)
    everything = [qid for email in emails for qid in email.queue_message_ids] + invalid_ids
    # (a failed wait reports each pending message long before pytest's own timeout would)
    reports = dict(zip(everything, twin.wait_for(*everything, timeout=300), strict=True))
    twin.idle(timeout=120)

    # Then, for every message and every email:
    context = (
        f"(seed={seed}; faults fired: {[(f.point, f.effect, f.fired) for f in twin.twin.faults.faults]})"
    )
    emails_per_key = twin.emails_per_lock_key()
    letters = twin.dead_letters()
    dead_keys = {letter["message"]["mailKey"] for letter in letters if "message" in letter}
    rejected_ids = {letter.get("queueMessageId") for letter in letters if letter.get("source") == "starter"}
    assert not [letter for letter in letters if "kind" not in letter], f"redriven by SQS {context}"
    for email in emails:
        if not email.queue_message_ids:
            continue
        outcomes = {reports[qid].outcome for qid in email.queue_message_ids}
        if email.missing_attachment:  # dead-lettered with its reason, never sent
            assert outcomes == {Outcome.DEAD_LETTERED}, f"{email.mail_key} {outcomes} {context}"
            assert emails_per_key.get(email.lock_key, 0) == 0 and email.mail_key in dead_keys, context
        else:  # sent exactly once; every other message of it skipped as a duplicate
            assert outcomes <= {Outcome.SENT, Outcome.DUPLICATE}, f"{email.mail_key} {outcomes} {context}"
            assert emails_per_key.get(email.lock_key) == 1, f"{email.mail_key} {context}"
    for queue_message_id in invalid_ids:
        assert reports[queue_message_id].outcome is Outcome.REJECTED and queue_message_id in rejected_ids, (
            context
        )
    assert sum(emails_per_key.values()) == len(twin.emails), f"an email without a record {context}"
    assert all(isinstance(report, StartReport) for report in reports.values())
    print(
        f"randomized run: {len(everything)} messages, {len(twin.emails)} emails, "
        f"{len(letters)} dead letters, "
        f"faults fired {sum(f.fired for f in twin.twin.faults.faults)} {context}"
    )
