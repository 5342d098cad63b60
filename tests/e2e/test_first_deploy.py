"""The first deploy proves itself: mail through the target to SES's mailbox simulator, and back.

`make e2e` (``STEPMAIL_E2E_STACK=<stack>``, AWS credentials in the environment) runs this module
against the deployed stack; without that variable it runs against local twins (default deployment, and
one with delivery tracking), so `make test` proves the suite itself.  One scenario per target:

1. emails to ``success@``, ``bounce@``, ``complaint@`` and ``suppressionlist@simulator.amazonses.com``
   (the first from the default sender with a display name, with an attachment; one more from an address
   identity if the configuration has one), a message listing an attachment never uploaded, and an
   invalid message (no recipient);
2. once the first is sent, the same email again (a duplicate);
3. a wait with a progress line until every outcome is in, then each check through the producer's own
   operations (``producer.status.email_status``, ``producer.dead_letters``), and a summary naming the
   assumption of docs/aws-assumptions.md each check settles;
4. everything the run created removed: its lock records, its attachments, its dead letters (the
   pacing counters expire by themselves).

Delivery tracking is opt-in: without it the default deployment records each email as sent, with its
SES message id and no delivery events; with it, each simulator address's event ends on the record.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.config import StepmailConfig
from producer import doctor, project
from producer.client import StepmailClient
from producer.dead_letters import DeadLetter, Scan, list_dead_letters
from producer.deployment import Deployment, aws_client
from producer.status import EmailStatus, email_status
from stepmail.core.addresses import parse_mailbox
from stepmail.core.lock import lock_key
from stepmail.core.tracking import index_key

from .conftest import STACK_VARIABLE

SIMULATOR = "simulator.amazonses.com"
#: A pacing counter's key: a whole second of $$.State.EnteredTime and its half (".0" or ".5").
PACING_KEY = re.compile(r"^rate#\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.[05]$")


# ---------------------------------------------------------------------------------------------- targets
@dataclass
class Target:
    """Where the e2e sends: a deployed stack or a twin, and how long to wait for it."""

    name: str
    deployment: Deployment
    config: StepmailConfig
    tracking: bool
    poll_seconds: float
    timeout_seconds: float
    #: Polls in a row that must find the mail queue empty (SQS's counts are approximate on AWS).
    empty_polls: int = 2

    def client(self, service: str) -> Any:
        return self.deployment.client(service)


def _stack_target() -> Target:
    """The deployed stack named by STEPMAIL_E2E_STACK, checked against the project's configuration."""
    stack, config = os.environ[STACK_VARIABLE], project.project_config()
    region = os.environ.get("STEPMAIL_E2E_REGION") or os.environ.get("AWS_REGION") or config.region
    outputs = doctor.stack_outputs(aws_client("cloudformation", region), stack)
    return Target(
        name=f"stack {stack} in {region}",
        deployment=Deployment.from_stack(stack, region=region),
        config=config,
        tracking="ConfigurationSetName" in outputs,
        poll_seconds=5.0,
        timeout_seconds=600.0,
        empty_polls=4,
    )


@pytest.fixture(
    scope="module", params=["stack"] if os.environ.get(STACK_VARIABLE) else ["twin", "twin-tracking"]
)
def target(request: pytest.FixtureRequest, aws_environment: bool, tmp_path_factory) -> Iterator[Target]:
    if request.param == "stack":
        yield _stack_target()
        return
    from tests.integration.conftest import twin_config
    from twin.twin import LocalTwin

    tracking = request.param == "twin-tracking"
    outbox: Path = tmp_path_factory.mktemp("e2e-outbox")
    with LocalTwin(twin_config(delivery_tracking=tracking), outbox=outbox, time_scale=0.01) as twin:
        assert twin.info is not None
        yield Target(
            name=f"local twin ({'delivery tracking' if tracking else 'default deployment'})",
            deployment=twin.info,
            config=twin.config,
            tracking=tracking,
            poll_seconds=0.2,
            timeout_seconds=90.0,
        )


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class Email:
    """One email the run sends, and the record it should end with."""

    case: str
    mail_key: str
    to: str
    message: dict[str, Any]
    #: The delivery status the record ends with when tracking is on (None: the email is not sent).
    tracked_status: str | None = None


