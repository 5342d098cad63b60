"""`make demo`: the whole pipeline on the local twin, on a scripted set of messages.

Producers send an invoice with attachments and HTML, a Unicode newsletter to two recipient sets under
one mailKey, a message in the original (legacy) format, a message whose attachment was never
uploaded, and a hostile message with a header-injection attempt; then the invoice again.  The report
says where each message ended: sent (with its .eml file), skipped as a duplicate, or dead-lettered
with its reason.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import StepmailConfig
from producer.client import StepmailClient
from stepmail.core.starting import StartReport
from twin.twin import LocalTwin

_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass
class Scripted:
    label: str
    message: dict[str, Any] | str
    attachments: dict[str, bytes] | None = None
    queue_message_id: str = ""


def _invoice() -> Scripted:
    return Scripted(
        "invoice with 2 attachments + HTML",
        {
            "mailKey": "invoice-1001",
            "to": ["Jane Doe <jane@customer.example>"],
            "subject": "Your invoice 1001",
            "body": "Hello Jane,\n\nyour invoice is attached.\n",
            "html": "<p>Hello Jane,</p><p>your invoice is <b>attached</b>.</p>",
            "headers": {"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
        },
        {"invoice-1001.pdf": _PDF, "logo.png": _PNG},
    )


def script() -> tuple[list[Scripted], list[Scripted]]:
    """Two waves: the second one re-sends the invoice after the first has been sent."""
    first = [
        _invoice(),
        Scripted(
            "Unicode newsletter to Ana",
            {
                "mailKey": "newsletter-11",
                "to": ["ana@customer.example"],
                "subject": "Résumé de la semaine ✓ 東京",
                "body": "Bonjour Ana — voici les nouvelles.",
                "html": "<h1>Résumé</h1><p>Bonjour Ana — voici.</p>",
            },
        ),
        Scripted(
            "same mailKey, another recipient",
            {
                "mailKey": "newsletter-11",
                "to": ["bo@customer.example"],
                "subject": "Résumé de la semaine ✓ 東京",
                "body": "Bonjour Bo — voici les nouvelles.",
            },
        ),
        Scripted(
            "legacy producer format",
            {
                "mailKey": "legacy-7",
                "toAddress": "ops@customer.example",
                "subject": "Nightly report",
                "body": "See attachment.",
                "attachedFileKeys": ["report.csv"],
            },
            {"report.csv": b"day,count\nmon,3\n"},
        ),
        Scripted(
            "attachment never uploaded",
            {
                "mailKey": "invoice-1002",
                "to": ["jane@customer.example"],
                "subject": "Invoice 1002",
                "body": "Attached.",
                "attachedFileKeys": ["invoice-1002.pdf"],
            },
        ),
        Scripted(
            "header injection attempt",
            json.dumps(
                {
                    "mailKey": "evil-1",
                    "to": ["victim@customer.example"],
                    "subject": "Hi\r\nBcc: everyone@customer.example",
                    "body": "spam",
                }
            ),
        ),
    ]
    return first, [Scripted("the invoice, delivered again", _invoice().message)]


def _enqueue(item: Scripted, client: StepmailClient, sqs: Any, queue_url: str) -> None:
    if isinstance(item.message, str):  # a broken producer: bypass the client's own validation
        item.queue_message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=item.message)["MessageId"]
    else:
        item.queue_message_id = client.send(item.message, item.attachments)
    print(f"  queued   {item.label}", flush=True)


def _wait(twin: LocalTwin, items: list[Scripted], timeout: float = 90.0) -> None:
    pending = {item.queue_message_id: item for item in items}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for queue_message_id, item in list(pending.items()):
            result = twin.journal.outcome(queue_message_id)
            if result is not None and twin.journal.done(queue_message_id):
                print(f"  {result.outcome:<15}{item.label}", flush=True)
                del pending[queue_message_id]
        time.sleep(0.05)
    for item in pending.values():
        print(f"  (still pending after {timeout:.0f}s) {item.label}", flush=True)


def _dead_letters(twin: LocalTwin) -> list[dict[str, Any]]:
    assert twin.info is not None
    sqs = twin.client("sqs")
    letters = []
    for _ in range(5):
        response = sqs.receive_message(
            QueueUrl=twin.info.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        letters = [json.loads(message["Body"]) for message in response.get("Messages", [])]
        if letters:
            break
    return letters


def _detail(item: Scripted, report: StartReport, twin: LocalTwin, letters: list[dict[str, Any]]) -> str:
    if report.outcome in ("sent", "duplicate"):
        email = next((sent for sent in twin.ses.sent if sent.message_id == report.message_id), None)
        prefix = "same email as " if report.outcome == "duplicate" else ""
        return f"{prefix}{email.path.name if email and email.path else report.message_id}"
    for letter in letters:
        if letter.get("queueMessageId") == item.queue_message_id or (
            report.execution_arn and letter.get("executionArn") == report.execution_arn
        ):
            return f"DLQ: {letter['error']}: {letter['cause']}"
    return report.reason or ""


def _report(items: list[Scripted], twin: LocalTwin) -> None:
    letters = _dead_letters(twin)
    rows = [("#", "message", "outcome", "detail")]
    for number, item in enumerate(items, 1):
        result = twin.journal.outcome(item.queue_message_id)
        if result is not None:
            rows.append((str(number), item.label, str(result.outcome), _detail(item, result, twin, letters)))
        else:
            rows.append(
                (str(number), item.label, "pending", repr(twin.journal.history(item.queue_message_id)))
            )
    widths = [max(len(row[column]) for row in rows[:]) for column in range(3)]
    for index, row in enumerate(rows):
        detail = row[3] if len(row[3]) <= 100 else row[3][:97] + "..."
        print(
            "  "
            + "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
            + "  "
            + detail
        )
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths) + "  " + "-" * 6)


def run_demo(config: StepmailConfig, *, outbox: Path) -> int:
    started = time.monotonic()
    shutil.rmtree(outbox, ignore_errors=True)
    print(
        "stepmail demo: starting the local twin (moto on 127.0.0.1, the real ASL and handlers)...", flush=True
    )
    with LocalTwin(config, outbox=outbox) as twin:
        assert twin.info is not None
        info = twin.info
        client, sqs = StepmailClient(info), twin.client("sqs")
        print(f"  twin ready on {info.endpoint_url} in {time.monotonic() - started:.1f}s", flush=True)
        first, second = script()
        for item in first:
            _enqueue(item, client, sqs, info.queue_url)
        _wait(twin, first)
        for item in second:
            _enqueue(item, client, sqs, info.queue_url)
        _wait(twin, second)
        print("\nWhat happened to each message:\n")
        _report(first + second, twin)
        emails = sorted(outbox.glob("*.eml"))
        print(f"\n{len(emails)} emails in the outbox: {outbox}")
        for email in emails:
            print(f"  {email.name}  ({email.stat().st_size} bytes)")
        print(f"\nDone in {time.monotonic() - started:.1f}s.")
        done = all(twin.journal.done(item.queue_message_id) for item in first + second)
    return 0 if done else 1
