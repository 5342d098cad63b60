"""Latency at low load, from SendMessage to SES accepting the email, stage by stage (prints numbers).

    .venv/bin/python bench/latency.py [--emails 30] [--retry-wait 60] [--json out.json]

One twin with the default configuration; emails with one small attachment are sent one at a time
(each waits for the previous to be done), so nothing queues behind anything.  For each email:

* ``sent``: the producer's clock just before SendMessage;
* ``received``: the starter handler is called with the email's record (the bench wraps the handler
  module's ``handler``, which the twin's poller calls);
* the run's execution history (GetExecutionHistory: the twin keeps every Express run): its start,
  and when it entered and left Resolve Attachments, Render And Send and Mark Sent;
* ``accepted``: when the twin's SES accepted the email (its outbox entry).

Stages: queue wait (sent -> received), start (received -> run started), lock (run started -> Resolve
Attachments entered: Acquire Lock, and Read Lock when taken), attachments (the Map of HEADs), between
(Resolve Attachments left -> Render And Send entered: states added there, such as pacing), render and
send (Render And Send entered -> accepted), and after acceptance, mark (accepted -> Mark Sent left).
Each is reported as p50 and p95 over the emails; the total is sent -> accepted.

Then the retry-later delay: a message whose run ends in Retry Later (SES throttled past the run's
retries), and the time until the starter gets it again (``measure_retry_later``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import StepmailConfig
from stepmail.handlers import starter as starter_handler
from twin.twin import LocalTwin

STAGES = ("queue wait", "start", "lock", "attachments", "between", "render and send", "total to SES", "mark")


class DeliveryClock:
    """Wraps the starter handler: when each delivery of each SQS record (by message id) reached it and
    when the handler answered for its batch."""

    def __init__(self) -> None:
        self.deliveries: dict[str, list[list[float]]] = {}
        self._lock = threading.Lock()
        self._original = starter_handler.handler

    def received(self, message_id: str) -> float:
        """When the record first reached the starter."""
        return self.deliveries[message_id][0][0]

    def __enter__(self) -> DeliveryClock:
        def handler(event: dict[str, Any], context: Any, starter: Any = None) -> dict[str, Any]:
            started = [time.time()]
            ids = [record["messageId"] for record in event.get("Records", [])]
            with self._lock:
                for message_id in ids:
                    self.deliveries.setdefault(message_id, []).append(started)
            try:
                return self._original(event, context, starter)
            finally:
                started.append(time.time())

        starter_handler.handler = handler  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        starter_handler.handler = self._original  # type: ignore[assignment]


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def state_times(events: list[dict[str, Any]]) -> dict[str, float]:
    """When the run started, and when it entered and left each named state (first entry, last exit)."""
    times = {"run started": _seconds(events[0]["timestamp"])}
    for event in events:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
        if not details:
            continue
        key = f"{details['name']} {'entered' if 'Entered' in event['type'] else 'left'}"
        if key.endswith("entered"):
            times.setdefault(key, _seconds(event["timestamp"]))
        else:
            times[key] = _seconds(event["timestamp"])
    return times


def stages(sent: float, received: float, states: dict[str, float], accepted: float) -> dict[str, float]:
    """One email's stages, in ms."""
    boundaries = {
        "queue wait": (sent, received),
        "start": (received, states["run started"]),
        "lock": (states["run started"], states["Resolve Attachments entered"]),
        "attachments": (states["Resolve Attachments entered"], states["Resolve Attachments left"]),
        "between": (states["Resolve Attachments left"], states["Render And Send entered"]),
        "render and send": (states["Render And Send entered"], accepted),
        "total to SES": (sent, accepted),
        "mark": (accepted, states["Mark Sent left"]),
    }
    return {stage: (end - start) * 1000 for stage, (start, end) in boundaries.items()}