@dataclass
class Run:
    target: Target
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    emails: dict[str, Email] = field(default_factory=dict)
    statuses: dict[str, list[EmailStatus]] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)
    pacing_keys: list[str] = field(default_factory=list)
    #: The SES message id the first send of the duplicated email was recorded with.
    first_message_id: str | None = None

    def key(self, case: str) -> str:
        return f"e2e-{self.id}-{case}"

    def add(self, case: str, to: str, tracked_status: str | None = None, **fields: Any) -> Email:
        mail_key = self.key(case)
        message = {"mailKey": mail_key, "to": [to], "subject": f"stepmail e2e {case}", "body": "e2e"}
        email = Email(case, mail_key, to, {**message, **fields}, tracked_status)
        self.emails[case] = email
        return email

    def letters_of(self, case: str) -> list[DeadLetter]:
        mail_key = self.emails[case].mail_key
        return [letter for letter in self.letters if letter.mail_key == mail_key or mail_key in letter.body]


def _emails(run: Run) -> None:
    """What the run sends: every simulator mailbox, an address identity, and two messages that fail."""
    config = run.target.config
    sender = parse_mailbox(config.default_sender).address
    run.add(
        "success",
        f"success@{SIMULATOR}",
        "delivered",
        attachedFileKeys=["e2e.txt"],
        **{"from": f"stepmail e2e <{sender}>"},
    )
    run.add("bounce", f"bounce@{SIMULATOR}", "bounced")
    run.add("complaint", f"complaint@{SIMULATOR}", "complained")
    run.add("suppression", f"suppressionlist@{SIMULATOR}", "bounced")
    address_identity = next((identity for identity in config.sender_identities if "@" in identity), None)
    if address_identity:
        run.add("address-identity", f"success@{SIMULATOR}", "delivered", **{"from": address_identity})
    run.add("missing-attachment", f"success@{SIMULATOR}", attachedFileKeys=["missing.pdf"])
    run.add("invalid", f"success@{SIMULATOR}")
    del run.emails["invalid"].message["to"]  # no recipient: the starter dead-letters it


def _send_first_round(run: Run, client: StepmailClient, sqs: Any) -> None:
    for email in run.emails.values():
        if email.case == "success":
            client.send(email.message, {"e2e.txt": b"attached by stepmail's e2e\n"})
        elif email.case in ("missing-attachment", "invalid"):  # as a producer without our client would
            sqs.send_message(QueueUrl=run.target.deployment.queue_url, MessageBody=json.dumps(email.message))
        else:
            client.send(email.message)


def _lock_key(email: Email) -> str:
    return lock_key(email.mail_key, [email.to])


def _record(run: Run, dynamodb: Any, email: Email) -> dict[str, Any]:
    found = dynamodb.get_item(
        TableName=run.target.deployment.table, Key={"pk": {"S": _lock_key(email)}}, ConsistentRead=True
    )
    return dict(found.get("Item", {}))


def _settled(run: Run, dynamodb: Any, email: Email) -> bool:
    """The email's outcome is in: sent (and its last delivery event recorded), or dead-lettered."""
    if email.tracked_status is None:
        return bool(run.letters_of(email.case))
    record = _record(run, dynamodb, email)
    if record.get("status", {}).get("S") != "SENT":
        return bool(run.letters_of(email.case))  # dead-lettered instead: settled, and the check says so
    return not run.target.tracking or record.get("deliveryStatus", {}).get("S") == email.tracked_status


def _queue_empty(run: Run, sqs: Any) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=run.target.deployment.queue_url, AttributeNames=names)
    return all(int(attributes["Attributes"][name]) == 0 for name in names)


def _wait(run: Run, label: str, done: Callable[[], tuple[int, int]]) -> None:
    """Poll ``done`` (-> settled, total) until all are settled, printing one progress line."""
    started = time.monotonic()
    while True:
        settled, total = done()
        elapsed = time.monotonic() - started
        print(f"\r  {label}: {settled}/{total} settled, {elapsed:.0f} s", end="", file=sys.stderr, flush=True)
        if settled == total:
            print(file=sys.stderr)
            return
        if elapsed > run.target.timeout_seconds:
            print(file=sys.stderr)
            raise AssertionError(f"{label}: {settled}/{total} settled after {elapsed:.0f} s")
        time.sleep(run.target.poll_seconds)


def _round_one_settled(run: Run, sqs: Any, dynamodb: Any) -> tuple[int, int]:
    run.letters = list_dead_letters(sqs, run.target.deployment.dlq_url)
    emails = list(run.emails.values())
    return sum(_settled(run, dynamodb, email) for email in emails), len(emails)


def _duplicate_settled(run: Run, sqs: Any, streak: list[bool]) -> tuple[int, int]:
    """The duplicate was handled once the queue has stayed empty for a few polls in a row."""
    streak.append(_queue_empty(run, sqs))
    polls = run.target.empty_polls
    return int(streak[-polls:] == [True] * polls), 1


