"""What a run logs to CloudWatch Logs, measured on the twin: three emails, their execution histories.

Used by ``tests/integration/test_log_volume.py`` (the cost model's figures hold) and
``bench/log_volume.py`` (prints them).  The twin keeps each Express run's history (AWS keeps none:
its CloudWatch Logs are the history), and :func:`producer.cost.execution_log_bytes` renders each
event as Step Functions writes it to the log group at a given level.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from producer.cost import EXPRESS_RUN_ARN, ExecutionLogs, dynamodb_item_bytes, execution_log_bytes
from twin.twin import LocalTwin

_LEVELS = ("ALL", "ERROR")


#: The pacing path the figures are measured on: a slot in the first half of a second, found free.
#: It carries the largest ``$.window`` (the later half's key, room and time), so runs that took the
#: second half (or the later half) log a few hundred bytes less, never more.
_MEASURED_PATH = "First Half"
_OTHER_PATHS = ("Second Half", "The Later Half")


def send_and_wait(
    twin: LocalTwin, attachments: int, timeout: float = 60.0, fault: str | None = None
) -> list[dict[str, Any]]:
    """Send one email with ``attachments`` small files and return its run's history events: of a run
    that took the measured pacing path (sent again, as another email, until one does), with ``fault``
    armed afresh for each."""
    for _ in range(20):
        if fault:
            twin.faults.clear()
            twin.faults.add(fault)
        events = _send_one(twin, attachments, timeout)
        entered = {
            event["stateEnteredEventDetails"]["name"]
            for event in events
            if "stateEnteredEventDetails" in event
        }
        if _MEASURED_PATH in entered and not entered.intersection(_OTHER_PATHS):
            return events
    raise AssertionError(f"no run took the {_MEASURED_PATH} path in 20 emails")


def _send_one(twin: LocalTwin, attachments: int, timeout: float) -> list[dict[str, Any]]:
    """Send one email with ``attachments`` small files and return its run's history events."""
    assert twin.info is not None
    s3, sqs = twin.client("s3"), twin.client("sqs")
    mail_key = f"logs-{uuid.uuid4().hex[:8]}"
    names = [f"file-{index}.pdf" for index in range(attachments)]
    for name in names:
        s3.put_object(Bucket=twin.info.bucket, Key=f"{mail_key}/{name}", Body=b"%PDF-1.4\n" * 100)
    body = {"mailKey": mail_key, "toAddress": "reader@customer.example", "subject": "Your invoice"}
    body |= {"body": "Attached.", "attachedFileKeys": names}
    message_id = sqs.send_message(QueueUrl=twin.info.queue_url, MessageBody=json.dumps(body))["MessageId"]
    deadline = time.monotonic() + timeout
    while not twin.journal.done(message_id):
        if time.monotonic() > deadline:
            raise AssertionError(f"{mail_key} was not handled in {timeout}s")
        time.sleep(0.02)
    outcome = twin.journal.outcome(message_id)
    assert outcome is not None and outcome.execution_arn, outcome
    history = twin.client("stepfunctions").get_execution_history(
        executionArn=outcome.execution_arn, maxResults=1000
    )
    return list(history["events"])


def _bytes(events: list[dict[str, Any]], level: str) -> tuple[int, int]:
    return (
        execution_log_bytes(events, level, include_data=False),
        execution_log_bytes(events, level, include_data=True),
    )


def measure_execution_logs(twin: LocalTwin) -> ExecutionLogs:
    """One email with one attachment, one with two, one whose first send fails (SES 5xx) and is retried."""
    one = send_and_wait(twin, attachments=1)
    two = send_and_wait(twin, attachments=2)
    retried = send_and_wait(twin, attachments=1, fault="ses.send:error5xx:times=1")
    run, with_two, with_retry = _bytes(one, "ALL"), _bytes(two, "ALL"), _bytes(retried, "ALL")
    return ExecutionLogs(
        run=run,
        attachment=(with_two[0] - run[0], with_two[1] - run[1]),
        retry_all=(with_retry[0] - run[0], with_retry[1] - run[1]),
        retry_error=_bytes(retried, "ERROR"),
    )


def record_bytes(twin: LocalTwin) -> int:
    """The largest email record in the lock table, as DynamoDB sizes it, with the run's ARN (its
    ``owner``) as long as AWS's (the twin's ARNs are shorter)."""
    assert twin.info is not None
    items = twin.client("dynamodb").scan(TableName=twin.info.table)["Items"]
    records = [item for item in items if "owner" in item]
    for record in records:
        record["owner"] = {"S": EXPRESS_RUN_ARN}
    return max(dynamodb_item_bytes(record) for record in records)