def one_email(twin: LocalTwin, clock: DeliveryClock, index: int) -> dict[str, float]:
    assert twin.info is not None
    s3, sqs = twin.client("s3"), twin.client("sqs")
    mail_key = f"latency-{index}"
    s3.put_object(Bucket=twin.info.bucket, Key=f"{mail_key}/invoice.pdf", Body=b"%PDF-1.4\n" * 1000)
    body = {"mailKey": mail_key, "toAddress": f"r{index}@customer.example", "body": "Attached."}
    body["attachedFileKeys"] = ["invoice.pdf"]  # type: ignore[assignment]
    sent = time.time()
    message_id = sqs.send_message(QueueUrl=twin.info.queue_url, MessageBody=json.dumps(body))["MessageId"]
    deadline = time.monotonic() + 60
    while not twin.journal.done(message_id):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{mail_key} was not done in 60 s")
        time.sleep(0.005)
    report = twin.journal.outcome(message_id)
    assert report is not None and report.execution_arn and report.message_id, report
    history = twin.client("stepfunctions").get_execution_history(
        executionArn=report.execution_arn, maxResults=1000
    )
    (email,) = [email for email in twin.ses.sent if email.message_id == report.message_id]
    return stages(sent, clock.received(message_id), state_times(history["events"]), _seconds(email.sent_at))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(emails: int) -> dict[str, Any]:
    config = StepmailConfig(sender_identities=("example.com",), default_sender="no-reply@example.com")
    with (
        tempfile.TemporaryDirectory() as outbox,
        LocalTwin(config, outbox=Path(outbox), handler_log_level="ERROR") as twin,
        DeliveryClock() as clock,
    ):
        one_email(twin, clock, -1)  # warm up: clients, the sender's first (cold) invocation
        runs = [one_email(twin, clock, index) for index in range(emails)]
    summary = {
        stage: {
            "p50": statistics.median(run[stage] for run in runs),
            "p95": percentile([run[stage] for run in runs], 0.95),
        }
        for stage in STAGES
    }
    return {
        "emails": emails,
        "batching_window_seconds": config.batching_window_seconds,
        "stages": summary,
        "runs": runs,
    }


def measure_retry_later(wait_seconds: float) -> dict[str, Any]:
    """How long a message that ended in Retry Later waits before the starter gets it again.

    SES throttles every send until the run's retries run out (the twin's waits scaled to 1 %), so the
    run ends in Retry Later and the starter reports the record failed; then SES recovers, and the
    bench waits up to ``wait_seconds`` for the second delivery.
    """
    config = StepmailConfig(sender_identities=("example.com",), default_sender="no-reply@example.com")
    with (
        tempfile.TemporaryDirectory() as outbox,
        LocalTwin(config, outbox=Path(outbox), time_scale=0.01, handler_log_level="ERROR") as twin,
        DeliveryClock() as clock,
    ):
        assert twin.info is not None
        twin.faults.add("ses.send:throttle")
        body = {"mailKey": "retry-later", "toAddress": "r@customer.example", "body": "x"}
        message_id = twin.client("sqs").send_message(
            QueueUrl=twin.info.queue_url, MessageBody=json.dumps(body)
        )["MessageId"]
        deadline = time.monotonic() + 120
        while len(clock.deliveries.get(message_id, [[0.0]])[0]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the first delivery's batch was answered
        twin.faults.clear()
        answered = clock.deliveries[message_id][0][1]
        deadline = time.monotonic() + wait_seconds
        while len(clock.deliveries[message_id]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        again = clock.deliveries[message_id][1][0] if len(clock.deliveries[message_id]) > 1 else None
    return {
        "delay_seconds": None if again is None else again - answered,
        "waited_seconds": wait_seconds,
        "visibility_timeout_seconds": config.queue_visibility_timeout_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=30)
    parser.add_argument("--retry-wait", type=float, default=60, help="how long to wait for a retried message")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = measure(args.emails)
    figures["retry_later"] = measure_retry_later(args.retry_wait)
    print(f"latency at low load on the twin ({args.emails} emails, one at a time, one attachment each), ms:")
    print(f"  {'stage':18} {'p50':>8} {'p95':>8}")
    for stage, values in figures["stages"].items():
        note = "  (after SES accepted the email)" if stage == "mark" else ""
        print(f"  {stage:18} {values['p50']:8.0f} {values['p95']:8.0f}{note}")
    retry = figures["retry_later"]
    seen = (
        f"{retry['delay_seconds']:.1f} s"
        if retry["delay_seconds"] is not None
        else f"not within {retry['waited_seconds']:.0f} s"
    )
    print(
        f"retry later: a message whose run ended in Retry Later came back after {seen}"
        f" (the queue's visibility timeout: {retry['visibility_timeout_seconds']} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