def _observe(run: Run, sqs: Any, dynamodb: Any) -> None:
    """Each email's status and the dead letters, through the producer's operations."""
    deployment = run.target.deployment
    run.letters = list_dead_letters(sqs, deployment.dlq_url)
    for email in run.emails.values():
        recipients = [email.to] if email.case != "invalid" else None
        run.statuses[email.case] = email_status(
            dynamodb,
            sqs,
            table=deployment.table,
            dlq_url=deployment.dlq_url,
            mail_key=email.mail_key,
            recipients=recipients,
        )
    items = dynamodb.scan(
        TableName=deployment.table,
        FilterExpression="begins_with(pk, :rate)",
        ExpressionAttributeValues={":rate": {"S": "rate#"}},
        ConsistentRead=True,
    )["Items"]
    run.pacing_keys = sorted(item["pk"]["S"] for item in items)


# ---------------------------------------------------------------------------------------------- clean-up
def _remove(run: Run, sqs: Any, dynamodb: Any, s3: Any) -> None:
    """Delete what the run created: lock records and the tracker's index items, attachments, dead letters."""
    deployment, prefix = run.target.deployment, f"e2e-{run.id}-"
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=deployment.table,
        FilterExpression="begins_with(pk, :prefix) OR begins_with(mailKey, :prefix)",
        ExpressionAttributeValues={":prefix": {"S": prefix}},
    )
    keys = {item["pk"]["S"] for page in pages for item in page.get("Items", [])}
    # the tracker's index items, one per SES message id, carry no mail key
    message_ids = {status.message_id for statuses in run.statuses.values() for status in statuses}
    keys |= {index_key(message_id) for message_id in message_ids | {run.first_message_id} if message_id}
    for key in keys:
        dynamodb.delete_item(TableName=deployment.table, Key={"pk": {"S": key}})
    for email in run.emails.values():
        listed = s3.list_objects_v2(Bucket=deployment.bucket, Prefix=f"{email.mail_key}/").get("Contents", [])
        for found in listed:
            s3.delete_object(Bucket=deployment.bucket, Key=found["Key"])
    scan = Scan(sqs, deployment.dlq_url)
    try:
        for letter in scan:
            if prefix in letter.body or (letter.mail_key or "").startswith(prefix):
                scan.delete(letter)
    finally:
        scan.release()
    left = [letter.mail_key for letter in list_dead_letters(sqs, deployment.dlq_url) if prefix in letter.body]
    left += [
        key for key in keys if "Item" in dynamodb.get_item(TableName=deployment.table, Key={"pk": {"S": key}})
    ]
    assert not left, f"the e2e could not remove what it created: {left}"


@pytest.fixture(scope="module")
def run(target: Target) -> Iterator[Run]:
    """The whole scenario on one target; the checks below read what it observed."""
    sqs, dynamodb, s3 = target.client("sqs"), target.client("dynamodb"), target.client("s3")
    client, run = StepmailClient(target.deployment), Run(target)
    print(f"\nstepmail e2e on {target.name}, run {run.id}", file=sys.stderr)
    _emails(run)
    try:
        _send_first_round(run, client, sqs)
        _wait(run, "first round", lambda: _round_one_settled(run, sqs, dynamodb))
        run.first_message_id = _record(run, dynamodb, run.emails["success"]).get("messageId", {}).get("S")
        client.send(run.emails["success"].message)  # the same email again
        streak: list[bool] = []
        _wait(run, "duplicate", lambda: _duplicate_settled(run, sqs, streak))
        _observe(run, sqs, dynamodb)
        yield run
        _print_summary(run)
    finally:
        _remove(run, sqs, dynamodb, s3)


# ---------------------------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class Check:
    """One e2e check: what it looks at, and the assumptions of docs/aws-assumptions.md it settles."""

    name: str
    settles: tuple[str, ...]
    verify: Callable[[Run], str | None]  # None when it holds, else what was found instead

    @property
    def id(self) -> str:
        return f"{self.name} [{', '.join(self.settles) or 'contract'}]"


def _one(run: Run, case: str) -> EmailStatus:
    (status,) = run.statuses[case]
    return status


def _sent(run: Run, case: str) -> str | None:
    """Sent once, recorded with its SES message id; with tracking, its events; without, none."""
    if case not in run.emails:
        return None  # not applicable to this configuration (said in the summary)
    status, expected = _one(run, case), run.emails[case].tracked_status
    if status.lock_status != "SENT" or not status.message_id:
        reasons = "; ".join(letter.reason for letter in status.dead_letters)
        return f"not sent: state {status.state}, lock {status.lock_status} {reasons}".strip()
    if status.dead_letters:
        return f"sent, but also dead-lettered: {status.dead_letters[0].reason}"
    if not run.target.tracking:
        return (
            None
            if not status.delivery_events
            else f"events recorded without tracking: {status.delivery_events}"
        )
    if status.delivery_status != expected:
        return f"delivery status {status.delivery_status}, expected {expected}"
    return None


def _duplicate(run: Run) -> str | None:
    """One record for the email sent twice, still the first send's, and nothing dead-lettered."""
    statuses = run.statuses["success"]
    if len(statuses) != 1 or statuses[0].lock_status != "SENT":
        return f"expected one sent record, found {[s.state for s in statuses]}"
    if not run.first_message_id or statuses[0].message_id != run.first_message_id:
        return f"sent again: message id {run.first_message_id} became {statuses[0].message_id}"
    return None if not statuses[0].dead_letters else f"dead-lettered: {statuses[0].dead_letters[0].reason}"


def _missing_attachment(run: Run) -> str | None:
    """Dead-lettered by the workflow at once, the reason naming the file and where it was looked for."""
    email, bucket = run.emails["missing-attachment"], run.target.deployment.bucket
    letters = run.letters_of("missing-attachment")
    where = f"s3://{bucket}/{email.mail_key}/missing.pdf"
    if len(letters) != 1:
        return f"{len(letters)} dead letters"
    (letter,) = letters
    if letter.source != "workflow" or letter.error != "AttachmentMissingError" or where not in letter.reason:
        return f"{letter.source}: {letter.error}: {letter.reason}"
    status = _one(run, "missing-attachment")
    return None if status.lock_status is None else f"its lock was not released: {status.lock_status}"


def _invalid(run: Run) -> str | None:
    """Dead-lettered by the starter with a reason a person can act on, never run."""
    letters = run.letters_of("invalid")
    if len(letters) != 1 or letters[0].source != "starter" or "no recipient" not in letters[0].reason:
        return f"{[(letter.source, letter.reason) for letter in letters]}"
    return None


def _pacing(run: Run) -> str | None:
    """The send counters are keyed by half-seconds of $$.State.EnteredTime (rate#<second>.0 or .5)."""
    if not run.pacing_keys:
        return "no pacing counter in the lock table"
    wrong = [key for key in run.pacing_keys if not PACING_KEY.match(key)]
    return None if not wrong else f"counters not keyed by the half-second: {wrong[:3]}"


CHECKS = [
    Check("simulator success", ("SES-1", "SES-2", "SES-4", "SES-5"), lambda run: _sent(run, "success")),
    Check("simulator bounce", ("SES-5",), lambda run: _sent(run, "bounce")),
    Check("simulator complaint", ("SES-5",), lambda run: _sent(run, "complaint")),
    Check("simulator suppression list", ("SES-5",), lambda run: _sent(run, "suppression")),
    Check("address identity", ("SES-4",), lambda run: _sent(run, "address-identity")),
    Check("duplicate", ("WF-2",), _duplicate),
    Check("missing attachment", ("WF-1", "WF-4"), _missing_attachment),
    Check("invalid message", (), _invalid),
    Check("pacing by the half-second", ("WF-8", "WF-10"), _pacing),
]


def _print_summary(run: Run) -> None:
    lines = [f"\nstepmail e2e on {run.target.name}: what each check settles (docs/aws-assumptions.md)"]
    for check in CHECKS:
        applies = check.name != "address identity" or "address-identity" in run.emails
        found = check.verify(run) if applies else None
        verdict = "n/a " if not applies else ("ok  " if found is None else "FAIL")
        lines.append(
            f"  {verdict} {check.name:<28} settles {', '.join(check.settles) or '-'}"
            + (f": {found}" if found else "")
        )
    recorded = "delivery events on each record" if run.target.tracking else "sent + SES message id, no events"
    lines.append(f"  tracking {'on' if run.target.tracking else 'off'}: the records hold {recorded}")
    print("\n".join(lines), file=sys.stderr)


@pytest.mark.parametrize("check", CHECKS, ids=[check.id for check in CHECKS])
def test_first_deploy(run: Run, check: Check) -> None:
    """Each check on the target (docs/aws-assumptions.md names what each assumption is)."""
    if check.name == "address identity" and "address-identity" not in run.emails:
        pytest.skip("the configuration has no address identity")
    found = check.verify(run)
    assert found is None, f"{check.id} on {run.target.name}: {found}"
